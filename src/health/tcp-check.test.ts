import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { defaultHealthCheck } from '../domain/health-check.ts';
import type { HealthObservation } from '../domain/health-port.ts';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { ActiveHealthChecker } from './active-health-checker.ts';
import { tcpCheck } from './tcp-check.ts';

async function listen(): Promise<{ port: number; accepted: Socket[]; close: () => Promise<void> }> {
  const accepted: Socket[] = [];
  const server = createServer((s) => {
    accepted.push(s);
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const close = async (): Promise<void> => {
    for (const s of accepted) s.destroy();
    if (server.listening) {
      server.close();
      await once(server, 'close');
    }
  };
  after(close);
  return { port: (server.address() as AddressInfo).port, accepted, close };
}

describe('tcpCheck against real sockets', () => {
  it('a listening port is healthy and the connection is closed at once', async () => {
    const srv = await listen();
    assert.deepEqual(await tcpCheck({ host: '127.0.0.1', port: srv.port }, new AbortController().signal), { ok: true });
    assert.equal(srv.accepted.length, 1);
    const sock = srv.accepted[0];
    assert.ok(sock);
    if (!sock.readableEnded) await once(sock, 'end');
  });

  it('a closed port is Target.FailedHealthChecks', async () => {
    const srv = await listen();
    await srv.close();
    const outcome = await tcpCheck({ host: '127.0.0.1', port: srv.port }, new AbortController().signal);
    assert.equal(!outcome.ok && outcome.reason, 'Target.FailedHealthChecks');
    assert.match(!outcome.ok ? outcome.detail : '', /ECONNREFUSED/);
  });

  it('the checker reports ok, then Target.FailedHealthChecks once the server is gone', async () => {
    const srv = await listen();
    const clock = new FakeClock();
    const checker = new ActiveHealthChecker({ clock });
    after(() => checker.close());
    const seen: HealthObservation[] = [];
    checker.onObservation((o) => seen.push(o));
    checker.setTargets([{ key: 'k', host: '127.0.0.1', port: srv.port, config: { ...defaultHealthCheck('TCP'), intervalSeconds: 10 } }]);
    for (let i = 0; i < 100 && seen.length < 1; i++) await new Promise((r) => setTimeout(r, 10));
    await srv.close();
    clock.advance(10_000);
    for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(
      seen.map((o) => (o.ok ? 'ok' : o.reason)),
      ['ok', 'Target.FailedHealthChecks'],
    );
  });
});
