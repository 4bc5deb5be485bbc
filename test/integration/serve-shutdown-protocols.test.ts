/**
 * ebb's own shutdown, protocol by protocol (issue 10, test 4's "GOAWAY on SIGTERM and the in-flight
 * streams finish", and "Polite closing" at ebb's shutdown), through one `ebb serve` process on a YAML
 * file: an application load balancer with an HTTPS listener (h2 and http/1.1 by ALPN) in front of an
 * HTTP backend with a slow endpoint, and a network load balancer with a TCP listener in front of a TCP
 * echo backend; `ebb.shutdown_timeout.seconds: 3` on both (ebb waits for the longest).
 *
 * `before` opens the clients, puts work in flight on each (a slow HTTP/2 stream, a slow HTTP/1.1
 * request on a kept-alive connection, a TCP flow exchanging bytes every 200 ms) and sends SIGTERM to
 * ebb's pid; each test then checks what its client saw:
 * - HTTP/2: GOAWAY (NO_ERROR) at once; the stream in flight completes whole (200); a stream asked for
 *   after it never reaches the backend; the connection closes once the stream is done.
 * - HTTP/1.1: the response in flight arrives whole with `Connection: close`; the connection then closes.
 * - TCP: the flow keeps carrying bytes both ways until the deadline, then gets a FIN at about 3 s, and
 *   only then (the client keeps its side open and writing) a reset after ebb's grace; new connections
 *   to either listener are refused once ebb is stopping.
 * Health checks are off for the HTTP group and every 30 s for the TCP one: an `initial` group fails
 * open, which routes to its one target.
 * - ebb exits 0 soon after the deadline, and its log and access log say how the shutdown went.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { startBackend, type Backend } from '../support/backends.ts';
import { leafCert, testCa } from '../support/certs.ts';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { spawnEbb, waitForStart, type NodeProcess } from '../support/ebb-process.ts';
import { freePort } from '../support/ports.ts';
import { sleep, waitFor, waitUntil, within } from '../support/timing.ts';
import { h2Get, type H2Reply } from './http2-harness.ts';
import { startTcpBackend, tcpConnect, type TcpClient } from './tcp-helpers.ts';

const { NGHTTP2_NO_ERROR } = http2.constants;

/** ebb's shutdown deadline (`ebb.shutdown_timeout.seconds`), and how long the slow requests take. */
const DEADLINE_MS = 3000;
const SLOW_MS = 1000;
/** The TCP flow sends a numbered line this often and the backend echoes it. */
const PING_EVERY_MS = 200;

const c = new Cleanup();
let ebb: NodeProcess;
let backend: Backend;
let dir = '';
let httpsPort = 0;
let tcpPort = 0;
let echoPort = 0;
/** When SIGTERM was sent (Date.now()). */
let termAt = 0;

// HTTP/2: the session, its GOAWAY, the stream in flight, whether a stream asked for after GOAWAY was refused.
let h2: ClientHttp2Session;
let h2Slow: Promise<H2Reply & { at: number }>;
let goaway: Promise<{ code: number; at: number }>;
let h2Closed: Promise<number>;

// HTTP/1.1: the kept-alive connection's reuse, the response in flight, and when its socket closed.
interface H1Reply {
  readonly status: number;
  readonly connection: string | undefined;
  readonly body: string;
  readonly reused: boolean;
  readonly at: number;
}
let h1Slow: Promise<H1Reply>;
let h1Closed: Promise<number>;

// TCP: the flow, and the times at which each echoed ping came back.
let flow: TcpClient;
const echoedAt: number[] = [];
let stopPinging = false;

