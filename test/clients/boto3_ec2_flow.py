#!/usr/bin/env python3
"""Drives ebb's EC2 API (launch templates, DescribeInstances) with boto3 and prints what it saw as JSON.

Usage: EBB_ENDPOINT=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
       AWS_DEFAULT_REGION=us-east-1 python3 test/clients/boto3_ec2_flow.py
The Node test (test/integration/api-ec2-cli.test.ts) asserts on the output; this script only records.
"""
import base64
import json
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ec2 = boto3.client('ec2', endpoint_url=os.environ['EBB_ENDPOINT'], config=Config(retries={'max_attempts': 1, 'mode': 'standard'}))
out = {}


def error_of(fn):
    """The error a call raised, as boto3 shows it, or None."""
    try:
        fn()
    except ClientError as e:
        meta = e.response['ResponseMetadata']
        return {'Error': e.response['Error'], 'Status': meta['HTTPStatusCode'], 'RequestId': meta.get('RequestId')}
    return None


def plain(value):
    return json.loads(json.dumps(value, default=str))


script = base64.b64encode(b'#!/bin/sh\nexec python3 -m http.server "$PORT"\n').decode()
created = ec2.create_launch_template(
    LaunchTemplateName='boto-web',
    VersionDescription='from boto3',
    LaunchTemplateData={
        'UserData': script,
        'InstanceType': 't3.micro',
        'TagSpecifications': [{'ResourceType': 'instance', 'Tags': [{'Key': 'role', 'Value': 'web'}]}],
    },
    TagSpecifications=[{'ResourceType': 'launch-template', 'Tags': [{'Key': 'team', 'Value': 'edge'}]}],
)
lt_id = created['LaunchTemplate']['LaunchTemplateId']
out['created'] = plain(created['LaunchTemplate'])
out['request_id'] = created['ResponseMetadata']['RequestId']
out['version'] = plain(ec2.create_launch_template_version(
    LaunchTemplateId=lt_id, SourceVersion='$Default', LaunchTemplateData={'UserData': base64.b64encode(b'echo two').decode()})['LaunchTemplateVersion'])
out['paged_templates'] = [t['LaunchTemplateName'] for page in ec2.get_paginator('describe_launch_templates').paginate(
    Filters=[{'Name': 'tag:team', 'Values': ['edge']}]) for t in page['LaunchTemplates']]
out['versions'] = plain(ec2.describe_launch_template_versions(LaunchTemplateName='boto-web', Versions=['$Latest', '1'])['LaunchTemplateVersions'])
out['modified'] = plain(ec2.modify_launch_template(LaunchTemplateId=lt_id, DefaultVersion='2')['LaunchTemplate'])
out['deleted_versions'] = plain(ec2.delete_launch_template_versions(LaunchTemplateId=lt_id, Versions=['1', '2']))
out['paged_reservations'] = plain([r for page in ec2.get_paginator('describe_instances').paginate() for r in page['Reservations']])
out['by_group'] = plain(ec2.describe_instances(Filters=[
    {'Name': 'tag:aws:autoscaling:groupName', 'Values': ['ec2-*']},
    {'Name': 'instance-state-name', 'Values': ['pending', 'running']},
])['Reservations'])
out['by_other_group'] = ec2.describe_instances(Filters=[{'Name': 'tag:aws:autoscaling:groupName', 'Values': ['other']}])['Reservations']

e = out['errors'] = {}
e['unknown_id'] = error_of(lambda: ec2.describe_launch_templates(LaunchTemplateIds=['lt-0123456789abcdef0']))
e['malformed_id'] = error_of(lambda: ec2.delete_launch_template(LaunchTemplateId='lt-nope'))
e['both'] = error_of(lambda: ec2.delete_launch_template(LaunchTemplateId=lt_id, LaunchTemplateName='boto-web'))
e['version'] = error_of(lambda: ec2.modify_launch_template(LaunchTemplateId=lt_id, DefaultVersion='9'))
e['run_instances'] = error_of(lambda: ec2.run_instances(ImageId='ami-12345678', MinCount=1, MaxCount=1))
e['unknown_instance'] = error_of(lambda: ec2.describe_instances(InstanceIds=['i-0123456789abcdef0']))
e['dry_run'] = error_of(lambda: ec2.describe_instances(DryRun=True))
out['deleted'] = plain(ec2.delete_launch_template(LaunchTemplateName='boto-web')['LaunchTemplate'])
print(json.dumps(out))
