import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CreateLoadBalancerCommand,
  DescribeLoadBalancerAttributesCommand,
  DescribeLoadBalancersCommand,
  ElasticLoadBalancingClient,
  ModifyLoadBalancerAttributesCommand,
  SetLoadBalancerListenerSSLCertificateCommand,
} from '@aws-sdk/client-elastic-load-balancing';
import {
  AddTagsCommand,
  DescribeTagsCommand,
  DescribeTargetGroupsCommand,
  ElasticLoadBalancingV2Client,
  RemoveTagsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { classicActions } from '../../src/api/classic/actions.ts';
import { parseQueryString, QueryParams } from '../../src/api/query-parser.ts';
import { ControlPlane } from '../../src/control/control-plane.ts';
import type { TargetStateEvent } from '../../src/control/events.ts';
import { EbbError } from '../../src/shared/errors.ts';
import { InMemoryStateStore } from '../../src/store/in-memory-state-store.ts';
import { FakeClock } from '../fakes/fake-clock.ts';
import { FakeDataPlane } from '../fakes/fake-data-plane.ts';
import { leafCert } from '../support/certs.ts';
import { type ApiHarness, freePort, startApiHarness } from './api-harness.ts';

/**
 * Classic ELB (2012-06-01) through the JS SDK v3 against an in-process ebb: what a Classic load
 * balancer may be made of, and where its settings live.
 */

let h: ApiHarness;
let classic: ElasticLoadBalancingClient;
let v2: ElasticLoadBalancingV2Client;

before(async () => {
  h = await startApiHarness();
  const config = {
    endpoint: h.endpoint,
    region: h.region,
    credentials: { accessKeyId: h.accessKeyId, secretAccessKey: h.secretAccessKey },
    maxAttempts: 1,
  };
  classic = new ElasticLoadBalancingClient(config);
  v2 = new ElasticLoadBalancingV2Client(config);
});
after(async () => {
  classic.destroy();
  v2.destroy();
  await h.close();
});

interface SdkError {
  name: string;
  Code?: string;
  message: string;
  $metadata: { httpStatusCode?: number };
}

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    const err = e as SdkError;
    assert.equal(err.Code ?? err.name, code, `${err.name}: ${err.message}`);
    if (message !== undefined) assert.match(err.message, message);
    return;
  }
  assert.fail(`expected ${code}`);
}

