import net from 'node:net';
import type { Socket } from 'node:net';

/**
 * Closes a socket with RST. `resetAndDestroy` needs a plain TCP handle: a TLS socket's handle is the
 * TLS layer, so the TCP socket under it (`_parent`, the socket the TLS server was given) is reset
 * instead; a socket already closed is left alone. A socket whose FIN is on its way but not yet sent
 * is closed without the RST: libuv refuses to reset it (`uv_tcp_close_reset`: EINVAL) and Node would
 * then leave it open for good.
 */
export function resetSocket(s: Socket): void {
  if (s.destroyed) return;
  if (finPending(s)) {
    s.destroy();
    return;
  }
  try {
    s.resetAndDestroy();
  } catch {
    const raw = (s as { _parent?: unknown })._parent;
    if (raw instanceof net.Socket && !raw.destroyed) {
      try {
        if (finPending(raw)) raw.destroy();
        else raw.resetAndDestroy();
      } catch {
        // falls through to a plain close
      }
    }
    s.destroy();
  }
}

/** The socket's writable side has ended and its FIN is not yet sent. */
function finPending(s: Socket): boolean {
  return s.writableEnded && !s.writableFinished;
}
