import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { EbbError } from '../shared/errors.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import type { ListenerRecord, TargetGroupRecord } from '../domain/resources.ts';
import { ArnFactory } from './arn.ts';
import type { CreateListenerInput } from './inputs.ts';
import { ListenerCommands } from './listener-commands.ts';
import { MAX_LISTENER_CERTIFICATES } from './listener-rules.ts';
import { ResourceCatalog } from './resource-catalog.ts';
import { StoreTransaction } from './store-transaction.ts';

/** The listener rules through ListenerCommands and the catalog, with a certificate catalog of known ARNs. */

const CERT = (n: number) => `arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-${String(n).padStart(12, '0')}`;

async function setup() {
  const store = new InMemoryStateStore();
  const catalog = new ResourceCatalog(new ArnFactory('us-east-1', '123456789012'), new FakeClock());
  const known = new Set([1, 2, 3].map(CERT));
  catalog.useCertificates((arn) => (known.has(arn) ? { arn } : undefined));
  const transaction = new StoreTransaction(store, () => undefined);
  const commands = new ListenerCommands({ catalog, transaction, openErrors: async () => [] });
  const add = <T extends { arn: string }>(record: T, set: (r: T) => void): T => (set(record), record);
  const alb = add(catalog.buildLoadBalancer({ name: 'alb' }), (r) => catalog.setLoadBalancer(r));
  const nlb = add(catalog.buildLoadBalancer({ name: 'nlb', type: 'network' }), (r) => catalog.setLoadBalancer(r));
  const group = (name: string, protocol: TargetGroupRecord['protocol']) => add(catalog.buildTargetGroup({ name, protocol, port: 9000, targetType: 'ip' }), (r) => catalog.setTargetGroup(r));
  const http = group('http', 'HTTP');
  const https = group('https', 'HTTPS');
  const tcp = group('tcp', 'TCP');
  let port = 10_000;
  const listener = (lb: { arn: string }, protocol: ListenerRecord['protocol'], tg: { arn: string }, extra: Partial<CreateListenerInput> = {}) =>
    commands.create({ loadBalancerArn: lb.arn, protocol, port: port++, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }], ...extra });
  return { store, catalog, commands, alb, nlb, http, https, tcp, listener, known };
}

const code = (c: string, re?: RegExp) => (e: unknown) => EbbError.is(e) && e.code === c && (re === undefined || re.test(e.message));

describe('listener protocols by load balancer type and the groups they forward to', () => {
  test('a network load balancer takes TCP and TLS listeners forwarding to TCP groups; an application one HTTP and HTTPS to HTTP(S) groups', async () => {
    const s = await setup();
    const tcp = await s.listener(s.nlb, 'TCP', s.tcp);
    assert.equal(tcp.protocol, 'TCP');
    assert.equal(tcp.certificateArns, undefined);
    const tls = await s.listener(s.nlb, 'TLS', s.tcp, { certificateArns: [CERT(1)] });
    assert.deepEqual(tls.certificateArns, [CERT(1)], 'a TLS listener to a TCP group: NLB ends TLS');
    await s.listener(s.alb, 'HTTP', s.https);
    await s.listener(s.alb, 'HTTPS', s.http, { certificateArns: [CERT(1)] });
  });

  test('the wrong protocol for the load balancer is a ValidationError that names the right type', async () => {
    const s = await setup();
    await assert.rejects(s.listener(s.alb, 'TCP', s.tcp), code('ValidationError', /must be one of 'HTTP, HTTPS'.*type network/));
    await assert.rejects(s.listener(s.nlb, 'HTTP', s.http), code('ValidationError', /must be one of 'TCP, TLS'.*type application/));
  });

  test('the wrong pairing is IncompatibleProtocols, saying which groups fit', async () => {
    const s = await setup();
    await assert.rejects(s.listener(s.nlb, 'TCP', s.http), code('IncompatibleProtocols', /TCP listeners forward to TCP target groups/));
    await assert.rejects(s.listener(s.nlb, 'TLS', s.https, { certificateArns: [CERT(1)] }), code('IncompatibleProtocols', /TLS listeners forward to TCP/));
    await assert.rejects(s.listener(s.alb, 'HTTP', s.tcp), code('IncompatibleProtocols', /HTTP listeners forward to HTTP or HTTPS target groups/));
    const l = await s.listener(s.alb, 'HTTP', s.http);
    await assert.rejects(s.commands.modify(l.arn, { defaultActions: [{ type: 'forward', targetGroupArn: s.tcp.arn }] }), code('IncompatibleProtocols'));
    assert.equal(s.store.commits, 1, 'only the one listener was written');
  });

  test('ports clash across load balancers of either type', async () => {
    const s = await setup();
    await s.commands.create({ loadBalancerArn: s.nlb.arn, protocol: 'TCP', port: 7000, defaultActions: [{ type: 'forward', targetGroupArn: s.tcp.arn }] });
    await assert.rejects(
      s.commands.create({ loadBalancerArn: s.alb.arn, protocol: 'HTTP', port: 7000, defaultActions: [{ type: 'forward', targetGroupArn: s.http.arn }] }),
      code('DuplicateListener'),
    );
  });
});

