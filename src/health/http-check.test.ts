import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { defaultHealthCheck, parseMatcher, type HealthCheckConfig } from '../domain/health-check.ts';
import type { HealthObservation } from '../domain/health-port.ts';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { freePort } from '../../test/support/ports.ts';
import { sleep, waitUntil } from '../../test/support/timing.ts';
import { ActiveHealthChecker } from './active-health-checker.ts';
import { httpCheck, MAX_HEALTH_BODY_BYTES, type HttpProbe } from './http-check.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** An HTTP server on 127.0.0.1:0 whose answer the test sets, recording every request and socket. */
async function startServer(server: Server): Promise<{ port: number; sockets: Set<Socket>; requests: IncomingMessage[]; handler: { fn: Handler } }> {
  const sockets = new Set<Socket>();
  const requests: IncomingMessage[] = [];
  const handler: { fn: Handler } = { fn: (_req, res) => res.end('ok') };
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    requests.push(req);
    handler.fn(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, sockets, requests, handler };
}

const probe = (port: number, over: Partial<HttpProbe> = {}): HttpProbe => ({
  host: '127.0.0.1',
  port,
  protocol: 'HTTP',
  path: '/health',
  matcher: '200-399',
  matches: parseMatcher('200-399'),
  ...over,
});
const run = (p: HttpProbe) => httpCheck(p, new AbortController().signal);

describe('httpCheck against real sockets', async () => {
  const srv = await startServer(createServer());

  it('200 within the matcher is healthy; GET path with Connection: close, socket closed after', async () => {
    srv.handler.fn = (_req, res) => res.end('fine');
    const before = srv.requests.length;
    assert.deepEqual(await run(probe(srv.port)), { ok: true });
    assert.equal(srv.requests.length, before + 1);
    const req = srv.requests.at(-1);
    assert.equal(req?.method, 'GET');
    assert.equal(req?.url, '/health');
    assert.equal(req?.headers.connection, 'close');
    assert.equal(req?.headers.host, `127.0.0.1:${srv.port}`);
    await waitUntil(() => srv.sockets.size === 0, 'the check socket to close');
  });

  it('503 is Target.ResponseCodeMismatch with the status code', async () => {
    srv.handler.fn = (_req, res) => {
      res.statusCode = 503;
      res.end('down');
    };
    const outcome = await run(probe(srv.port));
    assert.equal(outcome.ok, false);
    assert.equal(!outcome.ok && outcome.reason, 'Target.ResponseCodeMismatch');
    assert.equal(!outcome.ok && outcome.statusCode, 503);
    assert.match(!outcome.ok ? outcome.detail : '', /answered 503; the matcher expects 200-399/);
  });

  it('a matcher list: 202 matches 200,202 and 204 does not', async () => {
    srv.handler.fn = (req, res) => {
      res.statusCode = req.url === '/a' ? 202 : 204;
      res.end();
    };
    const m = { matcher: '200,202', matches: parseMatcher('200,202') };
    assert.equal((await run(probe(srv.port, { ...m, path: '/a' }))).ok, true);
    const no = await run(probe(srv.port, { ...m, path: '/b' }));
    assert.equal(!no.ok && no.reason, 'Target.ResponseCodeMismatch');
  });

  it('a refused connection is Target.FailedHealthChecks', async () => {
    const outcome = await run(probe(await freePort()));
    assert.equal(!outcome.ok && outcome.reason, 'Target.FailedHealthChecks');
    assert.match(!outcome.ok ? outcome.detail : '', /ECONNREFUSED/);
  });

  it('a connection reset before the answer is Target.FailedHealthChecks', async () => {
    srv.handler.fn = (req) => req.socket.destroy();
    const outcome = await run(probe(srv.port));
    assert.equal(!outcome.ok && outcome.reason, 'Target.FailedHealthChecks');
  });

  it('a large body is read up to the bound and the socket dropped; status still decides', async () => {
    const chunk = Buffer.alloc(16 * 1024, 'x');
    srv.handler.fn = (_req, res) => {
      res.writeHead(200);
      // Far more than the bound, and never ended: the check must not wait for it.
      for (let i = 0; i < (MAX_HEALTH_BODY_BYTES / chunk.length) * 4; i++) res.write(chunk);
    };
    assert.deepEqual(await run(probe(srv.port)), { ok: true });
    await waitUntil(() => srv.sockets.size === 0, 'the check socket to close');
  });

  it('a chunked answer is read to its last chunk; one cut short after a 200 fails, after a 503 stays a mismatch', async () => {
    srv.handler.fn = (_req, res) => {
      res.write('part one, ');
      setTimeout(() => res.end('part two'), 10);
    };
    assert.deepEqual(await run(probe(srv.port)), { ok: true });
    for (const status of [200, 503]) {
      srv.handler.fn = (_req, res) => {
        res.writeHead(status, { 'content-length': '100' });
        res.write('only part of it');
        setTimeout(() => res.socket?.destroy(), 10);
      };
      const outcome = await run(probe(srv.port));
      if (status === 200) assert.match(!outcome.ok ? `${outcome.reason} ${outcome.detail}` : '', /Target\.FailedHealthChecks .*response cut short/);
      else assert.equal(!outcome.ok && outcome.reason, 'Target.ResponseCodeMismatch');
    }
  });

  it('a path a request line cannot carry is not sent', async () => {
    const before = srv.requests.length;
    const outcome = await run(probe(srv.port, { path: '/with space' }));
    assert.match(!outcome.ok ? `${outcome.reason} ${outcome.detail}` : '', /Target\.FailedHealthChecks .*not sent/);
    assert.equal(srv.requests.length, before);
  });

  it('an aborted check closes its socket and settles', async () => {
    srv.handler.fn = () => {};
    const ac = new AbortController();
    const pending = httpCheck(probe(srv.port), ac.signal);
    await waitUntil(() => srv.sockets.size === 1, 'the check to connect');
    ac.abort();
    const outcome = await pending;
    assert.equal(outcome.ok, false);
    await waitUntil(() => srv.sockets.size === 0, 'the check socket to close');
  });
});

