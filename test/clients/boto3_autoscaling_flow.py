#!/usr/bin/env python3
"""Drives one Auto Scaling group of real processes through ebb serve with boto3, and prints what it saw as JSON.

Usage: EBB_ENDPOINT=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
       AWS_DEFAULT_REGION=us-east-1 python3 test/clients/boto3_autoscaling_flow.py \
       TARGET_GROUP_ARN NODE APP TEST_SERVER_URL

The group's instances run `NODE APP` (test/fixtures/autoscaling/app.mjs) from a launch template's UserData.
TEST_SERVER_URL is the Node test's own server (test/integration/autoscaling-boto3.test.ts):
  POST /hook              the lifecycle hook's notification target (NotificationTargetARN)
  GET  /notifications     every message it received so far, as a JSON array
  POST /phase/serving     the group serves: the test starts its load through the listener
  POST /phase/refreshed   the refresh ended: the test stops its load and probes the listener
The Node test asserts on the output; this script only records. Every wait polls with short sleeps and
gives up after a bound, recording what it last saw; the group is force-deleted in any case.
"""
import base64
import json
import os
import sys
import time
import traceback
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

TG_ARN, NODE, APP, TEST_SERVER = sys.argv[1:5]
GROUP = 'boto-web'
TEMPLATE = 'boto-app'
HOOK = 'drain-done'
T0 = time.time()

config = Config(retries={'max_attempts': 1, 'mode': 'standard'})
endpoint = os.environ['EBB_ENDPOINT']
asg = boto3.client('autoscaling', endpoint_url=endpoint, config=config)
ec2 = boto3.client('ec2', endpoint_url=endpoint, config=config)
elb = boto3.client('elbv2', endpoint_url=endpoint, config=config)

out = {
    'steps': [],       # [seconds since start, what]
    'states': {},      # instance id -> lifecycle states in the order first seen
    'pids': {},        # instance id -> pid (DescribeInstances' ebb:pid tag)
    'errors': [],      # a ClientError from a call the flow expected to succeed
    'failure': None,   # the exception that ended the flow early, with its traceback
}


def step(what):
    out['steps'].append([round(time.time() - T0, 2), what])


def plain(value):
    return json.loads(json.dumps(value, default=str))


def user_data(version):
    script = f'#!/bin/sh\nAPP_VERSION={version} exec "{NODE}" "{APP}"\n'
    return base64.b64encode(script.encode()).decode()


def test_server(method, path):
    req = urllib.request.Request(TEST_SERVER + path, method=method, data=b'' if method == 'POST' else None)
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read() or b'null')


class Snapshot:
    """The group, its instances as EC2 shows them, and the target group's health, read at one poll."""

    def __init__(self):
        groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])['AutoScalingGroups']
        self.group = groups[0] if groups else None
        self.instances = self.group['Instances'] if self.group else []
        for i in self.instances:
            seen = out['states'].setdefault(i['InstanceId'], [])
            if not seen or seen[-1] != i['LifecycleState']:
                seen.append(i['LifecycleState'])
        reservations = ec2.describe_instances(Filters=[{'Name': 'tag:aws:autoscaling:groupName', 'Values': [GROUP]}])['Reservations']
        for r in reservations:
            for i in r['Instances']:
                pid = next((t['Value'] for t in i.get('Tags', []) if t['Key'] == 'ebb:pid'), None)
                if pid:
                    out['pids'][i['InstanceId']] = int(pid)
        self.health = {h['Target']['Id']: h['TargetHealth']['State'] for h in elb.describe_target_health(TargetGroupArn=TG_ARN)['TargetHealthDescriptions']}

    def ids(self, *states):
        return sorted(i['InstanceId'] for i in self.instances if not states or i['LifecycleState'] in states)

    def serving(self, n):
        """n instances, all InService and healthy in the target group, and nothing else registered there."""
        ids = self.ids('InService')
        return len(self.instances) == n and len(ids) == n and sorted(self.health) == ids and all(s == 'healthy' for s in self.health.values())

    def __str__(self):
        return f"instances {[(i['InstanceId'], i['LifecycleState']) for i in self.instances]}; targets {self.health}"


