import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../../test/fakes/fake-health-checker.ts';
import { leafCert } from '../../test/support/certs.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { applyDeclared } from './apply-declared.ts';
import { ControlPlane } from './control-plane.ts';
import type { DeclaredListener, DeclaredState } from './declared-state.ts';

/** The file's network load balancer, TCP listener attributes and HTTPS certificates, applied and changed. */

function declared(https: Partial<DeclaredListener>, tcpAttributes?: Record<string, string>): DeclaredState {
  return {
    instances: [],
    loadBalancers: [
      {
        name: 'nlb',
        type: 'network',
        attributes: {},
        listeners: [{ protocol: 'TCP', port: 9432, address: '127.0.0.1', targetGroup: 'db', ...(tcpAttributes !== undefined && { attributes: tcpAttributes }) }],
      },
      { name: 'web', type: 'application', attributes: {}, listeners: [{ protocol: 'HTTPS', port: 9443, address: '127.0.0.1', targetGroup: 'app', ...https }] },
    ],
    targetGroups: [
      { name: 'db', protocol: 'TCP', port: 5432, targetType: 'ip', healthCheck: {}, attributes: { 'proxy_protocol_v2.enabled': 'true' }, targets: [] },
      { name: 'app', protocol: 'HTTPS', port: 443, targetType: 'ip', healthCheck: {}, attributes: {}, targets: [] },
    ],
  };
}

test('a file with a network load balancer and an HTTPS listener: created, then its certificates, policy and attributes changed in place', async () => {
  const [a, b] = [leafCert(['a.example']), leafCert(['b.example'])];
  // The clock starts after the certificates were made: ACM imports only a certificate valid now.
  const cp = new ControlPlane({ clock: new FakeClock(Date.now() + 1000), store: new InMemoryStateStore(), dataPlanes: [new FakeDataPlane()], healthChecker: new FakeHealthChecker() });
  await cp.start();
  const certA = (await cp.certificates.importCertificate({ certificatePem: a.certPem, privateKeyPem: a.keyPem })).arn;
  const certB = (await cp.certificates.importCertificate({ certificatePem: b.certPem, privateKeyPem: b.keyPem })).arn;
  const listenerOf = (lb: string) => {
    const owner = cp.describeLoadBalancers({ names: [lb] })[0]!;
    return cp.describeListeners({ loadBalancerArn: owner.arn })[0]!;
  };

  await applyDeclared(cp, declared({ certificateArns: [certA, certB] }, { 'tcp.idle_timeout.seconds': '900' }));
  assert.equal(cp.describeLoadBalancers({ names: ['nlb'] })[0]?.type, 'network');
  assert.deepEqual(cp.describeListenerAttributes(listenerOf('nlb').arn), { 'tcp.idle_timeout.seconds': '900', 'ebb.accept_proxy_protocol.enabled': 'false' });
  assert.deepEqual(cp.describeListenerCertificates(listenerOf('web').arn), [
    { certificateArn: certA, isDefault: true },
    { certificateArn: certB, isDefault: false },
  ]);
  assert.equal(listenerOf('web').sslPolicy, 'ELBSecurityPolicy-TLS13-1-2-2021-06');

  const changed = await applyDeclared(cp, declared({ certificateArns: [certB], sslPolicy: 'ELBSecurityPolicy-TLS13-1-3-2021-06' }));
  assert.deepEqual(changed.changed, ['listener nlb:9432', 'listener web:9443']);
  assert.deepEqual(cp.describeListenerCertificates(listenerOf('web').arn), [{ certificateArn: certB, isDefault: true }]);
  assert.equal(listenerOf('web').sslPolicy, 'ELBSecurityPolicy-TLS13-1-3-2021-06');
  assert.deepEqual(cp.describeListenerAttributes(listenerOf('nlb').arn), { 'tcp.idle_timeout.seconds': '350', 'ebb.accept_proxy_protocol.enabled': 'false' }, 'the attribute the file dropped reads as its default');

  const again = await applyDeclared(cp, declared({ certificateArns: [certB], sslPolicy: 'ELBSecurityPolicy-TLS13-1-3-2021-06' }));
  assert.deepEqual([again.changed, again.created], [[], []], 'the same file changes nothing');
});
