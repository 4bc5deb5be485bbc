#!/usr/bin/env python3
"""Drives ebb's admin API with boto3 and prints what it saw as one JSON object.

Usage: EBB_ENDPOINT=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
       AWS_DEFAULT_REGION=us-east-1 python3 test/clients/boto3_flow.py TARGET_PORT
The Node test (test/integration/api-boto3.test.ts) asserts on the output; this script only records.
"""
import datetime
import json
import os
import sys

import boto3
import botocore
import botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint = os.environ['EBB_ENDPOINT']
target_port = int(sys.argv[1])
config = Config(retries={'max_attempts': 1, 'mode': 'standard'})
v2 = boto3.client('elbv2', endpoint_url=endpoint, config=config)
elb = boto3.client('elb', endpoint_url=endpoint, config=config)
asg = boto3.client('autoscaling', endpoint_url=endpoint, config=config)
out = {'versions': {'boto3': boto3.__version__, 'botocore': botocore.__version__}}


def error_of(fn):
    """The error a call raised, as boto3 shows it, or None."""
    try:
        fn()
    except ClientError as e:
        meta = e.response['ResponseMetadata']
        return {'Error': e.response['Error'], 'Status': meta['HTTPStatusCode'], 'RequestId': meta.get('RequestId'),
                'Class': type(e).__name__}
    return None


def plain(value):
    return json.loads(json.dumps(value, default=str))


# ELBv2: a group, attributes, targets.
tg = v2.create_target_group(Name='boto-tg', Protocol='HTTP', Port=target_port, TargetType='ip', VpcId='vpc-1',
                            HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2)
arn = tg['TargetGroups'][0]['TargetGroupArn']
out['create_target_group'] = plain(tg['TargetGroups'][0])
out['create_request_id'] = tg['ResponseMetadata']['RequestId']
out['modify_attributes'] = v2.modify_target_group_attributes(
    TargetGroupArn=arn, Attributes=[{'Key': 'deregistration_delay.timeout_seconds', 'Value': '120'}])['Attributes']
out['read_attributes'] = v2.describe_target_group_attributes(TargetGroupArn=arn)['Attributes']
out['register'] = v2.register_targets(
    TargetGroupArn=arn, Targets=[{'Id': '127.0.0.1', 'Port': target_port}])['ResponseMetadata']['HTTPStatusCode']
out['health_after_register'] = v2.describe_target_health(TargetGroupArn=arn)['TargetHealthDescriptions']
out['deregister'] = v2.deregister_targets(TargetGroupArn=arn, Targets=[{'Id': '127.0.0.1', 'Port': target_port}])[
    'ResponseMetadata']['HTTPStatusCode']
out['health_after_deregister'] = v2.describe_target_health(
    TargetGroupArn=arn, Targets=[{'Id': '127.0.0.1', 'Port': target_port}])['TargetHealthDescriptions']
out['describe_by_name'] = plain(v2.describe_target_groups(Names=['boto-tg'])['TargetGroups'])

missing_arn = arn.rsplit('/', 1)[0] + '/0000000000000000'
out['errors'] = {
    'delay_out_of_range': error_of(lambda: v2.modify_target_group_attributes(
        TargetGroupArn=arn, Attributes=[{'Key': 'deregistration_delay.timeout_seconds', 'Value': '3601'}])),
    'unsupported_attribute': error_of(lambda: v2.modify_target_group_attributes(
        TargetGroupArn=arn, Attributes=[{'Key': 'deregistration_delay.connection_termination.enabled', 'Value': 'true'}])),
    'unknown_arn': error_of(lambda: v2.describe_target_health(TargetGroupArn=missing_arn)),
    'duplicate_name': error_of(lambda: v2.create_target_group(Name='boto-tg', Protocol='HTTP', Port=80, TargetType='ip')),
    'timeout_too_large': error_of(lambda: v2.create_target_group(Name='x', Protocol='HTTP', Port=80, HealthCheckTimeoutSeconds=121)),
}
try:
    v2.describe_target_health(TargetGroupArn=missing_arn)
    out['modelled_exception'] = False
except v2.exceptions.TargetGroupNotFoundException:
    out['modelled_exception'] = True

# Signatures: a wrong secret, and a request signed 20 minutes ago.
bad = boto3.client('elbv2', endpoint_url=endpoint, config=config, aws_secret_access_key='wrong',
                   aws_access_key_id=os.environ['AWS_ACCESS_KEY_ID'])
out['errors']['bad_signature'] = error_of(lambda: bad.describe_target_groups())
real_now = botocore.auth.get_current_datetime
botocore.auth.get_current_datetime = lambda: real_now() - datetime.timedelta(minutes=20)
try:
    out['errors']['old_date'] = error_of(lambda: v2.describe_target_groups())
finally:
    botocore.auth.get_current_datetime = real_now

# Classic ELB.
elb.create_load_balancer(LoadBalancerName='boto-classic', AvailabilityZones=['us-east-1a'],
                         Listeners=[{'Protocol': 'HTTP', 'LoadBalancerPort': int(sys.argv[2]), 'InstanceProtocol': 'HTTP',
                                     'InstancePort': target_port}])
out['classic_modify'] = elb.modify_load_balancer_attributes(
    LoadBalancerName='boto-classic',
    LoadBalancerAttributes={'ConnectionDraining': {'Enabled': True, 'Timeout': 30}})
del out['classic_modify']['ResponseMetadata']
out['classic_describe_attributes'] = elb.describe_load_balancer_attributes(LoadBalancerName='boto-classic')[
    'LoadBalancerAttributes']
out['classic_register'] = elb.register_instances_with_load_balancer(
    LoadBalancerName='boto-classic', Instances=[{'InstanceId': 'i-boto'}])['Instances']
out['classic_health'] = elb.describe_instance_health(LoadBalancerName='boto-classic')['InstanceStates']
out['classic_deregister'] = elb.deregister_instances_from_load_balancer(
    LoadBalancerName='boto-classic', Instances=[{'InstanceId': 'i-boto'}])['Instances']
out['classic_health_after'] = elb.describe_instance_health(
    LoadBalancerName='boto-classic', Instances=[{'InstanceId': 'i-boto'}])['InstanceStates']
out['errors']['classic_timeout'] = error_of(lambda: elb.modify_load_balancer_attributes(
    LoadBalancerName='boto-classic', LoadBalancerAttributes={'ConnectionDraining': {'Enabled': True, 'Timeout': 3601}}))
out['errors']['classic_not_found'] = error_of(lambda: elb.describe_load_balancers(LoadBalancerNames=['nope']))
out['errors']['classic_invalid_instance'] = error_of(lambda: elb.register_instances_with_load_balancer(
    LoadBalancerName='boto-classic', Instances=[{'InstanceId': 'i-nope'}]))
out['classic_delete'] = elb.delete_load_balancer(LoadBalancerName='boto-classic')['ResponseMetadata']['HTTPStatusCode']

# Auto Scaling dispatch.
out['asg_groups'] = asg.describe_auto_scaling_groups()['AutoScalingGroups']
out['errors']['asg_unknown_group'] = error_of(lambda: asg.set_desired_capacity(AutoScalingGroupName='g', DesiredCapacity=1))

print(json.dumps(out, default=str))