def wait(what, cond, seconds):
    """Polls until cond(snapshot) holds; returns that snapshot. Raises, naming what it last saw, after `seconds`."""
    end = time.time() + seconds
    while True:
        s = Snapshot()
        if cond(s):
            step(what)
            return s
        if time.time() > end:
            raise TimeoutError(f'{what}: not after {seconds} s; last {s}')
        time.sleep(0.1)


def notifications():
    return test_server('GET', '/notifications')


def action_message(instance_id):
    return next((m for m in notifications() if m.get('EC2InstanceId') == instance_id and 'LifecycleActionToken' in m), None)


def wait_messages(ids, seconds):
    end = time.time() + seconds
    while True:
        found = {i: action_message(i) for i in ids}
        if all(found.values()):
            return found
        if time.time() > end:
            raise TimeoutError(f'the lifecycle action messages for {ids}: not after {seconds} s; received {notifications()}')
        time.sleep(0.1)


def call(name, fn):
    """A call the flow expects to succeed: its answer without ResponseMetadata; a ClientError is recorded and raised."""
    try:
        r = fn()
    except ClientError as e:
        out['errors'].append({'call': name, 'Error': e.response['Error'], 'Status': e.response['ResponseMetadata']['HTTPStatusCode']})
        raise
    step(name)
    r.pop('ResponseMetadata', None)
    return plain(r)


