/**
 * HTTPS backends (targets of an HTTPS target group): node:https on 127.0.0.1:0 with a given
 * certificate, recording each TLS connection (the SNI it carried, whether its session was resumed)
 * and each request. `/health` answers 200 (503 while `healthy` is false) without being recorded;
 * anything else answers its name, or what `handler` says.
 */
import https from 'node:https';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { TestCert } from './certs.ts';

export interface TlsConnectionSeen {
  /** The SNI the client sent, or null when it sent none. */
  readonly servername: string | null;
  /** The handshake resumed an earlier session (set once the handshake is done). */
  resumed: boolean;
}

export interface TlsBackend {
  readonly name: string;
  readonly port: number;
  readonly server: https.Server;
  readonly connections: TlsConnectionSeen[];
  /** Paths of the requests answered (health checks excluded). */
  readonly requests: string[];
  healthChecks: number;
  healthy: boolean;
  close(): Promise<void>;
}

export async function startTlsBackend(name: string, cert: TestCert, handler?: http.RequestListener): Promise<TlsBackend> {
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem });
  server.keepAliveTimeout = 10_000;
  const backend: TlsBackend = {
    name,
    port: 0,
    server,
    connections: [],
    requests: [],
    healthChecks: 0,
    healthy: true,
    close: async () => undefined,
  };
  server.on('secureConnection', (socket: TLSSocket) => {
    const sni = (socket as TLSSocket & { servername?: string | false }).servername;
    backend.connections.push({ servername: typeof sni === 'string' ? sni : null, resumed: socket.isSessionReused() });
  });
  server.on('tlsClientError', () => undefined);
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url === '/health') {
      backend.healthChecks++;
      res.statusCode = backend.healthy ? 200 : 503;
      res.end(backend.healthy ? 'ok' : 'failing');
      return;
    }
    backend.requests.push(req.url ?? '');
    if (handler !== undefined) return handler(req, res);
    req.resume();
    req.on('end', () => {
      res.setHeader('X-Backend', name);
      res.end(name);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (backend as { port: number }).port = (server.address() as AddressInfo).port;
  backend.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return backend;
}
