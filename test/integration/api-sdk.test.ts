import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import {
  ConfigureHealthCheckCommand,
  CreateLoadBalancerCommand as ClassicCreateLoadBalancerCommand,
  DescribeLoadBalancerAttributesCommand as ClassicDescribeAttributesCommand,
  DescribeLoadBalancersCommand as ClassicDescribeLoadBalancersCommand,
  ElasticLoadBalancingClient,
  ModifyLoadBalancerAttributesCommand as ClassicModifyAttributesCommand,
} from '@aws-sdk/client-elastic-load-balancing';
import {
  AddTagsCommand,
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
  DeleteListenerCommand,
  DeleteLoadBalancerCommand,
  DeleteTargetGroupCommand,
  DescribeListenersCommand,
  DescribeLoadBalancersCommand,
  ModifyListenerCommand,
  DeregisterTargetsCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  ModifyTargetGroupAttributesCommand,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { type ApiHarness, freePort, startApiHarness } from './api-harness.ts';

/**
 * The JS SDK v3 clients (ELBv2 and Classic) against an in-process ebb, plus the protocol edges no
 * client produces (missing Action, unknown Version, GET, body limits) sent raw.
 */

let h: ApiHarness;
let open: ApiHarness;
let v2: ElasticLoadBalancingV2Client;
let classic: ElasticLoadBalancingClient;

before(async () => {
  h = await startApiHarness();
  open = await startApiHarness({ authentication: false });
  const config = {
    endpoint: h.endpoint,
    region: h.region,
    credentials: { accessKeyId: h.accessKeyId, secretAccessKey: h.secretAccessKey },
    maxAttempts: 1,
  };
  v2 = new ElasticLoadBalancingV2Client(config);
  classic = new ElasticLoadBalancingClient(config);
});
after(async () => {
  v2.destroy();
  classic.destroy();
  await h.close();
  await open.close();
});

interface SdkError {
  name: string;
  Code?: string;
  message: string;
  $metadata: { httpStatusCode?: number; requestId?: string };
}

async function rejectsWith(p: Promise<unknown>, code: string, status: number, message?: RegExp): Promise<SdkError> {
  try {
    await p;
  } catch (e) {
    const err = e as SdkError;
    assert.equal(err.Code ?? err.name, code, `${err.name}: ${err.message}`);
    assert.equal(err.$metadata.httpStatusCode, status);
    if (message !== undefined) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

test('SDK v3 ELBv2: register, describe health, deregister with delay 0, read attributes back', async () => {
  const created = await v2.send(new CreateTargetGroupCommand({ Name: 'sdk-tg', Protocol: 'HTTP', Port: 8080, TargetType: 'ip', HealthCheckEnabled: true }));
  const arn = created.TargetGroups?.[0]?.TargetGroupArn ?? '';
  assert.match(arn, /:targetgroup\/sdk-tg\//);
  assert.equal(created.TargetGroups?.[0]?.HealthCheckIntervalSeconds, 30);
  assert.ok(created.$metadata.requestId !== undefined && created.$metadata.requestId.length > 0);

  const attrs = await v2.send(new ModifyTargetGroupAttributesCommand({ TargetGroupArn: arn, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '0' }] }));
  assert.ok(attrs.Attributes?.some((a) => a.Key === 'deregistration_delay.timeout_seconds' && a.Value === '0'));

  await v2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: '127.0.0.1', Port: 9 }, { Id: '127.0.0.2' }] }));
  const health = await v2.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn }));
  const ids = (health.TargetHealthDescriptions ?? []).map((d) => `${d.Target?.Id}:${d.Target?.Port}`).sort();
  assert.deepEqual(ids, ['127.0.0.1:9', '127.0.0.2:8080']);
  // Not behind a listener yet: unused / Target.NotInUse, as AWS says.
  assert.equal(health.TargetHealthDescriptions?.[0]?.TargetHealth?.Reason, 'Target.NotInUse');

  await v2.send(new DeregisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: '127.0.0.1', Port: 9 }] }));
  const after = await v2.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn, Targets: [{ Id: '127.0.0.1', Port: 9 }] }));
  assert.deepEqual(after.TargetHealthDescriptions?.[0]?.TargetHealth, {
    State: 'unused',
    Reason: 'Target.NotRegistered',
    Description: 'Target is not registered to the target group',
  });
  await v2.send(new DeleteTargetGroupCommand({ TargetGroupArn: arn }));
});