function configYaml(certFile: string, keyFile: string): string {
  return `loadBalancers:
  - name: web
    attributes: { ebb.shutdown_timeout.seconds: ${DEADLINE_MS / 1000} }
    listeners:
      - protocol: HTTPS
        port: ${httpsPort}
        address: 127.0.0.1
        certificates:
          - { certificateFile: ${certFile}, privateKeyFile: ${keyFile} }
        defaultActions: [ { type: forward, targetGroup: app } ]
  - name: flows
    type: network
    attributes: { ebb.shutdown_timeout.seconds: ${DEADLINE_MS / 1000} }
    listeners:
      - protocol: TCP
        port: ${tcpPort}
        address: 127.0.0.1
        defaultActions: [ { type: forward, targetGroup: echo } ]
targetGroups:
  - name: app
    protocol: HTTP
    port: ${backend.port}
    healthCheck: { enabled: false }
    targets: [ { id: 127.0.0.1 } ]
  - name: echo
    protocol: TCP
    port: 80
    targets: [ { id: 127.0.0.1, port: ${echoPort} } ]
accessLog:
  output: file
  path: access.log
  format: json
`;
}

/** An HTTP/2 connection over TLS (ALPN h2) trusting the test CA; resolves once ebb's SETTINGS came. */
async function h2Connect(port: number): Promise<ClientHttp2Session> {
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: testCa().certPem, servername: 'localhost' });
  session.on('error', () => undefined);
  c.add(() => session.destroy());
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('error', reject);
    session.once('close', () => reject(new Error('the HTTP/2 connection closed before its SETTINGS came')));
  });
  const alpn = (session.socket as TLSSocket).alpnProtocol;
  if (alpn !== 'h2') throw new Error(`ALPN agreed ${String(alpn)}, not h2`);
  return session;
}

/** GET `path` through `agent` (ALPN http/1.1 only); `reused` says whether it went on a connection used before. */
function h1Get(agent: https.Agent, path: string): Promise<H1Reply> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: httpsPort, path, servername: 'localhost', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body, reused: req.reusedSocket, at: Date.now() }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** What `p` resolves with; fails the test, naming `what`, if that takes longer than `ms`. */
async function settled<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const late = Symbol('late');
  const r = await within(p, ms, late);
  if (r === late) assert.fail(`${what} (waited ${ms} ms)`);
  return r;
}

/** Whether a new TCP connection to `port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/** Pings on the flow every PING_EVERY_MS until told to stop or the flow ends; records when each echo is back whole. */
async function keepPinging(): Promise<void> {
  for (let i = 0; !stopPinging && !flow.saw('end') && !flow.saw('close'); i++) {
    const line = `ping ${i}\n`;
    const expectedLength = flow.text().length + line.length;
    flow.socket.write(line);
    if (await waitFor(() => flow.text().length >= expectedLength, PING_EVERY_MS * 3)) {
      if (flow.text().endsWith(line) && !flow.saw('end')) echoedAt.push(Date.now());
    }
    await sleep(PING_EVERY_MS);
  }
}

before(async () => {
  backend = await startBackend('A', { cleanup: c });
  const echo = await startTcpBackend(c, 'echo');
  echoPort = echo.port;
  httpsPort = await freePort();
  tcpPort = await freePort();
  dir = await tempDir(c);
  const cert = leafCert(['localhost']);
  const configPath = join(dir, 'ebb.yaml');
  await writeFile(configPath, configYaml(cert.certFile, cert.keyFile));
  ebb = spawnEbb(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth']);
  await waitForStart(ebb);

  // The clients, each shown to work before the signal.
  h2 = await h2Connect(httpsPort);
  const first = await h2Get(h2, '/');
  assert.equal(first.status, 200, `HTTP/2 through ebb: ${JSON.stringify(first)}`);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: testCa().certPem, ALPNProtocols: ['http/1.1'] });
  c.add(() => agent.destroy());
  const h1First = await h1Get(agent, '/');
  assert.equal(h1First.status, 200);
  assert.notEqual(h1First.connection, 'close', 'the HTTP/1.1 connection is kept alive before the shutdown');
  flow = await tcpConnect(c, tcpPort);
  flow.socket.write('hello\n');
  await waitUntil(() => flow.text() === 'hello\n', 'the TCP echo through ebb', 3000);

  // Work in flight on each: a slow stream, a slow request on the kept-alive connection, a flow pinging.
  goaway = new Promise((resolve) => h2.once('goaway', (code: number) => resolve({ code, at: Date.now() })));
  h2Closed = new Promise((resolve) => h2.once('close', () => resolve(Date.now())));
  h2Slow = h2Get(h2, `/slow?ms=${SLOW_MS}`).then((r) => ({ ...r, at: Date.now() }));
  h1Slow = h1Get(agent, `/slow?ms=${SLOW_MS}`);
  await waitUntil(() => backend.inFlight() === 2, 'both slow requests to reach the backend', 3000);
  const h1Socket = Object.values(agent.sockets).flat()[0];
  assert.ok(h1Socket !== undefined, 'the agent holds the kept-alive connection');
  h1Closed = new Promise((resolve) => h1Socket.once('close', () => resolve(Date.now())));
  void keepPinging();
  await sleep(PING_EVERY_MS);

  termAt = Date.now();
  process.kill(ebb.pid, 'SIGTERM');
});