describe('HTTPS and TLS listeners: certificates and policies', () => {
  test('exactly one known certificate on creation; the policy defaults to ELBSecurityPolicy-TLS13-1-2-2021-06', async () => {
    const s = await setup();
    await assert.rejects(s.listener(s.alb, 'HTTPS', s.http), code('ValidationError', /A certificate must be specified for HTTPS listeners/));
    await assert.rejects(s.listener(s.alb, 'HTTPS', s.http, { certificateArns: [CERT(1), CERT(2)] }), code('ValidationError', /exactly one certificate.*AddListenerCertificates/));
    await assert.rejects(s.listener(s.alb, 'HTTPS', s.http, { certificateArns: [CERT(9)] }), code('CertificateNotFound', /aws acm import-certificate/));
    await assert.rejects(s.listener(s.alb, 'HTTPS', s.http, { certificateArns: [CERT(1)], sslPolicy: 'ELBSecurityPolicy-Nope' }), code('SSLPolicyNotFound', /describe-ssl-policies/));
    const l = await s.listener(s.alb, 'HTTPS', s.http, { certificateArns: [CERT(1)] });
    assert.equal(l.sslPolicy, 'ELBSecurityPolicy-TLS13-1-2-2021-06');
    const old = await s.listener(s.alb, 'HTTPS', s.http, { certificateArns: [CERT(1)], sslPolicy: 'ELBSecurityPolicy-2016-08' });
    assert.equal(old.sslPolicy, 'ELBSecurityPolicy-2016-08');
  });

  test('HTTP and TCP listeners take no certificate, SSL policy or ALPN policy', async () => {
    const s = await setup();
    await assert.rejects(s.listener(s.alb, 'HTTP', s.http, { certificateArns: [CERT(1)] }), code('ValidationError', /HTTPS and TLS listeners only.*use protocol HTTPS/));
    await assert.rejects(s.listener(s.nlb, 'TCP', s.tcp, { certificateArns: [CERT(1)] }), code('ValidationError', /use protocol TLS/));
    await assert.rejects(s.listener(s.alb, 'HTTP', s.http, { sslPolicy: 'ELBSecurityPolicy-2016-08' }), code('ValidationError', /SSL policy/));
    await assert.rejects(s.listener(s.nlb, 'TCP', s.tcp, { alpnPolicy: 'None' }), code('ValidationError', /ALPN policy.*TLS listeners only/));
  });

  test('ALPN policy: TLS listeners only, None alone is served; an unknown name and an unserved one are ALPNPolicyNotFound', async () => {
    const s = await setup();
    await s.listener(s.nlb, 'TLS', s.tcp, { certificateArns: [CERT(1)], alpnPolicy: 'None' });
    await assert.rejects(s.listener(s.nlb, 'TLS', s.tcp, { certificateArns: [CERT(1)], alpnPolicy: 'HTTP2Preferred' }), code('ALPNPolicyNotFound', /not supported by ebb yet/));
    await assert.rejects(s.listener(s.nlb, 'TLS', s.tcp, { certificateArns: [CERT(1)], alpnPolicy: 'h2' }), code('ALPNPolicyNotFound', /HTTP1Only/));
    await assert.rejects(s.listener(s.alb, 'HTTPS', s.http, { certificateArns: [CERT(1)], alpnPolicy: 'None' }), code('ValidationError', /TLS listeners only/));
  });

  test('ModifyListener replaces the default certificate and keeps the others; to HTTP drops them all; back to HTTPS needs one again', async () => {
    const s = await setup();
    const l = await s.listener(s.alb, 'HTTPS', s.http, { certificateArns: [CERT(1)], sslPolicy: 'ELBSecurityPolicy-FS-1-2-Res-2020-10' });
    await s.commands.addCertificates(l.arn, [CERT(2)]);
    const replaced = await s.commands.modify(l.arn, { certificateArns: [CERT(3)] });
    assert.deepEqual(replaced.certificateArns, [CERT(3), CERT(2)]);
    assert.equal(replaced.sslPolicy, 'ELBSecurityPolicy-FS-1-2-Res-2020-10', 'the policy is kept');
    const plain = await s.commands.modify(l.arn, { protocol: 'HTTP' });
    assert.equal(plain.certificateArns, undefined);
    assert.equal(plain.sslPolicy, undefined);
    await assert.rejects(s.commands.modify(l.arn, { protocol: 'HTTPS' }), code('ValidationError', /A certificate must be specified/));
    await assert.rejects(s.commands.modify(l.arn, { protocol: 'TLS' }), code('ValidationError', /must be one of 'HTTP, HTTPS'/));
    const back = await s.commands.modify(l.arn, { protocol: 'HTTPS', certificateArns: [CERT(1)] });
    assert.deepEqual([back.certificateArns, back.sslPolicy], [[CERT(1)], 'ELBSecurityPolicy-TLS13-1-2-2021-06']);
  });

  test('listener certificates: add once each, describe the default first, the default cannot be removed', async () => {
    const s = await setup();
    const l = await s.listener(s.alb, 'HTTPS', s.http, { certificateArns: [CERT(1)] });
    assert.deepEqual(await s.commands.addCertificates(l.arn, [CERT(2)]), [{ certificateArn: CERT(2), isDefault: false }]);
    const commits = s.store.commits;
    await s.commands.addCertificates(l.arn, [CERT(2)]);
    await s.commands.addCertificates(l.arn, [CERT(1)]);
    assert.equal(s.store.commits, commits, 'a certificate the listener has is not added again');
    assert.deepEqual(s.commands.describeCertificates(l.arn), [
      { certificateArn: CERT(1), isDefault: true },
      { certificateArn: CERT(2), isDefault: false },
    ]);
    await assert.rejects(s.commands.addCertificates(l.arn, [CERT(9)]), code('CertificateNotFound'));
    await assert.rejects(s.commands.removeCertificates(l.arn, [CERT(1)]), code('OperationNotPermitted', /default certificate.*modify-listener/));
    await s.commands.removeCertificates(l.arn, [CERT(2), CERT(3)]);
    assert.deepEqual(s.commands.describeCertificates(l.arn), [{ certificateArn: CERT(1), isDefault: true }]);
    const plain = await s.listener(s.alb, 'HTTP', s.http);
    assert.deepEqual(s.commands.describeCertificates(plain.arn), []);
    await assert.rejects(s.commands.addCertificates(plain.arn, [CERT(2)]), code('ValidationError', /uses HTTP; certificates belong to HTTPS and TLS listeners/));
  });

  test(`a load balancer holds at most ${MAX_LISTENER_CERTIFICATES} certificates besides the defaults: TooManyCertificates`, async () => {
    const s = await setup();
    for (let n = 10; n < 10 + MAX_LISTENER_CERTIFICATES + 2; n++) s.known.add(CERT(n));
    const a = await s.listener(s.alb, 'HTTPS', s.http, { certificateArns: [CERT(1)] });
    const b = await s.listener(s.alb, 'HTTPS', s.http, { certificateArns: [CERT(2)] });
    for (let n = 10; n < 10 + MAX_LISTENER_CERTIFICATES - 1; n++) await s.commands.addCertificates(a.arn, [CERT(n)]);
    await s.commands.addCertificates(b.arn, [CERT(10 + MAX_LISTENER_CERTIFICATES)]);
    await assert.rejects(s.commands.addCertificates(b.arn, [CERT(11 + MAX_LISTENER_CERTIFICATES)]), code('TooManyCertificates', /remove-listener-certificates/));
    await assert.rejects(s.commands.addCertificates(a.arn, [CERT(11 + MAX_LISTENER_CERTIFICATES)]), code('TooManyCertificates'));
  });
});

