/**
 * Issue 9, test 1: during a drain under load, `/metrics` (read with parse-prometheus-text-format, an
 * npm parser of the Prometheus text format) shows the draining target's requests in flight falling to
 * zero, the drains counted by outcome, and ebb's own 5xx answers counted apart from the targets'.
 *
 * Real sockets throughout: ebb started in process with authentication on and a bearer token file for
 * /metrics, two backends, 16 keep-alive clients. Target T holds a WebSocket tunnel, so after its
 * in-flight requests have finished it is still draining and the scrape can show 0 before the drain
 * ends; closing the tunnel ends it idle. Then T comes back, U is deregistered while a 20 s request is
 * in flight on it, and the 3 s deregistration delay cuts that request: a 502 of ebb's own, and a drain
 * ended at its deadline. Some requests ask the targets for a 500, so both kinds of 5xx are counted.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { startEbb } from '../../src/main/ebb.ts';
import { Cleanup, configYaml, freePort, get, sleep, tempDir, waitFor } from './harness.ts';
import { Scrape, scrape } from './metrics-scrape.ts';

const TOKEN = 'metrics-token-0123456789abcdef';
const CLIENTS = 16;

interface MetricsBackend {
  readonly name: string;
  readonly port: number;
  /** Requests being answered now (health checks aside). */
  inFlight: number;
  /** URLs received, health checks aside. */
  readonly seen: string[];
  wsOpen: number;
}

