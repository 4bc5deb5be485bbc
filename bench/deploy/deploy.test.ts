/**
 * The deploy benchmark's own parts: the histogram's quantiles, the load's counting against a server
 * that fails on purpose, and app.mjs's graceful stop (in flight answered with Connection: close, exit 0;
 * with APP_DRAIN_MS an idle keep-alive connection kept until an answer closes it).
 * Run: node --import tsx --test bench/deploy/deploy.test.ts
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { LatencyHistogram } from './histogram.ts';
import { Load } from './load.ts';
import { freePort, isRunning, sleep, waitFor } from './processes.ts';

const app = fileURLToPath(new URL('../../examples/deploy/app.mjs', import.meta.url));
const started: ChildProcess[] = [];
after(() => {
  for (const c of started) if (c.pid !== undefined && isRunning(c.pid)) c.kill('SIGKILL');
});

test('histogram quantiles are within 2 % of the true value, and memory does not grow', () => {
  const h = new LatencyHistogram();
  for (let i = 1; i <= 1000; i++) h.record(i);
  assert.equal(h.count, 1000);
  assert.ok(Math.abs(h.quantile(0.5) - 500) / 500 <= 0.02, `p50 ${h.quantile(0.5)}`);
  assert.ok(Math.abs(h.quantile(0.99) - 990) / 990 <= 0.02, `p99 ${h.quantile(0.99)}`);
  assert.equal(h.max, 1000);
  assert.ok(Number.isNaN(new LatencyHistogram().quantile(0.5)));
});

test('the load counts every request: ok, a status, a reset, an unexpected body, by window (and windows merged) and by version', async () => {
  let n = 0;
  const served = { ok: 0, status: 0, reset: 0, body: 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    n++;
    if (n % 7 === 0) {
      served.reset++;
      req.socket.destroy();
    } else if (n % 5 === 0) {
      served.status++;
      res.writeHead(503).end('busy\n');
    } else if (n % 11 === 0) {
      served.body++;
      res.end('something else\n');
    } else {
      served.ok++;
      res.end(`version ${n < 200 ? 1 : 2}\n`);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const load = new Load({ url: `http://127.0.0.1:${port}/`, connections: 4 });
  await waitFor('100 requests', 5000, () => (n >= 100 ? true : undefined), 5);
  load.window('deploy 1');
  await waitFor('200 requests', 5000, () => (n >= 200 ? true : undefined), 5);
  load.window('after 1');
  await waitFor('250 requests', 5000, () => (n >= 250 ? true : undefined), 5);
  load.window('deploy 2');
  await waitFor('300 requests', 5000, () => (n >= 300 ? true : undefined), 5);
  const report = await load.stop();
  const deploys = load.merged('deploy ');
  server.close();

  assert.equal(report.total.requests, n);
  assert.equal(report.total.ok, served.ok);
  assert.equal(report.total.failures['status 503'], served.status);
  assert.equal(report.total.failures['unexpected body'], served.body);
  assert.equal(report.total.failures['ECONNRESET'], served.reset);
  assert.equal(report.total.failed, served.status + served.body + served.reset);
  assert.deepEqual(
    report.windows.map((w) => w.name),
    ['load', 'deploy 1', 'after 1', 'deploy 2'],
  );
  const [, d1, , d2] = report.windows;
  assert.equal(deploys?.requests, (d1?.requests ?? NaN) + (d2?.requests ?? NaN));
  assert.equal(deploys?.failed, (d1?.failed ?? NaN) + (d2?.failed ?? NaN));
  assert.deepEqual([deploys?.from, deploys?.to], [d1?.from, d2?.to]);
  assert.equal(report.windows.reduce((a, w) => a + w.requests, 0), n);
  const versions = report.seconds.reduce((a, s) => a + Object.values(s.versions).reduce((x, y) => x + y, 0), 0);
  assert.equal(versions, served.ok);
  assert.ok(report.seconds.some((s) => (s.versions['2'] ?? 0) > 0));
});

function startApp(port: number, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [app], { env: { ...process.env, PORT: String(port), ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(child);
  return child;
}

async function listening(child: ChildProcess): Promise<void> {
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  assert.match(String(line), /listening on 127\.0\.0\.1:/);
}

function get(port: number, agent: http.Agent): Promise<{ status: number; body: string; connection: string | undefined; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        // Taken now: the agent detaches the socket from the response once it is read.
        const socket = res.socket;
        let body = '';
        res.on('data', (c: Buffer) => (body += String(c)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection, socket }));
      })
      .on('error', reject);
  });
}

test('app.mjs on SIGTERM: finishes what is in flight with Connection: close, closes idle keep-alive connections, exits 0', async () => {
  const port = await freePort();
  const child = startApp(port, { APP_VERSION: '3', APP_DELAY_MS: '300' });
  await listening(child);
  const idleAgent = new http.Agent({ keepAlive: true });
  const idle = await get(port, idleAgent);
  assert.equal(idle.body, 'version 3\n');
  const idleClosed = once(idle.socket, 'close');

  const busy = get(port, new http.Agent({ keepAlive: true }));
  await sleep(100);
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const answer = await busy;
  assert.deepEqual([answer.status, answer.body, answer.connection], [200, 'version 3\n', 'close']);
  await idleClosed;
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0);
  idleAgent.destroy();
});

test('app.mjs with APP_DRAIN_MS keeps an idle keep-alive connection until an answer closes it', async () => {
  const port = await freePort();
  const child = startApp(port, { APP_DELAY_MS: '1', APP_DRAIN_MS: '2000' });
  await listening(child);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const first = await get(port, agent);
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await sleep(200);
  // The same connection, after SIGTERM: still open, and its answer closes it.
  const second = await get(port, agent);
  assert.equal(second.socket, first.socket);
  assert.deepEqual([second.status, second.body, second.connection], [200, 'version 1\n', 'close']);
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0);
  agent.destroy();
});