describe('httpCheck: malformed answers and HTTPS', () => {
  it('an answer that is not HTTP/1.x is Target.FailedHealthChecks', async () => {
    const raw = createNetServer((s) => {
      s.on('error', () => {});
      s.end('this is not HTTP\r\n\r\n');
    });
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
    after(() => raw.close());
    const outcome = await run(probe((raw.address() as AddressInfo).port));
    assert.equal(!outcome.ok && outcome.reason, 'Target.FailedHealthChecks');
  });

  it('HTTPS to a target with a self-signed certificate is checked (certificate not verified)', async () => {
    const fixtures = new URL('../../test/fixtures/', import.meta.url);
    const server = createHttpsServer({
      key: readFileSync(new URL('self-signed.key', fixtures)),
      cert: readFileSync(new URL('self-signed.crt', fixtures)),
    });
    const srv = await startServer(server);
    srv.handler.fn = (req, res) => {
      res.statusCode = req.url === '/health' ? 200 : 500;
      res.end();
    };
    assert.deepEqual(await run(probe(srv.port, { protocol: 'HTTPS' })), { ok: true });
    const bad = await run(probe(srv.port, { protocol: 'HTTPS', path: '/other' }));
    assert.equal(!bad.ok && bad.statusCode, 500);
  });
});

describe('ActiveHealthChecker with the real HTTP probe (FakeClock schedules)', async () => {
  const srv = await startServer(createServer());

  function checkerFor(port: number, config: Partial<HealthCheckConfig>) {
    const clock = new FakeClock();
    const checker = new ActiveHealthChecker({ clock });
    const seen: HealthObservation[] = [];
    checker.onObservation((o) => seen.push(o));
    after(() => checker.close());
    checker.setTargets([
      { key: 'tg|127.0.0.1|x', host: '127.0.0.1', port, config: { ...defaultHealthCheck('HTTP'), intervalSeconds: 10, timeoutSeconds: 5, path: '/health', matcher: '200-399', ...config } },
    ]);
    return { clock, checker, seen };
  }

  it('gives the right reason on every check as the target changes its answer', async () => {
    const answers = [200, 503, 200, 404, 301];
    let n = 0;
    srv.handler.fn = (_req, res) => {
      res.statusCode = answers[n++] ?? 200;
      res.end();
    };
    const { clock, seen } = checkerFor(srv.port, {});
    for (let i = 0; i < answers.length; i++) {
      await waitUntil(() => seen.length === i + 1, `observation ${i + 1}`);
      clock.advance(10_000);
    }
    assert.deepEqual(
      seen.map((o) => (o.ok ? 'ok' : `${o.reason}:${o.statusCode}`)),
      ['ok', 'Target.ResponseCodeMismatch:503', 'ok', 'Target.ResponseCodeMismatch:404', 'ok'],
    );
  });

  it('a target that never answers is Target.Timeout at timeoutSeconds, and its socket is closed', async () => {
    srv.handler.fn = () => {};
    const { clock, seen } = checkerFor(srv.port, { timeoutSeconds: 2 });
    await waitUntil(() => srv.sockets.size === 1, 'the check to reach the server');
    clock.advance(1_999);
    await sleep(20);
    assert.equal(seen.length, 0);
    clock.advance(1);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.ok === false && seen[0].reason, 'Target.Timeout');
    await waitUntil(() => srv.sockets.size === 0, 'the timed-out socket to close');
    // The next check times out again: the reason is right each time.
    clock.advance(8_000);
    await waitUntil(() => srv.sockets.size === 1, 'the second check');
    clock.advance(2_000);
    assert.equal(seen.length, 2);
    assert.equal(seen[1]?.ok === false && seen[1].reason, 'Target.Timeout');
  });

  it('a closed port gives Target.FailedHealthChecks on every check', async () => {
    const { clock, seen } = checkerFor(await freePort(), {});
    await waitUntil(() => seen.length === 1, 'first observation');
    clock.advance(10_000);
    await waitUntil(() => seen.length === 2, 'second observation');
    assert.deepEqual(
      seen.map((o) => !o.ok && o.reason),
      ['Target.FailedHealthChecks', 'Target.FailedHealthChecks'],
    );
  });
});
