/**
 * HTTPS target groups: ebb speaks TLS to their targets. The data plane with a snapshot made by hand
 * (TLS, SNI, pooling and session resumption, the CA that verifies, what a failed handshake answers),
 * the HTTPS health check against the same backends, and `ebb serve` with a file that declares an
 * HTTPS target group (its health checks pass, requests reach it, the CA attribute refuses a target
 * the CA did not sign).
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DescribeTargetGroupsCommand, DescribeTargetHealthCommand, ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { CHANNEL_NAMES } from '../../src/dataplane/channels.ts';
import type { RequestEndMessage } from '../../src/dataplane/channels.ts';
import type { RoutingSnapshot } from '../../src/domain/routing-snapshot.ts';
import { httpCheck } from '../../src/health/http-check.ts';
import { leafCert, selfSignedCert, testCa } from '../support/certs.ts';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { spawnEbb, waitForStart } from '../support/ebb-process.ts';
import { freePort } from '../support/ports.ts';
import { waitFor } from '../support/timing.ts';
import { startTlsBackend } from '../support/tls-backends.ts';
import type { TlsBackend } from '../support/tls-backends.ts';
import { WebSocketServer } from 'ws';
import { GROUP, openWs, pinned, request, snapshot, startBackend, startPlane } from './dataplane-helpers.ts';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** One listener forwarding to an HTTPS group of `targets`, checked with `caPem`. */
function httpsSnapshot(targets: ReadonlyArray<{ host: string; port: number }>, caPem: string | null, version = 1): RoutingSnapshot {
  const base = snapshot([], { version });
  const group = base.targetGroups.get(GROUP);
  assert.ok(group !== undefined);
  return {
    ...base,
    targetGroups: new Map([
      [
        GROUP,
        {
          ...group,
          protocol: 'HTTPS',
          targetTls: { caPem },
          targets: targets.map((t) => ({ key: `${GROUP}|${t.host}|${t.port}`, host: t.host, port: t.port, healthyForMs: 0 })),
        },
      ],
    ]),
  };
}

async function tlsBackend(name: string, cert = selfSignedCert([`${name.toLowerCase()}.test`])): Promise<TlsBackend> {
  const b = await startTlsBackend(name, cert);
  cleanups.push(() => b.close());
  return b;
}

async function plane(snap: RoutingSnapshot, logs: object[] = []): Promise<{ port: number; apply: (s: RoutingSnapshot) => Promise<unknown> }> {
  const p = await startPlane(snap, logs);
  cleanups.push(() => p.dp.destroy());
  return { port: p.port, apply: (s) => p.dp.apply(pinned(s, p.port)) };
}

/** The request-end messages published while `fn` runs. */
async function requestEnds(fn: () => Promise<void>): Promise<RequestEndMessage[]> {
  const seen: RequestEndMessage[] = [];
  const listener = (m: unknown): void => void seen.push(m as RequestEndMessage);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.requestEnd, listener);
  try {
    await fn();
  } finally {
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestEnd, listener);
  }
  return seen;
}

test('an HTTPS target with a self-signed certificate is reached over TLS, unverified as ALB does; its connection is pooled and a new one resumes the session', async () => {
  const target = await tlsBackend('A');
  const { port } = await plane(httpsSnapshot([{ host: '127.0.0.1', port: target.port }], null));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(() => agent.destroy());
  for (let i = 0; i < 3; i++) {
    const r = await request(port, { agent, path: `/kept/${i}` });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'A');
  }
  assert.deepEqual(target.requests, ['/kept/0', '/kept/1', '/kept/2']);
  // One TLS connection for the three (the first request of a client connection takes a new one, the next reuse it).
  assert.equal(target.connections.length, 1);
  assert.deepEqual(target.connections[0], { servername: null, resumed: false }, 'no SNI to an IP target, as ALB');
  // Another client connection: its first request opens a second TLS connection, which resumes the session.
  const r = await request(port, { path: '/other' });
  assert.equal(r.status, 200);
  assert.equal(target.connections.length, 2);
  assert.equal(target.connections[1]?.resumed, true);
});

test('SNI carries the target host when it is a name', async () => {
  const target = await tlsBackend('B');
  const { port } = await plane(httpsSnapshot([{ host: 'localhost', port: target.port }], null));
  const r = await request(port);
  assert.equal(r.status, 200);
  assert.equal(target.connections[0]?.servername, 'localhost');
});

