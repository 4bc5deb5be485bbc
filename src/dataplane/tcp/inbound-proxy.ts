import type { Socket } from 'node:net';
import { readProxyHeader } from './proxy-protocol.ts';

/** The client a load balancer in front of ebb named in its PROXY header. */
export interface ProxiedClient {
  readonly address: string;
  readonly port: number;
}

/** What reading a connection's PROXY header came to. */
export type InboundHeader =
  /** A header; `client` is null when it says to use the connection's own address (LOCAL, UNKNOWN). */
  | { readonly ok: true; readonly client: ProxiedClient | null }
  /** No valid header within the time allowed: the connection has been reset. */
  | { readonly ok: false; readonly reason: string };

/**
 * Reads the PROXY protocol header (version 1 or 2) a load balancer in front of ebb puts first on each
 * connection, for a listener that expects one. The bytes behind the header are put back in the
 * socket, which is left paused for whoever reads it next (a flow, or the TLS front: the ClientHello
 * comes after the header). A connection that sends something else, closes, or takes longer than
 * `timeoutMs` is reset: guessing would let any client name any address.
 */
export function readInboundProxyHeader(socket: Socket, timeoutMs: number, done: (result: InboundHeader) => void): void {
  let buffered: Buffer = Buffer.alloc(0);
  let settled = false;
  const finish = (result: InboundHeader): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onClose);
    if (!result.ok) {
      socket.on('error', () => {});
      try {
        socket.resetAndDestroy();
      } catch {
        socket.destroy();
      }
    }
    done(result);
  };
  const onData = (b: Buffer): void => {
    buffered = buffered.length === 0 ? b : Buffer.concat([buffered, b]);
    const r = readProxyHeader(buffered);
    if (r.kind === 'incomplete') return;
    if (r.kind === 'invalid') {
      finish({ ok: false, reason: r.reason });
      return;
    }
    socket.pause();
    const rest = buffered.subarray(r.length);
    if (rest.length > 0) socket.unshift(rest);
    finish({ ok: true, client: r.source });
  };
  const onEnd = (): void => finish({ ok: false, reason: 'the connection ended before its PROXY protocol header was whole' });
  const onClose = (): void => finish({ ok: false, reason: 'the connection closed before its PROXY protocol header was whole' });
  const timer = setTimeout(() => finish({ ok: false, reason: `no PROXY protocol header within ${timeoutMs} ms` }), timeoutMs);
  timer.unref();
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onClose);
  socket.on('error', onClose);
}
