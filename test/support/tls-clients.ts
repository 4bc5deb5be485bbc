/**
 * TLS clients for the data plane's tests.
 */
import tls from 'node:tls';
import { testCa } from './certs.ts';

export interface Tls12Client {
  readonly socket: tls.TLSSocket;
  /** What arrived so far, as latin1. */
  received(): string;
  /** Settles when the socket closes. */
  readonly closed: Promise<void>;
}

/**
 * A TLS 1.2 client of a listener, trusting the test CA, once its handshake is done: TLS 1.3 has no
 * renegotiation, so this is the client that can ask ebb for one (`socket.renegotiate`).
 */
export async function tls12Client(port: number, servername: string): Promise<Tls12Client> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: testCa().certPem, maxVersion: 'TLSv1.2' });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  let text = '';
  socket.on('data', (b: Buffer) => (text += b.toString('latin1')));
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  return { socket, received: () => text, closed };
}