/** A backend: `/health` 200, `/fail` 500, `/slow?ms=N` 200 after N ms, WebSocket echo; X-Backend on every answer. */
async function startMetricsBackend(name: string, cleanup: Cleanup): Promise<MetricsBackend> {
  const b: MetricsBackend = { name, port: 0, inFlight: 0, seen: [], wsOpen: 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://backend');
    res.setHeader('X-Backend', name);
    if (url.pathname === '/health') {
      res.end('ok');
      return;
    }
    b.seen.push(req.url ?? '');
    b.inFlight++;
    res.on('close', () => b.inFlight--);
    req.resume();
    if (url.pathname === '/fail') {
      res.statusCode = 500;
      res.end('failing on purpose');
      return;
    }
    const timer = setTimeout(() => res.end(name), Number(url.searchParams.get('ms') ?? '0'));
    res.on('close', () => clearTimeout(timer));
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    b.wsOpen++;
    ws.on('close', () => b.wsOpen--);
    ws.on('error', () => undefined);
    ws.on('message', (data) => ws.send(data));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (b as { port: number }).port = (server.address() as AddressInfo).port;
  cleanup.add(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return b;
}

/** What the load's clients got: answers by status, told apart by whether a target answered (X-Backend). */
interface Tally {
  total: number;
  fromTarget: number;
  target5xx: number;
  ebb5xx: number;
  failed: number;
  readonly errors: string[];
}

test("during a drain under load, /metrics shows in flight falling to 0, drains by outcome, and ebb's 5xx apart from the targets'", { timeout: 120_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const backends = [await startMetricsBackend('A', c), await startMetricsBackend('B', c)];
  const dir = await tempDir(c);
  const listenerPort = await freePort();
  await writeFile(join(dir, 'metrics-token'), `${TOKEN}\n`, { mode: 0o600 });
  const configPath = join(dir, 'ebb.yaml');
  const yaml = configYaml({ listenerPort, targets: backends.map((b) => b.port), delaySeconds: 3 });
  await writeFile(configPath, `${yaml}admin:\n  metrics:\n    bearerTokenFile: metrics-token\n`);
  const ebb = await startEbb({
    configPath,
    stateDir: join(dir, 'state'),
    adminAddress: '127.0.0.1:0',
    env: { EBB_ACCESS_KEY_ID: 'AKIDMETRICSTEST', EBB_SECRET_ACCESS_KEY: 'metrics-test-secret' },
    log: () => undefined,
  });
  c.add(async () => {
    const timer = setTimeout(() => ebb.dataPlane.destroy(), 2000);
    await ebb.shutdown();
    clearTimeout(timer);
  });
  const admin = ebb.admin.port;
  const tg = ebb.control.describeTargetGroups({ names: ['web'] })[0];
  const lb = ebb.control.describeLoadBalancers({ names: ['web'] })[0];
  assert.ok(tg !== undefined && lb !== undefined);
  const TG = tg.arn.slice(tg.arn.indexOf(':targetgroup/') + 1);
  const LB = lb.arn.slice(lb.arn.indexOf(':loadbalancer/') + ':loadbalancer/'.length);
  const PAIR = { load_balancer: LB, target_group: TG };
  const targetLabel = (b: MetricsBackend): Record<string, string> => ({ target_group: TG, target: `127.0.0.1:${b.port}` });
  const metrics = (): Promise<Scrape> => scrape(admin, TOKEN);

  // /metrics is Prometheus's: a bearer token, not SigV4. Without it, or with another, 401 saying how.
  const bare = await fetch(`http://127.0.0.1:${admin}/metrics`);
  assert.equal(bare.status, 401);
  assert.match(bare.headers.get('www-authenticate') ?? '', /^Bearer /);
  assert.match(await bare.text(), /^MetricsUnauthorized: .*admin\.metrics\.bearerTokenFile/);
  const wrong = await fetch(`http://127.0.0.1:${admin}/metrics`, { headers: { authorization: 'Bearer not-the-token' } });
  assert.equal(wrong.status, 401);
  assert.match(await wrong.text(), /does not match/);

  // Both targets healthy (health checks every 5 s, 2 in a row), as CloudWatch would count them.
  const states = (): string[] => ebb.control.describeTargetHealth(tg.arn).map((d) => d.health.state);
  assert.ok(await waitFor(() => states().every((s) => s === 'healthy') && states().length === 2, 20_000), `targets: ${states().join(', ')}`);
  let s = await metrics();
  assert.equal(s.value('ebb_healthy_host_count', PAIR), 2);
  assert.equal(s.value('ebb_targets', { target_group: TG, state: 'healthy' }), 2);
  for (const outcome of ['idle', 'deadline', 'cancelled']) assert.equal(s.value('ebb_drains_total', { target_group: TG, outcome }), 0);

  // The load: back to back, one request in six asks the target for a 500.
  const tally: Tally = { total: 0, fromTarget: 0, target5xx: 0, ebb5xx: 0, failed: 0, errors: [] };
  let running = true;
  const count = (status: number, backend: string): void => {
    tally.total++;
    if (backend !== '') tally.fromTarget++;
    if (status >= 500 && backend !== '') tally.target5xx++;
    if (status >= 500 && backend === '') tally.ebb5xx++;
  };
  const client = async (n: number): Promise<void> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; running; i++) {
        try {
          const r = await get(listenerPort, (i + n) % 6 === 0 ? '/fail' : '/slow?ms=150', agent, 30_000);
          count(r.status, r.backend);
        } catch (error) {
          tally.failed++;
          if (tally.errors.length < 5) tally.errors.push((error as Error).message);
        }
      }
    } finally {
      agent.destroy();
    }
  };
  const load = Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));

  try {
    // A tunnel through ebb; its target T will drain with the tunnel open.
    const ws = new WebSocket(`ws://127.0.0.1:${listenerPort}/ws`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    assert.ok(await waitFor(() => backends.some((b) => b.wsOpen === 1), 5000));
    const T = backends.find((b) => b.wsOpen === 1) as MetricsBackend;
    const U = backends.find((b) => b !== T) as MetricsBackend;
    assert.ok(await waitFor(() => T.inFlight >= 3, 10_000), 'the load reaches T');

    // Drain 1: T deregistered with requests in flight and the tunnel open.
    await ebb.control.deregisterTargets(tg.arn, [{ id: '127.0.0.1', port: T.port }]);
    s = await metrics();
    const first = s.value('ebb_target_requests_in_flight', targetLabel(T)) ?? -1;
    assert.ok(first > 0, `in flight on T right after the deregistration: ${first}`);
    assert.equal(s.value('ebb_targets', { target_group: TG, state: 'draining', reason: 'Target.DeregistrationInProgress' }), 1);
    const seen = [first];
    while (seen.at(-1) !== 0) {
      await sleep(20);
      s = await metrics();
      const n = s.value('ebb_target_requests_in_flight', targetLabel(T));
      assert.ok(n !== undefined, 'T is still draining (its tunnel is open), so its series is there');
      seen.push(n);
      assert.ok(seen.length < 500, `in flight on T did not reach 0: ${seen.join(' ')}`);
    }
    t.diagnostic(`requests in flight on T during its drain, one scrape each: ${seen.join(' ')}`);
    for (let i = 1; i < seen.length; i++) assert.ok((seen[i] ?? 0) <= (seen[i - 1] ?? 0), `never rises while draining: ${seen.join(' ')}`);
    assert.equal(s.value('ebb_target_tunnels_open', targetLabel(T)), 1);
    assert.equal(s.value('ebb_targets', { target_group: TG, state: 'draining' }), 1);
    assert.equal(s.value('ebb_drains_total', { target_group: TG, outcome: 'idle' }), 0);

    ws.close();
    assert.ok(await waitFor(() => ebb.control.drainRecords().length === 1, 5000), 'the drain ends once the tunnel closes');
    s = await metrics();
    assert.equal(s.value('ebb_drains_total', { target_group: TG, outcome: 'idle' }), 1);
    assert.equal(s.value('ebb_drains_total', { target_group: TG, outcome: 'deadline' }), 0);
    assert.equal(s.value('ebb_target_requests_in_flight', targetLabel(T)), undefined, 'a target gone has no series');
    assert.equal(s.value('ebb_target_tunnels_open', targetLabel(T)), undefined);
    assert.equal(s.value('ebb_targets', { target_group: TG, state: 'draining' }), undefined);
    assert.ok((s.value('ebb_active_connection_count', { load_balancer: LB }) ?? 0) >= CLIENTS, 'the clients are connected');

    // Drain 2: T comes back (initial, so new requests go to U), a 20 s request lands on U, U is deregistered.
    await ebb.control.registerTargets(tg.arn, [{ id: '127.0.0.1', port: T.port }]);
    const long = get(listenerPort, '/slow?ms=20000', undefined, 30_000);
    assert.ok(await waitFor(() => U.seen.includes('/slow?ms=20000'), 5000), 'the long request reaches U');
    await ebb.control.deregisterTargets(tg.arn, [{ id: '127.0.0.1', port: U.port }]);
    const cut = await long;
    assert.equal(cut.status, 502, 'cut at the deadline: ebb answers 502 itself');
    assert.equal(cut.backend, '');
    count(cut.status, cut.backend);
    assert.ok(await waitFor(() => ebb.control.drainRecords().length === 2, 5000));
    s = await metrics();
    assert.equal(s.value('ebb_drains_total', { target_group: TG, outcome: 'deadline' }), 1);
    assert.equal(s.value('ebb_drains_total', { target_group: TG, outcome: 'idle' }), 1);
    assert.equal(s.value('ebb_drains_total', { target_group: TG, outcome: 'cancelled' }), 0);
    assert.equal(s.value('ebb_drain_requests_cut_total', { target_group: TG }), 1);
  } finally {
    running = false;
    await load;
  }
  t.diagnostic(JSON.stringify(tally));
  assert.equal(tally.failed, 0, `no request of the load may fail: ${tally.errors.join('; ')}`);
  assert.ok(tally.target5xx > 0 && tally.ebb5xx === 1, `the targets answered 500s and ebb one 502: ${JSON.stringify(tally)}`);

  // Every request has ended and been counted: the 5xx counters match what the clients saw, apart.
  s = await metrics();
  assert.equal(s.value('ebb_httpcode_target_5xx_count', PAIR), tally.target5xx);
  assert.equal(s.value('ebb_httpcode_elb_5xx_count', { load_balancer: LB }), tally.ebb5xx);
  assert.equal(s.value('ebb_httpcode_elb_502_count', { load_balancer: LB }), 1);
  assert.equal(s.value('ebb_httpcode_target_2xx_count', PAIR), tally.fromTarget - tally.target5xx);
  // RequestCount: every request a target was chosen for (the cut one too; the WebSocket upgrade may count).
  assert.ok((s.value('ebb_request_count', PAIR) ?? 0) >= tally.total, `request count ${s.value('ebb_request_count', PAIR)} vs ${tally.total} answers`);
  assert.ok((s.value('ebb_new_connection_count', { load_balancer: LB }) ?? 0) >= CLIENTS + 2);
  assert.ok((s.value('ebb_processed_bytes', { load_balancer: LB }) ?? 0) > 0);
  assert.equal(s.type('ebb_target_response_time_seconds'), 'HISTOGRAM');
  assert.equal(s.type('ebb_drain_duration_seconds'), 'HISTOGRAM');
  assert.ok((s.value('process_cpu_seconds_total') ?? 0) > 0, "prom-client's process metrics are there");
});
