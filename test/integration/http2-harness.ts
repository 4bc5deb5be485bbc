/**
 * Helpers for the HTTP/2 tests: an HttpDataPlane with one HTTPS listener (certificate for `localhost`,
 * signed by the test CA; ALPN offers `h2`), and Node's HTTP/2 client.
 */
import http2 from 'node:http2';
import type { ClientHttp2Session, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { RoutingSnapshot } from '../../src/domain/routing-snapshot.ts';
import type { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import { leafCert, testCa } from '../support/certs.ts';
import { pinned, startPlane } from './dataplane-helpers.ts';
import { listenerCert, policy } from './https-harness.ts';

export { GROUP, LISTENER, SETTINGS, keyOf, snapshot, startBackend } from './dataplane-helpers.ts';
export type { Backend } from './dataplane-helpers.ts';
export { sleep, waitFor, within } from '../support/timing.ts';

/** The certificate the listeners present (for `localhost`), and its ARN in the request-end messages. */
export const CERTIFICATE_ARN = 'arn:test:acm:certificate/h2';
const CERTIFICATES = [listenerCert(CERTIFICATE_ARN, leafCert(['localhost']), ['localhost'])];

/** `snap` with its listeners made HTTPS, serving the `localhost` certificate. */
export function asHttps(snap: RoutingSnapshot): RoutingSnapshot {
  return { ...snap, listeners: snap.listeners.map((l) => ({ ...l, protocol: 'HTTPS' as const, tls: { certificates: CERTIFICATES, policy: policy() } })) };
}

export interface H2Front {
  readonly dp: HttpDataPlane;
  readonly port: number;
  readonly logs: object[];
  /** Applies `snap` (made HTTPS, its listener kept on the bound port). */
  apply(snap: RoutingSnapshot): Promise<unknown>;
  /** `HttpDataPlane.close(deadlineMs)`. */
  close(deadlineMs: number): Promise<void>;
}

/** A data plane whose one listener is `snap`'s, made HTTPS. */
export async function startH2Front(snap: RoutingSnapshot): Promise<H2Front> {
  const logs: object[] = [];
  const { dp, port } = await startPlane(asHttps(snap), logs);
  return {
    dp,
    port,
    logs,
    apply: (next) => dp.apply(pinned(asHttps(next), port)),
    close: (deadlineMs) => dp.close(deadlineMs),
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
