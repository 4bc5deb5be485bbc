#!/usr/bin/env python3
"""Drives ebb's network load balancers, TCP, TLS and HTTPS listeners with boto3 and prints what it saw as one JSON object.

Usage: EBB_ENDPOINT=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=us-east-1 \
       python3 test/clients/boto3_listeners.py TLS_PORT CERT_FILE KEY_FILE
The Node test (test/integration/api-elbv2-protocols.test.ts) asserts on the output; this script only records.
"""
import json
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint = os.environ['EBB_ENDPOINT']
tls_port = int(sys.argv[1])
cert_file, key_file = sys.argv[2], sys.argv[3]
config = Config(retries={'max_attempts': 1, 'mode': 'standard'})
v2 = boto3.client('elbv2', endpoint_url=endpoint, config=config)
acm = boto3.client('acm', endpoint_url=endpoint, config=config)
out = {}


def error_of(fn):
    """The error a call raised, as boto3 shows it (code, class, status, message), or None."""
    try:
        fn()
    except ClientError as e:
        return {'Code': e.response['Error']['Code'], 'Class': type(e).__name__, 'Status': e.response['ResponseMetadata']['HTTPStatusCode'],
                'Message': e.response['Error']['Message']}
    return None


with open(cert_file, 'rb') as f:
    cert = f.read()
with open(key_file, 'rb') as f:
    key = f.read()
cert_arn = acm.import_certificate(Certificate=cert, PrivateKey=key)['CertificateArn']
out['cert_arn'] = cert_arn

nlb = v2.create_load_balancer(Name='boto-nlb', Type='network', Subnets=['subnet-1'])['LoadBalancers'][0]
out['nlb_type'] = nlb['Type']
tg = v2.create_target_group(Name='boto-tcp', Protocol='TCP', Port=5432, TargetType='ip', VpcId='vpc-1')['TargetGroups'][0]
out['tcp_group'] = {k: tg.get(k) for k in ('Protocol', 'HealthCheckProtocol', 'HealthCheckTimeoutSeconds', 'HealthyThresholdCount',
                                           'UnhealthyThresholdCount', 'HealthCheckIntervalSeconds', 'Matcher')}
tls = v2.create_listener(LoadBalancerArn=nlb['LoadBalancerArn'], Protocol='TLS', Port=tls_port,
                         Certificates=[{'CertificateArn': cert_arn}], SslPolicy='ELBSecurityPolicy-TLS13-1-3-2021-06',
                         AlpnPolicy=['None'],
                         DefaultActions=[{'Type': 'forward', 'TargetGroupArn': tg['TargetGroupArn']}])['Listeners'][0]
out['tls_listener'] = {k: tls.get(k) for k in ('Protocol', 'Port', 'Certificates', 'SslPolicy')}
out['tls_attributes'] = v2.describe_listener_attributes(ListenerArn=tls['ListenerArn'])['Attributes']
out['tls_certificates'] = v2.describe_listener_certificates(ListenerArn=tls['ListenerArn'])['Certificates']
out['group_attributes'] = v2.modify_target_group_attributes(
    TargetGroupArn=tg['TargetGroupArn'],
    Attributes=[{'Key': 'target_health_state.unhealthy.connection_termination.enabled', 'Value': 'false'},
                {'Key': 'target_health_state.unhealthy.draining_interval_seconds', 'Value': '60'},
                {'Key': 'proxy_protocol_v2.enabled', 'Value': 'true'}])['Attributes']

# describe_ssl_policies has no paginator in botocore: page by hand with Marker, two at a time.
names, marker, pages = [], None, 0
while True:
    kwargs = {'PageSize': 2, 'LoadBalancerType': 'network'}
    if marker is not None:
        kwargs['Marker'] = marker
    page = v2.describe_ssl_policies(**kwargs)
    pages += 1
    names += [p['Name'] for p in page['SslPolicies']]
    marker = page.get('NextMarker')
    if marker is None or pages > 50:
        break
out['ssl_policy_names'] = names
out['ssl_policy_pages'] = pages
one = v2.describe_ssl_policies(Names=['ELBSecurityPolicy-TLS13-1-2-2021-06'])['SslPolicies'][0]
out['ssl_policy'] = {'SslProtocols': one['SslProtocols'], 'FirstCipher': one['Ciphers'][0], 'Types': one['SupportedLoadBalancerTypes']}

http_tg = v2.create_target_group(Name='boto-http', Protocol='HTTP', Port=80, TargetType='ip')['TargetGroups'][0]
missing_cert = cert_arn[:-12] + '000000000000'
out['errors'] = {
    'unknown_policy': error_of(lambda: v2.describe_ssl_policies(Names=['ELBSecurityPolicy-Nope'])),
    'unknown_certificate': error_of(lambda: v2.create_listener(
        LoadBalancerArn=nlb['LoadBalancerArn'], Protocol='TLS', Port=tls_port + 1, Certificates=[{'CertificateArn': missing_cert}],
        DefaultActions=[{'Type': 'forward', 'TargetGroupArn': tg['TargetGroupArn']}])),
    'bad_pairing': error_of(lambda: v2.create_listener(
        LoadBalancerArn=nlb['LoadBalancerArn'], Protocol='TCP', Port=tls_port + 1,
        DefaultActions=[{'Type': 'forward', 'TargetGroupArn': http_tg['TargetGroupArn']}])),
    'draining_with_termination': error_of(lambda: v2.modify_target_group_attributes(
        TargetGroupArn=tg['TargetGroupArn'],
        Attributes=[{'Key': 'target_health_state.unhealthy.connection_termination.enabled', 'Value': 'true'}])),
    'alb_attribute_on_nlb': error_of(lambda: v2.modify_load_balancer_attributes(
        LoadBalancerArn=nlb['LoadBalancerArn'], Attributes=[{'Key': 'routing.http2.enabled', 'Value': 'false'}])),
    'remove_default': error_of(lambda: v2.remove_listener_certificates(
        ListenerArn=tls['ListenerArn'], Certificates=[{'CertificateArn': cert_arn}])),
    'certificate_on_tcp': error_of(lambda: v2.create_listener(
        LoadBalancerArn=nlb['LoadBalancerArn'], Protocol='TCP', Port=tls_port + 1, Certificates=[{'CertificateArn': cert_arn}],
        DefaultActions=[{'Type': 'forward', 'TargetGroupArn': tg['TargetGroupArn']}])),
    'unknown_listener_policy': error_of(lambda: v2.modify_listener(ListenerArn=tls['ListenerArn'], SslPolicy='ELBSecurityPolicy-Nope')),
    'http_on_nlb': error_of(lambda: v2.create_listener(
        LoadBalancerArn=nlb['LoadBalancerArn'], Protocol='HTTP', Port=tls_port + 1,
        DefaultActions=[{'Type': 'forward', 'TargetGroupArn': http_tg['TargetGroupArn']}])),
    'idle_timeout_on_tls': error_of(lambda: v2.modify_listener_attributes(
        ListenerArn=tls['ListenerArn'], Attributes=[{'Key': 'tcp.idle_timeout.seconds', 'Value': '120'}])),
}
try:
    v2.describe_ssl_policies(Names=['ELBSecurityPolicy-Nope'])
    out['modelled_exception'] = False
except v2.exceptions.SSLPolicyNotFoundException:
    out['modelled_exception'] = True

print(json.dumps(out, default=str))