test('SDK v3 ELBv2: listeners are created, described, moved to another port and deleted', async () => {
  const lb = await v2.send(new CreateLoadBalancerCommand({ Name: 'listen-lb', Scheme: 'internal' }));
  const lbArn = lb.LoadBalancers?.[0]?.LoadBalancerArn ?? '';
  assert.equal(lb.LoadBalancers?.[0]?.Scheme, 'internal');
  const tg = await v2.send(new CreateTargetGroupCommand({ Name: 'listen-tg', Protocol: 'HTTP', Port: 80, TargetType: 'ip' }));
  const tgArn = tg.TargetGroups?.[0]?.TargetGroupArn ?? '';
  const [p1, p2] = [await freePort(), await freePort()];
  const created = await v2.send(
    new CreateListenerCommand({ LoadBalancerArn: lbArn, Protocol: 'HTTP', Port: p1, DefaultActions: [{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: tgArn }] } }] }),
  );
  const listenerArn = created.Listeners?.[0]?.ListenerArn ?? '';
  assert.match(listenerArn, /:listener\/app\/listen-lb\//);
  await rejectsWith(
    v2.send(new CreateListenerCommand({ LoadBalancerArn: lbArn, Protocol: 'HTTP', Port: p1, DefaultActions: [{ Type: 'forward', TargetGroupArn: tgArn }] })),
    'DuplicateListener',
    400,
  );
  const moved = await v2.send(new ModifyListenerCommand({ ListenerArn: listenerArn, Port: p2 }));
  assert.equal(moved.Listeners?.[0]?.Port, p2);
  const listed = await v2.send(new DescribeListenersCommand({ ListenerArns: [listenerArn] }));
  assert.equal(listed.Listeners?.[0]?.DefaultActions?.[0]?.TargetGroupArn, tgArn);
  await rejectsWith(v2.send(new DescribeListenersCommand({})), 'ValidationError', 400);
  const lbs = await v2.send(new DescribeLoadBalancersCommand({ LoadBalancerArns: [lbArn] }));
  assert.equal(lbs.LoadBalancers?.[0]?.LoadBalancerName, 'listen-lb');
  assert.ok(lbs.LoadBalancers?.[0]?.CreatedTime instanceof Date);
  await v2.send(new DeleteListenerCommand({ ListenerArn: listenerArn }));
  await rejectsWith(v2.send(new DeleteListenerCommand({ ListenerArn: listenerArn })), 'ListenerNotFound', 400);
  await v2.send(new DeleteLoadBalancerCommand({ LoadBalancerArn: lbArn }));
  await v2.send(new DeleteTargetGroupCommand({ TargetGroupArn: tgArn }));
});

