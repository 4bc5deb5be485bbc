/**
 * Helpers for the HTTPS listener tests: snapshots with an HTTPS listener and its certificates, a TLS
 * client that reports the certificate it was shown, an HTTPS GET, curl with --resolve, and a recorder
 * of the data plane's TLS errors and request ends.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import https from 'node:https';
import tls from 'node:tls';
import type { ListenerCertificate, RoutingSnapshot, TlsPolicySettings } from '../../src/domain/routing-snapshot.ts';
import { tlsPolicySettings } from '../../src/domain/tls-policies.ts';
import { CHANNEL_NAMES } from '../../src/dataplane/channels.ts';
import type { RequestEndMessage, TlsErrorMessage } from '../../src/dataplane/channels.ts';
import { testCa } from '../support/certs.ts';
import type { TestCert } from '../support/certs.ts';
import { snapshot } from './dataplane-helpers.ts';

export function policy(name = 'ELBSecurityPolicy-TLS13-1-2-2021-06'): TlsPolicySettings {
  const p = tlsPolicySettings(name);
  if (p === undefined) throw new Error(`no policy ${name}`);
  return p;
}

/** A listener certificate from a test certificate (the names it was made for). */
export function listenerCert(arn: string, cert: TestCert, names: readonly string[]): ListenerCertificate {
  return { arn, certificatePem: cert.certPem, privateKeyPem: cert.keyPem, names };
}

/** `snapshot()` with its listener made HTTPS with `certificates` (the default first) under `tlsPolicy`. */
export function httpsSnapshot(
  backends: readonly number[],
  certificates: readonly ListenerCertificate[],
  opts: Parameters<typeof snapshot>[1] & { policy?: TlsPolicySettings } = {},
): RoutingSnapshot {
  const base = snapshot(backends, opts);
  return {
    ...base,
    listeners: base.listeners.map((l) => ({ ...l, protocol: 'HTTPS' as const, tls: { certificates, policy: opts.policy ?? policy() } })),
  };
}

export interface Handshake {
  /** The serial number of the certificate shown (hex, upper case). */
  readonly serial: string;
  readonly subject: string;
  readonly protocol: string | null;
  readonly alpn: string | false | null;
}

/** A TLS handshake with the listener (trusting the test CA, checking nothing else); `servername` omitted: no SNI. */
export function handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: testCa().certPem, checkServerIdentity: () => undefined, ...opts }, () => {
      const c = s.getPeerCertificate();
      const out = { serial: c.serialNumber.toUpperCase(), subject: String(c.subject.CN), protocol: s.getProtocol(), alpn: s.alpnProtocol };
      // Ended, not destroyed: a reset right after the client's Finished can reach ebb before it, and the
      // handshake would count as cut short.
      s.end();
      s.on('close', () => resolve(out));
    });
    s.resume();
    s.on('error', reject);
  });
}

/** The outcome of a handshake expected to fail: the client's error code, and how long it took. */
export function failedHandshake(port: number, opts: tls.ConnectionOptions): Promise<{ code: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => {
      s.destroy();
      resolve({ code: 'connected', ms: performance.now() - t0 });
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve({ code: err.code ?? err.message, ms: performance.now() - t0 }));
  });
}

export interface HttpsReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  readonly serial: string;
}

/** GET over TLS with SNI `servername`, trusting the test CA, on a connection of its own. */
export function httpsGet(port: number, servername: string, path = '/'): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, servername, headers: { host: servername }, ca: testCa().certPem, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      const serial = (res.socket as tls.TLSSocket).getPeerCertificate().serialNumber.toUpperCase();
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), serial }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** curl with `--resolve name:port:127.0.0.1 --cacert <test CA>` (so the name is sent as SNI and verified); stdout, stderr (-v) and exit code. */
export function curlResolve(port: number, name: string, path = '/', extra: readonly string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = ['-sS', '-v', '--max-time', '5', '--resolve', `${name}:${port}:127.0.0.1`, '--cacert', testCa().certFile, ...extra, `https://${name}:${port}${path}`];
  return new Promise((resolve) => {
    execFile('curl', args, { timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The serial number of a PEM certificate (hex, upper case), as `getPeerCertificate` reports it. */
export function serialOf(cert: TestCert): string {
  return new X509Certificate(cert.certPem).serialNumber.toUpperCase();
}

/** Records TLS errors and request ends of the data plane while subscribed. */
export class ChannelRecorder {
  readonly tlsErrors: TlsErrorMessage[] = [];
  readonly requestEnds: RequestEndMessage[] = [];
  readonly #onTls = (m: unknown): void => void this.tlsErrors.push(m as TlsErrorMessage);
  readonly #onEnd = (m: unknown): void => void this.requestEnds.push(m as RequestEndMessage);

  constructor() {
    diagnosticsChannel.subscribe(CHANNEL_NAMES.tlsError, this.#onTls);
    diagnosticsChannel.subscribe(CHANNEL_NAMES.requestEnd, this.#onEnd);
  }

  reasons(): string[] {
    return this.tlsErrors.map((m) => m.reason);
  }

  close(): void {
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.tlsError, this.#onTls);
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestEnd, this.#onEnd);
  }
}
