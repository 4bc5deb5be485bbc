import type { Socket } from 'node:net';
import { tunnelCloseChannel, tunnelOpenChannel } from './channels.ts';
import type { TunnelMessage } from './channels.ts';
import type { TargetEntry } from './target-entry.ts';

/**
 * An upgraded connection (WebSocket or any other `Upgrade`) between a client and a target.
 *
 * The target's bytes are forwarded through a small WebSocket frame tracker, so that at a drain
 * deadline ebb can put a close frame (1001, "going away") on the client's stream exactly at a frame
 * boundary, never inside a frame; the target's later bytes are then dropped. The client's bytes are
 * forwarded as they are, through a second tracker: both sockets are closed as soon as the client
 * answers with its own close frame (or ends its side), or after the grace period. If the protocol is
 * not WebSocket, the close frame is still sent at a WebSocket frame boundary as best it can tell;
 * such protocols are simply closed at the deadline.
 */

/** Close frame from server to client: FIN + opcode 8, unmasked, payload 2 + 10 bytes: 1001 "going away". */
const GOING_AWAY = Buffer.from([0x88, 12, 0x03, 0xe9, ...Buffer.from('going away')]);

export interface TunnelHooks {
  readonly dataPlaneId: string;
  /** Called once when the tunnel is closed (both sockets). */
  onClosed(tunnel: Tunnel): void;
  /** Time between a close frame and the hard close, for a tunnel closed for inactivity. */
  readonly closeGraceMs: number;
}

/**
 * Follows WebSocket frame boundaries in one direction of a byte stream (header bytes are parsed,
 * payloads skipped), and notices a whole close frame going by.
 */
class FrameTracker {
  /** Payload bytes left in the current frame. */
  payloadLeft = 0;
  hdrLen = 0;
  /** A whole close frame (opcode 8) has gone by. */
  closeSeen = false;
  readonly #hdr = Buffer.alloc(14);
  #inClose = false;

  get atBoundary(): boolean {
    return this.payloadLeft === 0 && this.hdrLen === 0;
  }

  /** Advances over `b`; with `stop`, returns the offset of the first frame boundary (else -1). */
  track(b: Buffer, stop: boolean): number {
    const len = b.length;
    let i = 0;
    while (i < len) {
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, len - i);
        this.payloadLeft -= take;
        i += take;
        if (this.payloadLeft === 0 && this.#inClose) this.closeSeen = true;
        continue;
      }
      if (stop && this.hdrLen === 0) return i;
      const hdr = this.#hdr;
      hdr[this.hdrLen++] = b[i++] as number;
      if (this.hdrLen < 2) continue;
      const b1 = hdr[1] as number;
      const len7 = b1 & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
      if (this.hdrLen < need) continue;
      let payload = len7;
      if (len7 === 126) payload = hdr.readUInt16BE(2);
      else if (len7 === 127) payload = Number(hdr.readBigUInt64BE(2));
      this.payloadLeft = payload;
      this.hdrLen = 0;
      this.#inClose = ((hdr[0] as number) & 0x0f) === 8;
      if (this.#inClose && payload === 0) this.closeSeen = true;
    }
    return stop && this.atBoundary ? len : -1;
  }
}

export class Tunnel {
  /** Its index in its target entry's open tunnels. */
  tunnelSlot = -1;
  /** Frames from the target to the client. */
  readonly #down = new FrameTracker();
  /** Frames from the client to the target. */
  readonly #up = new FrameTracker();
  /** A close frame is owed to the client at the next frame boundary. */
  #closeOwed = false;
  #closeSent = false;
  #closed = false;
  #hardTimer: NodeJS.Timeout | null = null;

  readonly #client: Socket;
  readonly #hooks: TunnelHooks;
  /** The set of tunnels of the listener it came through; it leaves the set when closed. */
  readonly #owner: Set<Tunnel>;

