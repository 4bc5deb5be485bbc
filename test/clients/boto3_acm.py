"""ACM through boto3 against ebb (EBB_ENDPOINT): import, describe, list with and without Includes,
get, tags, the modelled errors as boto3 raises them, and delete. Prints one JSON object with what boto3
returned, so the interpreter starts once. argv: certificate file, key file, chain file, other key file."""
import json
import os
import sys

import boto3
import botocore

cert_file, key_file, chain_file, other_key_file = sys.argv[1:5]
acm = boto3.client('acm', endpoint_url=os.environ['EBB_ENDPOINT'])


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def error(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return {'Code': e.response['Error']['Code'], 'Message': e.response['Error']['Message'], 'Status': e.response['ResponseMetadata']['HTTPStatusCode'], 'Class': type(e).__name__}
    return None


out = {'versions': {'boto3': boto3.__version__}}
imported = acm.import_certificate(Certificate=read(cert_file), PrivateKey=read(key_file), CertificateChain=read(chain_file), Tags=[{'Key': 'team', 'Value': 'edge'}])
arn = imported['CertificateArn']
out['arn'] = arn
detail = acm.describe_certificate(CertificateArn=arn)['Certificate']
out['describe'] = {k: (v.isoformat() if hasattr(v, 'isoformat') else v) for k, v in detail.items()}
out['list_default'] = acm.list_certificates()['CertificateSummaryList']
out['list_ec'] = [s['CertificateArn'] for s in acm.list_certificates(Includes={'keyTypes': ['EC_prime256v1']})['CertificateSummaryList']]
paginator = acm.get_paginator('list_certificates')
out['paginated'] = [s['CertificateArn'] for page in paginator.paginate(Includes={'keyTypes': ['EC_prime256v1']}, PaginationConfig={'PageSize': 1}) for s in page['CertificateSummaryList']]
got = acm.get_certificate(CertificateArn=arn)
out['get'] = {'certificate_starts': got['Certificate'][:27], 'has_chain': 'CertificateChain' in got}
out['tags'] = acm.list_tags_for_certificate(CertificateArn=arn)['Tags']
out['errors'] = {
    'mismatch': error(lambda: acm.import_certificate(Certificate=read(cert_file), PrivateKey=read(other_key_file))),
    'not_found': error(lambda: acm.describe_certificate(CertificateArn='arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000')),
    'bad_arn': error(lambda: acm.describe_certificate(CertificateArn='arn:aws:s3:::not-a-certificate-arn')),
    'reserved_tag': error(lambda: acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{'Key': 'aws:owner', 'Value': 'x'}])),
}
try:
    acm.describe_certificate(CertificateArn='arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000')
except acm.exceptions.ResourceNotFoundException:
    out['modelled_exception'] = True
acm.delete_certificate(CertificateArn=arn)
out['after_delete'] = error(lambda: acm.describe_certificate(CertificateArn=arn))
print(json.dumps(out))