describe('listener attributes', () => {
  test('tcp.idle_timeout.seconds: TCP listeners, 60 to 6000, default 350; none on HTTP, HTTPS or TLS listeners', async () => {
    const s = await setup();
    const tcp = await s.listener(s.nlb, 'TCP', s.tcp);
    assert.deepEqual(s.commands.describeAttributes(tcp.arn), { 'tcp.idle_timeout.seconds': '350', 'ebb.accept_proxy_protocol.enabled': 'false' });
    assert.deepEqual(await s.commands.modifyAttributes(tcp.arn, { 'tcp.idle_timeout.seconds': '60' }), { 'tcp.idle_timeout.seconds': '60', 'ebb.accept_proxy_protocol.enabled': 'false' });
    await assert.rejects(s.commands.modifyAttributes(tcp.arn, { 'tcp.idle_timeout.seconds': '59' }), code('ValidationError', /from 60 to 6000/));
    await assert.rejects(s.commands.modifyAttributes(tcp.arn, { 'tcp.idle_timeout.seconds': '6001' }), code('ValidationError', /from 60 to 6000/));
    await assert.rejects(s.commands.modifyAttributes(tcp.arn, { 'routing.http.response.server.enabled': 'false' }), code('ValidationError', /not recognized/));
    const http = await s.listener(s.alb, 'HTTP', s.http);
    assert.deepEqual(s.commands.describeAttributes(http.arn), {});
    await assert.rejects(s.commands.modifyAttributes(http.arn, { 'tcp.idle_timeout.seconds': '100' }), code('ValidationError', /not supported on HTTP listeners/));
    await assert.rejects(s.commands.modifyAttributes(http.arn, { 'ebb.accept_proxy_protocol.enabled': 'true' }), code('ValidationError', /not supported on HTTP listeners/));
    const tls = await s.listener(s.nlb, 'TLS', s.tcp, { certificateArns: [CERT(1)] });
    assert.deepEqual(s.commands.describeAttributes(tls.arn), { 'ebb.accept_proxy_protocol.enabled': 'false' });
    assert.deepEqual(await s.commands.modifyAttributes(tls.arn, { 'ebb.accept_proxy_protocol.enabled': 'true' }), { 'ebb.accept_proxy_protocol.enabled': 'true' });
    // A TCP listener that becomes TLS drops what no longer applies to it.
    assert.equal((await s.commands.modify(tcp.arn, { protocol: 'TLS', certificateArns: [CERT(1)] })).attributes, undefined);
  });

  test('the file sets a new listener attributes, checked against its protocol', async () => {
    const s = await setup();
    const l = await s.listener(s.nlb, 'TCP', s.tcp, { attributes: { 'tcp.idle_timeout.seconds': '1200' } });
    assert.equal(s.commands.describeAttributes(l.arn)['tcp.idle_timeout.seconds'], '1200');
    await assert.rejects(s.listener(s.alb, 'HTTP', s.http, { attributes: { 'tcp.idle_timeout.seconds': '1200' } }), code('ValidationError'));
  });
});
