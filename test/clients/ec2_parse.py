#!/usr/bin/env python3
"""Parses EC2 responses with botocore's own parser, as boto3 and the aws CLI would.

Reads a JSON list of {"operation", "status", "xml"} on stdin and prints a JSON list of what
botocore's EC2QueryParser made of each, against the ec2 2016-11-15 model (timestamps as ISO text).
"""
import json, sys
import botocore.session
from botocore.parsers import create_parser

model = botocore.session.get_session().get_service_model('ec2')
parser = create_parser(model.metadata['protocol'])
out = []
for case in json.load(sys.stdin):
    op = model.operation_model(case['operation'])
    response = {'status_code': case['status'], 'headers': {}, 'body': case['xml'].encode('utf-8')}
    out.append(parser.parse(response, op.output_shape))
print(json.dumps({'protocol': model.metadata['protocol'], 'parsed': out}, default=lambda v: v.isoformat()))