test('with a CA, a target it signed is reached (its names are not checked); a self-signed one gets a 502 with a TLS reason, and so does a plain HTTP target', async () => {
  const ca = testCa();
  const signed = await tlsBackend('Signed', leafCert(['signed.test']));
  const self = await tlsBackend('Self');
  const plain = await startBackend('Plain');
  cleanups.push(() => plain.close());
  const logs: object[] = [];
  const { port, apply } = await plane(httpsSnapshot([{ host: '127.0.0.1', port: signed.port }], ca.certPem), logs);
  assert.equal((await request(port)).body, 'Signed');
  assert.equal((await request(port)).body, 'Signed');
  assert.deepEqual(signed.connections.map((c) => c.resumed), [false, true], 'a verified session is resumed');

  const ends = await requestEnds(async () => {
    await apply(httpsSnapshot([{ host: '127.0.0.1', port: self.port }], ca.certPem, 2));
    assert.equal((await request(port)).status, 502);
    await apply(httpsSnapshot([{ host: '127.0.0.1', port: plain.port }], ca.certPem, 3));
    assert.equal((await request(port)).status, 502);
  });
  assert.equal(self.requests.length, 0);
  assert.equal(plain.seen.length, 0);
  const reasons = ends.map((e) => e.errorReason ?? '');
  assert.equal(reasons.length, 2);
  assert.match(reasons[0] ?? '', /^target-tls:(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/);
  assert.match(reasons[1] ?? '', /^target-tls:/);
  assert.ok(logs.some((l) => (l as { kind?: string }).kind === 'target-tls'), 'the proxy error is logged with its kind');
});

test('a connection made without a CA is not reused once the group names one; an empty CA trusts nothing', async () => {
  const self = await tlsBackend('Pooled');
  const target = [{ host: '127.0.0.1', port: self.port }];
  const { port, apply } = await plane(httpsSnapshot(target, null));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(() => agent.destroy());
  assert.equal((await request(port, { agent })).status, 200);
  assert.equal((await request(port, { agent })).status, 200);
  assert.equal(self.connections.length, 1, 'pooled');
  await apply(httpsSnapshot(target, testCa().certPem, 2));
  assert.equal((await request(port, { agent })).status, 502, 'the pooled unverified connection was not used');
  await apply(httpsSnapshot(target, '', 3));
  const signed = await tlsBackend('Nothing', leafCert(['nothing.test']));
  await apply(httpsSnapshot([{ host: '127.0.0.1', port: signed.port }], '', 4));
  assert.equal((await request(port)).status, 502, 'a CA file that could not be read verifies nothing');
});

test('a WebSocket upgrade to an HTTPS target is tunnelled over its TLS connection', async () => {
  const target = await tlsBackend('Ws');
  const wss = new WebSocketServer({ server: target.server });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`tls:${String(m)}`)));
  cleanups.push(() => wss.close());
  const { port } = await plane(httpsSnapshot([{ host: '127.0.0.1', port: target.port }], null));
  const { client, messages } = await openWs(port, '/chat');
  cleanups.push(() => client.terminate());
  client.send('hello');
  assert.ok(await waitFor(() => messages.length === 1));
  assert.deepEqual(messages, ['tls:hello']);
});

test('the HTTPS health check: a self-signed target passes without a CA; with a CA, only a target it signed passes', async () => {
  const self = await tlsBackend('HcSelf');
  const signed = await tlsBackend('HcSigned', leafCert(['hc.test']));
  const check = (port: number, caPem: string | null): ReturnType<typeof httpCheck> =>
    httpCheck({ host: '127.0.0.1', port, protocol: 'HTTPS', path: '/health', matcher: '200', matches: (s) => s === 200, caPem }, AbortSignal.timeout(2000));
  assert.deepEqual(await check(self.port, null), { ok: true });
  assert.deepEqual(await check(signed.port, testCa().certPem), { ok: true });
  const refused = await check(self.port, testCa().certPem);
  assert.equal(refused.ok, false);
  assert.ok(!refused.ok && refused.reason === 'Target.FailedHealthChecks');
  assert.match(!refused.ok ? refused.detail : '', /certificate/i);
  assert.equal(self.healthChecks, 1);
});