  /**
   * `toTarget`: client bytes that came behind the upgrade request (held until the target switched);
   * `toClient`: target bytes that came behind its `101` head.
   */
  constructor(
    readonly entry: TargetEntry,
    client: Socket,
    readonly upstream: Socket,
    toTarget: Buffer | null,
    toClient: Buffer | null,
    idleTimeoutMs: number,
    hooks: TunnelHooks,
    owner: Set<Tunnel>,
  ) {
    this.#client = client;
    this.#hooks = hooks;
    this.#owner = owner;
    entry.tunnelOpened(this);
    owner.add(this);
    const up = upstream;
    up.setTimeout(0);
    up.on('data', (b: Buffer) => this.#fromTarget(b));
    up.on('error', () => this.close());
    up.on('end', () => {
      if (this.#client.writable) this.#client.end();
    });
    up.on('close', () => this.close());
    client.on('data', (c: Buffer) => this.#fromClient(c));
    client.on('end', () => {
      if (this.#closeSent) this.close();
      else up.end();
    });
    client.on('error', () => this.close());
    client.on('close', () => this.close());
    // Every byte of the tunnel, either way, crosses the client's socket: its timeout is the tunnel's
    // inactivity timeout.
    client.setTimeout(idleTimeoutMs);
    client.on('timeout', () => void this.terminate(hooks.closeGraceMs));
    if (tunnelOpenChannel.hasSubscribers) {
      tunnelOpenChannel.publish({ dataPlaneId: hooks.dataPlaneId, targetKey: entry.key } satisfies TunnelMessage);
    }
    if (toClient !== null) this.#fromTarget(toClient);
    if (toTarget !== null) this.#fromClient(toTarget);
    if (client.isPaused()) client.resume();
  }

  /**
   * Closes politely: a 1001 close frame to the client at the next frame boundary, then both
   * sockets after `graceMs`. Resolves when both are closed.
   */
  terminate(graceMs: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (!this.#closeSent) {
      this.#closeOwed = true;
      if (this.#down.atBoundary) this.#sendClose();
    }
    return new Promise((resolve) => {
      if (this.#closed) return resolve();
      this.#client.once('close', () => resolve());
      this.#hardTimer ??= setTimeout(() => this.close(), graceMs);
      this.#hardTimer.unref();
    });
  }

  /** Both sockets closed now. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#hardTimer !== null) clearTimeout(this.#hardTimer);
    this.upstream.destroy();
    this.#client.destroy();
    this.entry.tunnelClosed(this);
    this.#owner.delete(this);
    if (tunnelCloseChannel.hasSubscribers) {
      tunnelCloseChannel.publish({ dataPlaneId: this.#hooks.dataPlaneId, targetKey: this.entry.key } satisfies TunnelMessage);
    }
    this.#hooks.onClosed(this);
  }

  #fromTarget(b: Buffer): void {
    if (this.#closed || this.#closeSent) return; // after our close frame, nothing more goes to the client
    let toWrite = b;
    if (this.#closeOwed) {
      const at = this.#down.track(b, true);
      if (at >= 0) toWrite = b.subarray(0, at);
    } else this.#down.track(b, false);
    if (toWrite.length > 0 && !this.#client.write(toWrite)) {
      this.upstream.pause();
      this.#client.once('drain', () => this.upstream.resume());
    }
    if (this.#closeOwed && this.#down.atBoundary) this.#sendClose();
  }

  /** The client's bytes, to the target as they are; after ebb's close frame, the client's answer ends the tunnel. */
  #fromClient(b: Buffer): void {
    if (this.#closed) return;
    const up = this.#up;
    up.track(b, false);
    if (!this.upstream.write(b)) {
      this.#client.pause();
      this.upstream.once('drain', () => this.#client.resume());
    }
    if (up.closeSeen && this.#closeSent) this.close();
  }

  #sendClose(): void {
    if (this.#closeSent) return;
    this.#closeSent = true;
    this.#closeOwed = false;
    this.upstream.pause();
    if (this.#client.writable) this.#client.write(GOING_AWAY);
    // The client had already sent its close frame: the closing handshake is complete.
    if (this.#up.closeSeen) this.close();
  }
}