test('SDK v3 ELBv2: the server validates what botocore would and what it would not', async () => {
  const tg = await v2.send(new CreateTargetGroupCommand({ Name: 'val-tg', Protocol: 'HTTP', Port: 80, TargetType: 'ip' }));
  const arn = tg.TargetGroups?.[0]?.TargetGroupArn ?? '';
  await rejectsWith(v2.send(new CreateTargetGroupCommand({ Name: 'hc', Protocol: 'HTTP', Port: 80, HealthCheckIntervalSeconds: 2 })), 'ValidationError', 400, /HealthCheckIntervalSeconds/);
  await rejectsWith(v2.send(new CreateTargetGroupCommand({ Name: 'hc', Protocol: 'HTTP', Port: 80, HealthCheckIntervalSeconds: 10, HealthCheckTimeoutSeconds: 10 })), 'ValidationError', 400, /smaller/);
  await rejectsWith(v2.send(new CreateTargetGroupCommand({ Name: 'bad_name', Protocol: 'HTTP', Port: 80 })), 'ValidationError', 400, /bad_name/);
  await rejectsWith(v2.send(new CreateTargetGroupCommand({ Name: 'udp', Protocol: 'UDP', Port: 80 })), 'ValidationError', 400, /UDP/);
  await rejectsWith(v2.send(new CreateTargetGroupCommand({ Name: 'noport', Protocol: 'HTTP' })), 'ValidationError', 400, /port/);
  await rejectsWith(v2.send(new CreateTargetGroupCommand({ Name: 'tcphc', Protocol: 'HTTP', Port: 80, HealthCheckProtocol: 'TCP' })), 'ValidationError', 400, /TCP/);
  const dup = await rejectsWith(v2.send(new CreateTargetGroupCommand({ Name: 'val-tg', Protocol: 'HTTP', Port: 80 })), 'DuplicateTargetGroupName', 400);
  assert.equal(dup.name, 'DuplicateTargetGroupNameException');
  await rejectsWith(v2.send(new ModifyTargetGroupAttributesCommand({ TargetGroupArn: arn, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '-1' }] })), 'ValidationError', 400);
  await rejectsWith(v2.send(new ModifyTargetGroupAttributesCommand({ TargetGroupArn: arn, Attributes: [{ Key: 'no_such.attribute', Value: '1' }] })), 'ValidationError', 400, /no_such/);
  await rejectsWith(v2.send(new AddTagsCommand({ ResourceArns: [arn], Tags: [{ Key: 'team', Value: 'a' }, { Key: 'team', Value: 'b' }] })), 'DuplicateTagKeys', 400, /team/);
  await rejectsWith(v2.send(new AddTagsCommand({ ResourceArns: [arn], Tags: [{ Key: 'no#hash', Value: 'x' }] })), 'ValidationError', 400, /no#hash/);
  await rejectsWith(
    v2.send(new AddTagsCommand({ ResourceArns: [arn], Tags: Array.from({ length: 51 }, (_, i) => ({ Key: `k${i}`, Value: 'v' })) })),
    'TooManyTags',
    400,
  );
  await rejectsWith(v2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: 'not-an-ip' }] })), 'InvalidTarget', 400);
  await rejectsWith(v2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: '127.0.0.1', Port: 70000 }] })), 'ValidationError', 400, /65535/);
  const notFound = await rejectsWith(
    v2.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn.replace(/\/[0-9a-f]+$/, '/0000000000000000') })),
    'TargetGroupNotFound',
    400,
  );
  assert.equal(notFound.name, 'TargetGroupNotFoundException');
  await rejectsWith(v2.send(new CreateLoadBalancerCommand({ Name: 'gw', Type: 'gateway' })), 'ValidationError', 400, /Gateway/);
  const lb = await v2.send(new CreateLoadBalancerCommand({ Name: 'sdk-lb' }));
  await rejectsWith(v2.send(new CreateLoadBalancerCommand({ Name: 'sdk-lb' })), 'DuplicateLoadBalancerName', 400);
  const lbArn = lb.LoadBalancers?.[0]?.LoadBalancerArn ?? '';
  await rejectsWith(
    v2.send(new CreateListenerCommand({ LoadBalancerArn: lbArn, Protocol: 'HTTP', Port: await freePort(), DefaultActions: [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '200' } }] })),
    'InvalidLoadBalancerAction',
    400,
  );
  await rejectsWith(
    v2.send(new CreateListenerCommand({ LoadBalancerArn: lbArn, Protocol: 'UDP', Port: 53, DefaultActions: [{ Type: 'forward', TargetGroupArn: arn }] })),
    'UnsupportedProtocol',
    400,
  );
});