after(async () => {
  stopPinging = true;
  await c.run();
});

test('HTTP/2: GOAWAY at SIGTERM, the stream in flight finishes whole, no new stream is served, then the connection closes', { timeout: 20_000 }, async () => {
  const g = await settled(goaway, 2000, 'GOAWAY came after SIGTERM');
  assert.equal(g.code, NGHTTP2_NO_ERROR, 'a polite GOAWAY (NO_ERROR)');
  // Node 20's client refuses a request after GOAWAY at once; Node 24's cancels it as a pending stream.
  const lateRefused = await settled(
    new Promise<boolean>((resolve) => {
      try {
        const late = h2.request({ ':path': '/late' });
        late.on('error', () => resolve(true));
        late.on('response', () => resolve(false));
      } catch {
        resolve(true);
      }
    }),
    2000,
    'a stream asked for after GOAWAY ended',
  );
  assert.equal(lateRefused, true, 'a stream asked for after GOAWAY is not served');

  const r = await settled(h2Slow, SLOW_MS + 3000, 'the stream in flight ended');
  assert.equal(r.error, null, `the stream was not reset: ${JSON.stringify(r)}`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'A', 'the stream in flight finished with its whole body');
  assert.ok(g.at <= r.at, 'GOAWAY came before the stream ended');
  const closedAt = await settled(h2Closed, 2000, 'the HTTP/2 connection closed after its last stream');
  assert.ok(closedAt >= r.at);
  assert.ok(!backend.seen.some((s) => s.url === '/late'), 'the backend never saw the late stream');
});

test('HTTP/1.1 over TLS: the response in flight arrives whole with Connection: close, and the kept-alive connection closes', { timeout: 20_000 }, async () => {
  const r = await settled(h1Slow, SLOW_MS + 3000, 'the response in flight arrived');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'A', 'the whole body');
  assert.equal(r.reused, true, 'it went on the kept-alive connection');
  assert.equal(r.connection, 'close', 'the last response on the connection says Connection: close');
  const closedAt = await settled(h1Closed, 2000, 'the connection closed after its last response');
  assert.ok(closedAt - r.at < 1000, `closed right after the response (${closedAt - r.at} ms)`);
});

