/**
 * Helpers for the HTTP/2 tests: an `h2` front made the way an HTTPS listener makes one (a TLS server
 * offering `h2` and `http/1.1` by ALPN that hands `h2` sockets to `Http2Sessions` and the others to
 * ebb's HTTP/1.1 `ClientConnection`), over a request path wired as `HttpDataPlane` wires its own
 * (target entries, the upstream pool, the pickers), and Node's HTTP/2 client.
 */
import http2 from 'node:http2';
import type { ClientHttp2Session, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { RoutingSnapshot } from '../../src/domain/routing-snapshot.ts';
import type { TlsFacts } from '../../src/dataplane/channels.ts';
import { ClientConnection } from '../../src/dataplane/client-connection.ts';
import type { ListenerContext, ProxyHost } from '../../src/dataplane/http-proxy.ts';
import { Http2Sessions } from '../../src/dataplane/http2/http2-sessions.ts';
import type { RotationState } from '../../src/dataplane/pickers/index.ts';
import { TargetEntry } from '../../src/dataplane/target-entry.ts';
import { UpstreamPool } from '../../src/dataplane/upstream-pool.ts';
import type { Tunnel } from '../../src/dataplane/websocket-tunnel.ts';
import { leafCert, testCa } from '../support/certs.ts';

export { GROUP, LISTENER, SETTINGS, keyOf, snapshot, startBackend } from './dataplane-helpers.ts';
export type { Backend } from './dataplane-helpers.ts';
export { sleep, waitFor, within } from '../support/timing.ts';

/** The certificate the fronts present (for `localhost`), signed by the test CA. */
const cert = leafCert(['localhost']);

export interface H2Front {
  readonly port: number;
  readonly sessions: Http2Sessions;
  readonly entries: ReadonlyMap<string, TargetEntry>;
  readonly logs: object[];
  /** Keys reported idle after leaving the snapshot (HttpDataPlane's `onIdle`). */
  readonly idle: string[];
  /** The TLS facts handed with every socket. */
  readonly facts: TlsFacts;
  /** Swaps the snapshot as `HttpDataPlane.apply` does for its routes. */
  apply(snap: RoutingSnapshot): void;
  /** Ends what is in flight on `key` as `HttpDataPlane.terminate` does; returns the requests cut. */
  terminate(key: string): number;
  /** As a listener's close: GOAWAY, and resolves once every connection has closed (or `deadlineMs`, then cuts). */
  close(deadlineMs?: number): Promise<{ cut: number }>;
}

/** An `h2` front on 127.0.0.1:0 routing by `snap`. */
export async function startH2Front(snap: RoutingSnapshot): Promise<H2Front> {
  const logs: object[] = [];
  const idle: string[] = [];
  const entries = new Map<string, TargetEntry>();
  const rotations = new Map<string, RotationState>();
  const pool = new UpstreamPool({ maxIdlePerKey: 16 });
  let current = snap;
  const workEnded = (e: TargetEntry): void => {
    if (!e.routable && !e.busy) idle.push(e.key);
  };
  const host: ProxyHost = {
    id: 'h2-test',
    get snapshot() {
      return current;
    },
    entries,
    pool,
    pickInputs: { outstanding: (k) => entries.get(k)?.requests ?? 0, random: Math.random, now: () => 0 },
    rotation: (arn) => {
      let r = rotations.get(arn);
      if (r === undefined) rotations.set(arn, (r = { next: 0 }));
      return r;
    },
    log: (line) => logs.push(line),
    workEnded,
    tunnelHooks: { dataPlaneId: 'h2-test', onClosed: (t: Tunnel) => workEnded(t.entry), closeGraceMs: 200 },
  };
  const route = snap.listeners[0];
  if (route === undefined) throw new Error('the snapshot has no listener');
  const ctx: ListenerContext & { closing: boolean; localPort: number } = { route, localPort: 0, closing: false, tunnels: new Set() };
  const sessions = new Http2Sessions(host, ctx);
  const h1 = new Set<ClientConnection>();
  const facts: TlsFacts = { cipher: 'TLS_AES_256_GCM_SHA384', protocol: 'TLSv1.3', serverName: 'localhost', certificateArn: 'arn:test:acm:certificate/test' };
  const server = tls.createServer({ key: cert.keyPem, cert: cert.certPem, ALPNProtocols: ['h2', 'http/1.1'] }, (socket) => {
    const negotiated: TlsFacts = { ...facts, cipher: socket.getCipher().name, protocol: socket.getProtocol() ?? '-' };
    if (socket.alpnProtocol === 'h2') sessions.accept(socket, negotiated);
    else new ClientConnection(socket, host, ctx, h1, negotiated);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  ctx.localPort = port;

  const apply = (next: RoutingSnapshot): void => {
    current = next;
    const seen = new Set<string>();
    for (const g of next.targetGroups.values()) {
      for (const t of g.targets) {
        seen.add(t.key);
        let e = entries.get(t.key);
        if (e === undefined) entries.set(t.key, (e = new TargetEntry(t.key, t.host, t.port)));
        e.routable = true;
      }
    }
    for (const e of entries.values()) {
      if (seen.has(e.key) || !e.routable) continue;
      e.routable = false;
      pool.closeIdle(e);
      if (!e.busy) queueMicrotask(() => idle.push(e.key));
    }
  };
  apply(snap);

  return {
    port,
    sessions,
    entries,
    logs,
    idle,
    facts,
    apply,
    terminate(key) {
      const e = entries.get(key);
      if (e === undefined) return 0;
      let cut = 0;
      for (const conn of pool.connectionsOf(e)) {
        if (conn.sink !== null) {
          conn.sink.terminate();
          cut++;
        } else conn.destroy();
      }
      return cut;
    },
    async close(deadlineMs = 5_000) {
      ctx.closing = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      sessions.goAway();
      for (const c of h1) c.closeIfIdle();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'deadline'>((r) => (timer = setTimeout(() => r('deadline'), deadlineMs)));
      const outcome = await Promise.race([closed.then(() => 'closed' as const), late]);
      clearTimeout(timer);
      let cut = 0;
      if (outcome === 'deadline') {
        cut = sessions.cut();
        for (const c of h1) c.destroy();
        await closed;
      }
      pool.destroyAll();
      return { cut };
    },
  };
}

/** Node's HTTP/2 client to a front, trusting the test CA; resolves once ebb's SETTINGS have arrived (and are acknowledged). */
export async function h2Connect(port: number): Promise<ClientHttp2Session> {
  const client = http2.connect(`https://localhost:${port}`, { ca: testCa().certPem, servername: 'localhost' });
  client.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    client.once('remoteSettings', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error('the HTTP/2 connection closed before its SETTINGS came')));
  });
  return client;
}

export interface H2Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The RST_STREAM code when the stream was reset, else 0. */
  readonly rstCode: number;
  /** The stream ended with an error (a reset, the session going away). */
  readonly error: string | null;
}

/** One request on `client`; never rejects: a reset or a session error is in the reply. */
export function h2Request(client: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Reply> {
  return new Promise((resolve) => {
    let status = 0;
    let got: IncomingHttpHeaders = {};
    let text = '';
    let error: string | null = null;
    const req = client.request(headers, { endStream: body === undefined });
    req.on('response', (h) => {
      got = h;
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    req.on('close', () => resolve({ status, headers: got, body: text, rstCode: req.rstCode ?? 0, error }));
    if (body !== undefined) req.end(body);
  });
}

/** GET `path` on `client`. */
export function h2Get(client: ClientHttp2Session, path: string): Promise<H2Reply> {
  return h2Request(client, { ':path': path });
}