test('SDK v3: a wrong secret, an unknown key and a date 20 minutes old are refused', async () => {
  const base = { endpoint: h.endpoint, region: h.region, maxAttempts: 1 };
  const wrong = new ElasticLoadBalancingV2Client({ ...base, credentials: { accessKeyId: h.accessKeyId, secretAccessKey: 'wrong' } });
  const unknown = new ElasticLoadBalancingV2Client({ ...base, credentials: { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'x' } });
  const old = new ElasticLoadBalancingV2Client({
    ...base,
    credentials: { accessKeyId: h.accessKeyId, secretAccessKey: h.secretAccessKey },
    systemClockOffset: -20 * 60 * 1000,
  });
  try {
    await rejectsWith(wrong.send(new DescribeTargetGroupsCommand({})), 'SignatureDoesNotMatch', 403);
    await rejectsWith(unknown.send(new DescribeTargetGroupsCommand({})), 'InvalidClientTokenId', 403);
    await rejectsWith(old.send(new DescribeTargetGroupsCommand({})), 'RequestExpired', 400, /15 minutes/);
  } finally {
    wrong.destroy();
    unknown.destroy();
    old.destroy();
  }
});

test('SDK v3 Classic: create, health check, draining attributes; out of range is 409; groups hidden from ELBv2', async () => {
  const port = await freePort();
  const created = await classic.send(
    new ClassicCreateLoadBalancerCommand({
      LoadBalancerName: 'sdk-classic',
      Listeners: [{ Protocol: 'HTTP', LoadBalancerPort: port, InstanceProtocol: 'HTTP', InstancePort: 7000 }],
      AvailabilityZones: ['us-east-1a'],
    }),
  );
  assert.match(created.DNSName ?? '', /sdk-classic/);
  const d = await classic.send(new ClassicDescribeLoadBalancersCommand({ LoadBalancerNames: ['sdk-classic'] }));
  assert.match(d.LoadBalancerDescriptions?.[0]?.HealthCheck?.Target ?? '', /^(TCP:7000|HTTP:7000\/)$/);
  assert.deepEqual(d.LoadBalancerDescriptions?.[0]?.Instances, []);

  const hc = await classic.send(
    new ConfigureHealthCheckCommand({ LoadBalancerName: 'sdk-classic', HealthCheck: { Target: 'HTTP:7001/ping', Interval: 10, Timeout: 3, UnhealthyThreshold: 3, HealthyThreshold: 4 } }),
  );
  assert.equal(hc.HealthCheck?.Target, 'HTTP:7001/ping');
  await rejectsWith(
    classic.send(new ConfigureHealthCheckCommand({ LoadBalancerName: 'sdk-classic', HealthCheck: { Target: 'HTTP:7001/ping', Interval: 5, Timeout: 5, UnhealthyThreshold: 2, HealthyThreshold: 2 } })),
    'ValidationError',
    400,
    /smaller/,
  );

  const mod = await classic.send(new ClassicModifyAttributesCommand({ LoadBalancerName: 'sdk-classic', LoadBalancerAttributes: { ConnectionDraining: { Enabled: true, Timeout: 42 } } }));
  assert.deepEqual(mod.LoadBalancerAttributes?.ConnectionDraining, { Enabled: true, Timeout: 42 });
  const range = await rejectsWith(
    classic.send(new ClassicModifyAttributesCommand({ LoadBalancerName: 'sdk-classic', LoadBalancerAttributes: { ConnectionDraining: { Enabled: true, Timeout: 0 } } })),
    'InvalidConfigurationRequest',
    409,
  );
  assert.equal(range.name, 'InvalidConfigurationRequestException');
  const read = await classic.send(new ClassicDescribeAttributesCommand({ LoadBalancerName: 'sdk-classic' }));
  assert.deepEqual(read.LoadBalancerAttributes?.ConnectionDraining, { Enabled: true, Timeout: 42 });

  const missing = await rejectsWith(classic.send(new ClassicDescribeLoadBalancersCommand({ LoadBalancerNames: ['nope'] })), 'LoadBalancerNotFound', 400);
  assert.equal(missing.name, 'AccessPointNotFoundException');
  await rejectsWith(
    classic.send(new ClassicCreateLoadBalancerCommand({ LoadBalancerName: 'sdk-classic', Listeners: [{ Protocol: 'HTTP', LoadBalancerPort: port + 1, InstancePort: 7000 }] })),
    'DuplicateLoadBalancerName',
    400,
  );
  const badScheme = await rejectsWith(
    classic.send(new ClassicCreateLoadBalancerCommand({ LoadBalancerName: 'sdk-scheme', Scheme: 'weird', Listeners: [{ Protocol: 'HTTP', LoadBalancerPort: port + 2, InstancePort: 7000 }] })),
    'InvalidScheme',
    400,
  );
  assert.equal(badScheme.name, 'InvalidSchemeException');

  const v2Groups = await v2.send(new DescribeTargetGroupsCommand({}));
  assert.ok(!(v2Groups.TargetGroups ?? []).some((g) => g.TargetGroupName?.startsWith('classic-sdk-classic')), 'Classic groups are not listed by ELBv2');
  const byName = await v2.send(new DescribeTargetGroupsCommand({ Names: ['classic-sdk-classic-7000'] }));
  assert.equal(byName.TargetGroups?.[0]?.HealthCheckPort, '7001');
});

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function raw(endpoint: string, method: string, path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

test('protocol edges: auth required, missing Action/Version, unknown action, GET, content type, body limit, request ids', async () => {
  const unsigned = await raw(h.endpoint, 'POST', '/', 'Action=DescribeTargetGroups&Version=2015-12-01', FORM);
  assert.equal(unsigned.status, 403);
  assert.match(unsigned.body, /<Code>MissingAuthenticationToken<\/Code>/);

  const noAction = await raw(open.endpoint, 'POST', '/', 'Version=2015-12-01', FORM);
  assert.equal(noAction.status, 400);
  assert.match(noAction.body, /<Code>MissingParameter<\/Code>.*Action/s);
  const noVersion = await raw(open.endpoint, 'POST', '/', 'Action=DescribeTargetGroups', FORM);
  assert.match(noVersion.body, /<Code>MissingParameter<\/Code>.*Version/s);
  const badVersion = await raw(open.endpoint, 'POST', '/', 'Action=DescribeTargetGroups&Version=2099-01-01', FORM);
  assert.match(badVersion.body, /<Code>InvalidAction<\/Code>/);
  const unknownAction = await raw(open.endpoint, 'POST', '/', 'Action=CreateRule&Version=2015-12-01', FORM);
  assert.equal(unknownAction.status, 400);
  assert.match(unknownAction.body, /<Code>InvalidAction<\/Code>.*CreateRule/s);
  const unknownAs = await raw(open.endpoint, 'POST', '/', 'Action=Nope&Version=2011-01-01', FORM);
  assert.match(unknownAs.body, /xmlns="http:\/\/autoscaling\.amazonaws\.com\/doc\/2011-01-01\/".*<Code>InvalidAction<\/Code>/s);

  const viaGet = await raw(open.endpoint, 'GET', '/?Action=DescribeTargetGroups&Version=2015-12-01', '');
  assert.equal(viaGet.status, 200);
  assert.match(viaGet.body, /<DescribeTargetGroupsResponse xmlns="http:\/\/elasticloadbalancing\.amazonaws\.com\/doc\/2015-12-01\/"><DescribeTargetGroupsResult><TargetGroups\/>/);
  const requestId = /<RequestId>([^<]+)<\/RequestId>/.exec(viaGet.body)?.[1];
  assert.equal(viaGet.headers['x-amzn-requestid'], requestId);
  assert.equal(viaGet.headers['content-type'], 'text/xml');

  const empty = await raw(open.endpoint, 'POST', '/', 'Action=DeleteListener&Version=2015-12-01', FORM);
  assert.match(empty.body, /Value null at &apos;ListenerArn&apos;/);

  const json = await raw(open.endpoint, 'POST', '/', '{"Action":"DescribeTargetGroups"}', { 'content-type': 'application/json' });
  assert.equal(json.status, 400);
  assert.match(json.body, /application\/x-www-form-urlencoded/);

  const huge = await raw(open.endpoint, 'POST', '/', Buffer.alloc(1024 * 1024 + 10, 'a'), FORM);
  assert.equal(huge.status, 413);

  const notFound = await raw(open.endpoint, 'GET', '/nothing-here', '');
  assert.equal(notFound.status, 404);
});