test('HTTPS and SSL listeners take an SSLCertificateId ebb knows; InstanceProtocol HTTPS is TLS to instances, SSL is refused; nothing half-made', async () => {
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  const cert = leafCert(['classic.example']);
  const other = leafCert(['other.example']);
  const { arn } = await h.control.certificates.importCertificate({ certificatePem: cert.certPem, privateKeyPem: cert.keyPem });
  const { arn: otherArn } = await h.control.certificates.importCertificate({ certificatePem: other.certPem, privateKeyPem: other.keyPem });
  const unknown = arn.replace(/[0-9a-f]{12}$/, '000000000000');
  const create = (Listeners: NonNullable<ConstructorParameters<typeof CreateLoadBalancerCommand>[0]['Listeners']>) =>
    classic.send(new CreateLoadBalancerCommand({ LoadBalancerName: 'secure', Listeners }));
  await rejectsWith(create([{ Protocol: 'HTTPS', LoadBalancerPort: p1, InstanceProtocol: 'HTTP', InstancePort: 80 }]), 'ValidationError', /needs SSLCertificateId.*aws acm import-certificate/);
  await rejectsWith(create([{ Protocol: 'HTTPS', LoadBalancerPort: p1, InstanceProtocol: 'HTTP', InstancePort: 80, SSLCertificateId: unknown }]), 'CertificateNotFound');
  await rejectsWith(create([{ Protocol: 'SSL', LoadBalancerPort: p2, InstancePort: 5000, SSLCertificateId: arn }]), 'UnsupportedProtocol', /InstanceProtocol SSL \(the default for an SSL listener\).*InstanceProtocol=TCP/);
  await rejectsWith(create([{ Protocol: 'SSL', LoadBalancerPort: p2, InstanceProtocol: 'HTTP', InstancePort: 5000, SSLCertificateId: arn }]), 'InvalidConfigurationRequest', /TCP or SSL/);
  assert.deepEqual(h.control.describeLoadBalancers({ type: 'classic' }), []);
  assert.deepEqual(h.control.describeTargetGroups(), []);

  await create([
    { Protocol: 'HTTPS', LoadBalancerPort: p1, InstanceProtocol: 'HTTPS', InstancePort: 8443, SSLCertificateId: arn },
    { Protocol: 'SSL', LoadBalancerPort: p2, InstanceProtocol: 'TCP', InstancePort: 5000, SSLCertificateId: arn },
    { Protocol: 'HTTP', LoadBalancerPort: p3, InstanceProtocol: 'HTTPS', InstancePort: 8443 },
  ]);
  const described = async () => (await classic.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: ['secure'] }))).LoadBalancerDescriptions?.[0]?.ListenerDescriptions ?? [];
  assert.deepEqual(
    (await described()).map((d) => d.Listener).sort((a, b) => (a?.LoadBalancerPort ?? 0) - (b?.LoadBalancerPort ?? 0)),
    [
      { Protocol: 'HTTPS', LoadBalancerPort: p1, InstanceProtocol: 'HTTPS', InstancePort: 8443, SSLCertificateId: arn },
      { Protocol: 'SSL', LoadBalancerPort: p2, InstanceProtocol: 'TCP', InstancePort: 5000, SSLCertificateId: arn },
      { Protocol: 'HTTP', LoadBalancerPort: p3, InstanceProtocol: 'HTTPS', InstancePort: 8443 },
    ].sort((a, b) => a.LoadBalancerPort - b.LoadBalancerPort),
  );
  const lb = h.control.describeLoadBalancers({ type: 'classic' }).find((l) => l.name === 'secure');
  assert.deepEqual(
    h.control.describeTargetGroups({ loadBalancerArn: lb?.arn ?? '' }).map((g) => `${g.protocol}:${g.port}`).sort(),
    ['HTTPS:8443', 'TCP:5000'],
  );

  await classic.send(new SetLoadBalancerListenerSSLCertificateCommand({ LoadBalancerName: 'secure', LoadBalancerPort: p1, SSLCertificateId: otherArn }));
  assert.equal((await described()).find((d) => d.Listener?.LoadBalancerPort === p1)?.Listener?.SSLCertificateId, otherArn);
  await rejectsWith(classic.send(new SetLoadBalancerListenerSSLCertificateCommand({ LoadBalancerName: 'secure', LoadBalancerPort: p3, SSLCertificateId: arn })), 'InvalidConfigurationRequest', /uses HTTP/);
  await rejectsWith(classic.send(new SetLoadBalancerListenerSSLCertificateCommand({ LoadBalancerName: 'secure', LoadBalancerPort: 1, SSLCertificateId: arn })), 'ListenerNotFound');
  await rejectsWith(classic.send(new SetLoadBalancerListenerSSLCertificateCommand({ LoadBalancerName: 'secure', LoadBalancerPort: p1, SSLCertificateId: unknown })), 'CertificateNotFound');
});