def flow():
    out['created_template'] = call('create_launch_template', lambda: ec2.create_launch_template(
        LaunchTemplateName=TEMPLATE, LaunchTemplateData={'UserData': user_data(1)}))['LaunchTemplate']
    call('create_auto_scaling_group', lambda: asg.create_auto_scaling_group(
        AutoScalingGroupName=GROUP, LaunchTemplate={'LaunchTemplateName': TEMPLATE, 'Version': '$Latest'},
        MinSize=1, MaxSize=4, DesiredCapacity=2, TargetGroupARNs=[TG_ARN], HealthCheckGracePeriod=0))
    first = wait('2 InService', lambda s: len(s.ids('InService')) == 2, 10).ids()
    # Scaled out before the first two are healthy: a new instance's first health check fails (it is checked as
    # it starts), so each becomes healthy two intervals after its launch, and the four can do so together.
    call('set_desired_capacity 4', lambda: asg.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=4, HonorCooldown=False))
    wait('4 serving', lambda s: s.serving(4), 15)
    test_server('POST', '/phase/serving')

    call('put_lifecycle_hook', lambda: asg.put_lifecycle_hook(
        AutoScalingGroupName=GROUP, LifecycleHookName=HOOK, LifecycleTransition='autoscaling:EC2_INSTANCE_TERMINATING',
        NotificationTargetARN=TEST_SERVER + '/hook', NotificationMetadata='boto3 flow', HeartbeatTimeout=30, DefaultResult='ABANDON'))
    out['hooks'] = call('describe_lifecycle_hooks', lambda: asg.describe_lifecycle_hooks(AutoScalingGroupName=GROUP))['LifecycleHooks']

    # The default termination policy takes the oldest instances: the first two, launched from the same template.
    call('set_desired_capacity 2', lambda: asg.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2))
    held = wait('2 in Terminating:Wait', lambda s: len(s.ids('Terminating:Wait')) == 2, 15).ids('Terminating:Wait')
    out['held'] = held
    out['terminating_wait'] = plain(asg.describe_auto_scaling_instances(InstanceIds=held)['AutoScalingInstances'])
    messages = wait_messages(held, 10)
    by_token, by_id = held
    token = messages[by_token]['LifecycleActionToken']
    call('record_lifecycle_action_heartbeat', lambda: asg.record_lifecycle_action_heartbeat(
        AutoScalingGroupName=GROUP, LifecycleHookName=HOOK, LifecycleActionToken=token))
    out['still_waiting_after_heartbeat'] = Snapshot().ids('Terminating:Wait')
    out['completed_at_ms'] = int(time.time() * 1000)
    call('complete_lifecycle_action by token', lambda: asg.complete_lifecycle_action(
        AutoScalingGroupName=GROUP, LifecycleHookName=HOOK, LifecycleActionToken=token, LifecycleActionResult='CONTINUE'))
    call('complete_lifecycle_action by instance id', lambda: asg.complete_lifecycle_action(
        AutoScalingGroupName=GROUP, LifecycleHookName=HOOK, InstanceId=by_id, LifecycleActionResult='CONTINUE'))
    remaining = wait('2 left', lambda s: len(s.instances) == 2, 15).ids()
    out['scale_in'] = {'first': first, 'held': held, 'remaining': remaining}

    standby = remaining[0]
    out['enter_standby'] = call('enter_standby', lambda: asg.enter_standby(
        AutoScalingGroupName=GROUP, InstanceIds=[standby], ShouldDecrementDesiredCapacity=False))['Activities']
    s = wait('standby and its replacement', lambda s: s.ids('Standby') == [standby] and len(s.ids('InService')) == 2, 15)
    out['standby'] = {'instance': standby, 'replacement': [i for i in s.ids('InService') if i not in remaining], 'desired': s.group['DesiredCapacity']}
    out['exit_standby'] = call('exit_standby', lambda: asg.exit_standby(AutoScalingGroupName=GROUP, InstanceIds=[standby]))['Activities']
    s = wait('3 in service', lambda s: len(s.ids('InService')) == 3 and len(s.instances) == 3, 15)
    out['desired_after_exit_standby'] = s.group['DesiredCapacity']
    call('delete_lifecycle_hook', lambda: asg.delete_lifecycle_hook(AutoScalingGroupName=GROUP, LifecycleHookName=HOOK))

    out['template_version'] = call('create_launch_template_version', lambda: ec2.create_launch_template_version(
        LaunchTemplateName=TEMPLATE, SourceVersion='1', LaunchTemplateData={'UserData': user_data(2)}))['LaunchTemplateVersion']['VersionNumber']
    before = Snapshot().ids()
    refresh_id = call('start_instance_refresh', lambda: asg.start_instance_refresh(
        AutoScalingGroupName=GROUP, Preferences={'MinHealthyPercentage': 100, 'MaxHealthyPercentage': 200, 'InstanceWarmup': 0}))['InstanceRefreshId']
    end = time.time() + 20
    while True:
        r = asg.describe_instance_refreshes(AutoScalingGroupName=GROUP, InstanceRefreshIds=[refresh_id])['InstanceRefreshes'][0]
        Snapshot()
        if r['Status'] not in ('Pending', 'InProgress'):
            break
        if time.time() > end:
            raise TimeoutError(f'the instance refresh: not ended after 20 s; last {plain(r)}')
        time.sleep(0.2)
    out['refresh_ended_at_ms'] = int(time.time() * 1000)
    step('refresh ' + r['Status'])
    out['refresh'] = plain(r)
    after = Snapshot()
    out['refresh_instances'] = {'before': before, 'after': after.ids(), 'versions': sorted({i['LaunchTemplate']['Version'] for i in after.instances})}
    test_server('POST', '/phase/refreshed')

    pages = asg.get_paginator('describe_scaling_activities').paginate(AutoScalingGroupName=GROUP)
    out['activities'] = [plain({k: a.get(k) for k in ('Description', 'Cause', 'StatusCode', 'Progress', 'StartTime', 'EndTime')}) for p in pages for a in p['Activities']]
    reservations = call('describe_instances by group tag', lambda: ec2.describe_instances(
        Filters=[{'Name': 'tag:aws:autoscaling:groupName', 'Values': [GROUP]}]))['Reservations']
    out['ec2_instances'] = [{'InstanceId': i['InstanceId'], 'State': i['State']['Name'], 'Tags': {t['Key']: t['Value'] for t in i.get('Tags', [])}}
                            for r in reservations for i in r['Instances']]


def delete_group():
    call('delete_auto_scaling_group', lambda: asg.delete_auto_scaling_group(AutoScalingGroupName=GROUP, ForceDelete=True))
    end = time.time() + 15
    while True:
        groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])['AutoScalingGroups']
        if groups:
            Snapshot()
        else:
            step('group gone')
            out['deleted'] = True
            return
        if time.time() > end:
            raise TimeoutError(f'the group gone: still there after 15 s; {groups[0]["Status"] if "Status" in groups[0] else ""} {Snapshot()}')
        time.sleep(0.1)


try:
    flow()
except Exception:  # noqa: BLE001 -- every failure is reported to the Node test, which decides
    out['failure'] = traceback.format_exc()
try:
    delete_group()
except Exception:  # noqa: BLE001
    out['failure'] = (out['failure'] or '') + traceback.format_exc()
out['seconds'] = round(time.time() - T0, 2)
print(json.dumps(out))