test('ebb serve with a file declaring HTTPS target groups: their health checks pass and requests reach the TLS targets; with the CA attribute, a target the CA did not sign gets 502 and fails its checks', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const open = await tlsBackend('Open');
  const signed = await tlsBackend('Signed', leafCert(['signed.serve.test']));
  const refused = await tlsBackend('Refused');
  const dir = await tempDir(c);
  const caFile = join(dir, 'targets-ca.pem');
  await writeFile(caFile, testCa().certPem);
  const groups = [
    { name: 'open', target: open, ca: null, port: await freePort() },
    { name: 'verified', target: signed, ca: caFile, port: await freePort() },
    { name: 'refused', target: refused, ca: caFile, port: await freePort() },
  ];
  const yaml = [
    'loadBalancers:',
    '  - name: web',
    '    listeners:',
    ...groups.flatMap((g) => [
      '      - protocol: HTTP',
      `        port: ${g.port}`,
      '        address: 127.0.0.1',
      `        defaultActions: [{ type: forward, targetGroup: ${g.name} }]`,
    ]),
    'targetGroups:',
    ...groups.flatMap((g) => [
      `  - name: ${g.name}`,
      '    protocol: HTTPS',
      `    port: ${g.target.port}`,
      '    healthCheck: { path: /health, intervalSeconds: 5, timeoutSeconds: 2, healthyThresholdCount: 2, unhealthyThresholdCount: 2 }',
      ...(g.ca === null ? [] : [`    attributes: { ebb.target_tls.ca_file: ${JSON.stringify(g.ca)} }`]),
      '    targets: [{ id: 127.0.0.1 }]',
    ]),
  ].join('\n');
  const configPath = join(dir, 'ebb.yaml');
  await writeFile(configPath, `${yaml}\n`);
  const ebb = spawnEbb(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth']);
  const started = await waitForStart(ebb);
  const elb = new ElasticLoadBalancingV2Client({ endpoint: `http://${String(started['admin'])}`, region: 'us-east-1', credentials: { accessKeyId: 'AKIDHTTPSTARGETS', secretAccessKey: 'unused' }, maxAttempts: 1 });
  c.add(() => elb.destroy());
  const described = await elb.send(new DescribeTargetGroupsCommand({ Names: groups.map((g) => g.name) }));
  const arnOf = (name: string): string => described.TargetGroups?.find((g) => g.TargetGroupName === name)?.TargetGroupArn ?? '';
  assert.deepEqual(described.TargetGroups?.map((g) => g.Protocol), ['HTTPS', 'HTTPS', 'HTTPS']);
  const health = async (name: string): Promise<{ state: string; reason: string; description: string }> => {
    const r = await elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: arnOf(name) }));
    const h = r.TargetHealthDescriptions?.[0]?.TargetHealth;
    return { state: h?.State ?? '', reason: h?.Reason ?? '', description: h?.Description ?? '' };
  };

  // Before the checks settle every target is routed to (fail open), so the answers are the TLS ones.
  assert.equal((await request(groups[0]!.port)).body, 'Open', 'a self-signed target is reached without a CA');
  assert.equal((await request(groups[1]!.port)).body, 'Signed', 'a target the CA signed is reached');
  assert.equal((await request(groups[2]!.port)).status, 502, 'a target the CA did not sign is not');
  assert.equal(refused.requests.length, 0);

  // Two checks 5 s apart settle each target.
  const settled = await waitFor(async () => {
    const states = await Promise.all(groups.map((g) => health(g.name)));
    return states.map((h) => h.state).join() === 'healthy,healthy,unhealthy';
  }, 12_000, 250);
  const states = await Promise.all(groups.map((g) => health(g.name)));
  assert.ok(settled, `states: ${JSON.stringify(states)}`);
  assert.equal(states[2]?.reason, 'Target.FailedHealthChecks');
  assert.ok(open.healthChecks >= 2 && signed.healthChecks >= 2, 'the HTTPS checks reached the TLS targets');
  assert.equal(refused.healthChecks, 0, 'no check of the unsigned target got past its handshake');
  assert.equal((await request(groups[1]!.port)).body, 'Signed');
  assert.ok(ebb.logs.some((l) => l['msg'] === 'proxy error' && l['kind'] === 'target-tls'), 'the 502 is logged with its TLS reason');
});