test('TCP: the flow keeps exchanging bytes until the deadline, then gets a FIN at about the deadline, before any reset; new connections are refused', { timeout: 20_000 }, async (t) => {
  assert.ok(await refused(tcpPort), 'a new connection to the TCP listener is refused once ebb is stopping');
  assert.ok(await refused(httpsPort), 'a new connection to the HTTPS listener is refused once ebb is stopping');
  assert.ok(await waitFor(() => flow.saw('end'), DEADLINE_MS + 3000), `the client got a FIN (events: ${JSON.stringify(flow.events)})`);
  const finAfter = (flow.events.find((e) => e.what === 'end')?.at ?? 0) - termAt;
  assert.ok(finAfter >= DEADLINE_MS - 100 && finAfter < DEADLINE_MS + 1500, `the FIN came at about the ${DEADLINE_MS} ms deadline (${finAfter} ms after SIGTERM)`);
  const lastEcho = Math.max(...echoedAt) - termAt;
  assert.ok(lastEcho >= DEADLINE_MS - 3 * PING_EVERY_MS, `bytes went both ways until close to the deadline (last echo ${lastEcho} ms after SIGTERM; ${echoedAt.length} echoes)`);
  assert.ok(echoedAt.filter((at) => at > termAt).length >= 5, `the flow carried bytes all through the shutdown (${echoedAt.length} echoes)`);
  stopPinging = true;
  // The client keeps its side open and goes on writing: a half-closed socket that only reads would not
  // notice a reset, a write does. ebb resets the flow after its grace; the FIN came first.
  const finAt = termAt + finAfter;
  for (let i = 0; i < 30 && !flow.saw('close'); i++) {
    if (!flow.socket.destroyed) flow.socket.write(`after the FIN ${i}\n`);
    await within(flow.closed, 100);
  }
  const order = flow.events.map((e) => e.what);
  assert.ok(flow.saw('close'), `the flow closed after the FIN (events: ${order.join(', ')})`);
  assert.equal(order[0], 'end', `FIN before any reset: ${order.join(', ')}`);
  const reset = flow.events.find((e) => e.what.startsWith('error:'));
  t.diagnostic(`FIN ${finAfter} ms after SIGTERM; ${echoedAt.length} echoes, the last ${lastEcho} ms after SIGTERM; then ${reset === undefined ? 'no reset' : `${reset.what} ${reset.at - finAt} ms after the FIN`}`);
});

test('ebb exits 0 soon after the deadline, and its log and access log say how the shutdown went', { timeout: 30_000 }, async (t) => {
  const code = await settled(ebb.exited, DEADLINE_MS + 5000, 'ebb exited');
  const exitedAfter = Date.now() - termAt;
  t.diagnostic(`ebb exited (${String(code)}) ${exitedAfter} ms after SIGTERM`);
  assert.equal(code, 0, `ebb exits 0 (${String(code)} after ${exitedAfter} ms): ${ebb.stderr()}`);
  assert.ok(exitedAfter < DEADLINE_MS + 4000, `within the deadline and a few seconds (${exitedAfter} ms)`);

  const said = (l: Record<string, unknown>): string => (typeof l['event'] === 'string' ? l['event'] : typeof l['msg'] === 'string' ? l['msg'] : '?');
  const events = ebb.logs.map(said);
  assert.ok(ebb.logs.some((l) => l['event'] === 'signal' && l['signal'] === 'SIGTERM'), events.join(', '));
  assert.ok(ebb.logs.some((l) => l['event'] === 'ebb:stopping' && l['deadlineMs'] === DEADLINE_MS), `ebb:stopping with its deadline: ${events.join(', ')}`);
  // The open flow held the data plane to the deadline: ebb says so, and closes what is left.
  assert.ok(ebb.logs.some((l) => l['msg'] === 'shutdown deadline reached' && l['deadlineMs'] === DEADLINE_MS), `the deadline is logged: ${events.join(', ')}`);
  assert.ok(!ebb.logs.some((l) => l['msg'] === 'http2 streams cut'), 'no HTTP/2 stream was cut');
  assert.equal(events.at(-1), 'ebb:stopped', `ebb:stopped is the last line: ${events.join(', ')}`);
  assert.deepEqual(ebb.problems(), []);

  // The access log (written out before ebb stopped): both slow requests 200, the flow ended by the shutdown.
  const rows = (await readFile(join(dir, 'access.log'), 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const slowRows = rows.filter((r) => String(r['request_url']).includes('/slow'));
  assert.deepEqual(slowRows.map((r) => [r['type'], Number(r['elb_status_code'])]).sort(), [['h2', 200], ['https', 200]], JSON.stringify(rows));
  const flowRows = rows.filter((r) => r['type'] === 'tcp');
  assert.equal(flowRows.length, 1, JSON.stringify(flowRows));
  assert.equal(flowRows[0]?.['error_reason'], 'LoadBalancerShutdown', JSON.stringify(flowRows[0]));
});