test('a Classic load balancer keeps its settings in itself: tag calls neither see nor change them', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  await classic.send(
    new CreateLoadBalancerCommand({
      LoadBalancerName: 'settled',
      Listeners: [
        { Protocol: 'HTTP', LoadBalancerPort: p1, InstanceProtocol: 'HTTP', InstancePort: 8080 },
        { Protocol: 'HTTP', LoadBalancerPort: p2, InstanceProtocol: 'HTTP', InstancePort: 8081 },
      ],
      Tags: [{ Key: 'team', Value: 'web' }],
    }),
  );
  await classic.send(
    new ModifyLoadBalancerAttributesCommand({
      LoadBalancerName: 'settled',
      LoadBalancerAttributes: { ConnectionDraining: { Enabled: false, Timeout: 120 }, CrossZoneLoadBalancing: { Enabled: true } },
    }),
  );
  const attributes = async () => (await classic.send(new DescribeLoadBalancerAttributesCommand({ LoadBalancerName: 'settled' }))).LoadBalancerAttributes;
  const before = await attributes();
  assert.deepEqual(before?.ConnectionDraining, { Enabled: false, Timeout: 120 });
  assert.deepEqual(before?.CrossZoneLoadBalancing, { Enabled: true });

  const lb = h.control.describeLoadBalancers({ type: 'classic' }).find((l) => l.name === 'settled');
  assert.ok(lb !== undefined);
  const groups = (await v2.send(new DescribeTargetGroupsCommand({ LoadBalancerArn: lb.arn }))).TargetGroups ?? [];
  assert.equal(groups.length, 2);
  const arns = [lb.arn, ...groups.map((g) => g.TargetGroupArn ?? '')];
  const tags = (await v2.send(new DescribeTagsCommand({ ResourceArns: arns }))).TagDescriptions ?? [];
  assert.deepEqual(
    tags.map((d) => (d.Tags ?? []).map((t) => t.Key)),
    [['team'], [], []],
    'only the user\'s own tags',
  );

  await rejectsWith(
    v2.send(new AddTagsCommand({ ResourceArns: [lb.arn], Tags: [{ Key: 'ebb:classic-draining-timeout', Value: '5' }] })),
    'ValidationError',
    /reserved/,
  );
  await v2.send(
    new RemoveTagsCommand({ ResourceArns: arns, TagKeys: ['ebb:classic-lb', 'ebb:classic-instance-port', 'ebb:classic-draining-timeout', 'ebb:classic-cross-zone'] }),
  );
  assert.deepEqual(await attributes(), before, 'settings unchanged by tag calls');
  const listed = (await v2.send(new DescribeTargetGroupsCommand({}))).TargetGroups ?? [];
  assert.ok(!listed.some((g) => arns.includes(g.TargetGroupArn ?? '')), 'its groups are still left out of the ELBv2 listing');
});

/** A Classic action called as the admin endpoint calls it, on a control plane whose store counts its commits. */
async function classicOnStore() {
  const store = new InMemoryStateStore();
  const control = new ControlPlane({ clock: new FakeClock(), store, dataPlanes: [new FakeDataPlane()] });
  await control.start();
  const call = (action: string, query: string) => {
    const handler = classicActions[action];
    assert.ok(handler !== undefined, action);
    return handler(new QueryParams(parseQueryString(query)), { control, requestId: 'test' });
  };
  return { store, control, call };
}

test('Classic DeleteLoadBalancer is one change: its listeners, groups and registrations go in one commit, or nothing does', async () => {
  const { store, control, call } = await classicOnStore();
  await control.putInstance({ id: 'i-0abc', address: '127.0.0.1' });
  const listener = (n: number, front: number, instance: number) =>
    `&Listeners.member.${n}.Protocol=HTTP&Listeners.member.${n}.LoadBalancerPort=${front}&Listeners.member.${n}.InstancePort=${instance}`;
  await call('CreateLoadBalancer', `LoadBalancerName=gone${listener(1, 9100, 8080)}${listener(2, 9101, 8081)}`);
  await call('RegisterInstancesWithLoadBalancer', 'LoadBalancerName=gone&Instances.member.1.InstanceId=i-0abc');
  const whole = () => ({
    loadBalancers: control.describeLoadBalancers({ type: 'classic' }).length,
    groups: control.describeTargetGroups().length,
    registrations: control.describeTargetGroups().flatMap((g) => control.describeTargetHealth(g.arn)).length,
  });
  assert.deepEqual(whole(), { loadBalancers: 1, groups: 2, registrations: 2 });

  store.failNextCommit();
  await assert.rejects(call('DeleteLoadBalancer', 'LoadBalancerName=gone'), (e: unknown) => EbbError.is(e) && e.code === 'StoreUnavailable');
  assert.deepEqual(whole(), { loadBalancers: 1, groups: 2, registrations: 2 }, 'a failed delete leaves it whole');
  assert.equal(control.describeListeners({ loadBalancerArn: control.describeLoadBalancers({ type: 'classic' })[0]?.arn ?? '' }).length, 2);

  const states: TargetStateEvent[] = [];
  control.events.on('target:state', (e) => states.push(e));
  const commits = store.commits;
  await call('DeleteLoadBalancer', 'LoadBalancerName=gone');
  assert.equal(store.commits - commits, 1, 'one commit');
  assert.deepEqual(whole(), { loadBalancers: 0, groups: 0, registrations: 0 });
  assert.deepEqual(states.map((e) => e.to.reason), ['Target.NotRegistered', 'Target.NotRegistered'], 'each registration is reported leaving');
  await control.close();
});
