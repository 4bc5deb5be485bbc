import net from 'node:net';
import { classifySocketError, ProxyError } from './errors.ts';
import { connectionNamedHeaders } from './hop-by-hop.ts';
import type { TargetEntry } from './target-activity.ts';

/**
 * Keep-alive HTTP/1.1 connections to targets, one pool per target key, and the response parser.
 *
 * ebb writes each request head itself (one write for the head of a bodiless request) and parses
 * the response head in JavaScript: status line and header lines only, strictly (CRLF, no obs-fold,
 * one Content-Length value). The response framing follows RFC 9112 §6.3. Each connection keeps
 * its socket listeners for its whole life and points them at the exchange it currently serves,
 * so a request adds no listener to a pooled socket.
 */

/** What a connection reports to the request it serves. */
export interface UpstreamSink {
  /** The request may now be written (the connection is open). */
  onConnected(conn: UpstreamConnection): void;
  /** A response head. `rawHeaders` are already filtered of hop-by-hop headers. */
  onResponseHead(status: number, reason: string, rawHeaders: string[]): boolean;
  onResponseBody(chunk: Buffer): void;
  /** The response ended; `last` is the final body chunk, if any, to send with the end. */
  onResponseEnd(last: Buffer | null): void;
  /** The exchange failed. `retryable`: nothing was received and the connection had been reused. */
  onUpstreamError(err: ProxyError, retryable: boolean): void;
  /** Cut at a drain deadline; returns the number of sockets closed. */
  terminate(): number;
}

const MAX_HEAD_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 4096;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
const CTL = /[\x00-\x08\x0a-\x1f\x7f]/;
const DIGITS = /^[0-9]{1,15}$/;
const HEX = /^[0-9a-fA-F]{1,12}$/;
const CRLFCRLF = Buffer.from('\r\n\r\n');

const enum St {
  Idle,
  Head,
  BodyLength,
  ChunkSize,
  ChunkData,
  ChunkCrlf,
  Trailers,
  BodyEof,
  Done,
}

const enum Deadline {
  None,
  Connect,
  Response,
}

/** Tunables shared by the pools of one data plane. */
export interface PoolOptions {
  /** Idle connections kept per target key; more are closed when released. */
  readonly maxIdlePerKey: number;
}

export class UpstreamConnection {
  readonly socket: net.Socket;
  connected = false;
  /** Has served at least one exchange (a failure before any byte may then be retried). */
  reused = false;
  /** The connection may serve another exchange after the current one. */
  reusable = true;
  sink: UpstreamSink | null = null;
  /** Coarse monotonic ms at which the armed deadline expires; 0 when none. */
  deadline = 0;
  deadlineKind = Deadline.None;
  idleSince = 0;
  idleTimeoutMs = 60_000;
  /** Coarse ms of the last byte from the target (or of request body to it) once it is answering. */
  lastActive = 0;
  /** The current request is a HEAD (its response has no body). */
  headRequest = false;
  /** The current request has been written whole (else the connection cannot be reused). */
  requestComplete = true;
  private state = St.Idle;
  private pending: Buffer | null = null;
  private remaining = 0;
  private line = '';
  private receivedAny = false;
  private closed = false;

  constructor(
    readonly entry: TargetEntry,
    private readonly pool: UpstreamPool,
    connectTimeoutMs: number,
  ) {
    const socket = net.connect({ host: entry.host, port: entry.port, noDelay: true });
    this.socket = socket;
    this.deadline = pool.now + connectTimeoutMs;
    this.deadlineKind = Deadline.Connect;
    entry.open.add(this);
    socket.on('connect', () => {
      this.connected = true;
      this.deadline = 0;
      this.deadlineKind = Deadline.None;
      const sink = this.sink;
      if (sink !== null) sink.onConnected(this);
    });
    socket.on('data', (b: Buffer) => this.onData(b));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(classifySocketError(err, this.connected)));
    socket.on('close', () => this.onClose());
  }

  /** Starts an exchange on this connection. Call `armResponse` once the request is fully written. */
  assign(sink: UpstreamSink, headRequest: boolean): void {
    this.sink = sink;
    this.headRequest = headRequest;
    this.requestComplete = false;
    this.state = St.Head;
    this.receivedAny = false;
    this.pending = null;
    if (this.connected) sink.onConnected(this);
  }

  armResponse(timeoutMs: number): void {
    this.requestComplete = true;
    if (this.receivedAny || this.sink === null) return;
    this.deadline = this.pool.now + timeoutMs;
    this.deadlineKind = Deadline.Response;
  }

  /**
   * Called by the pool's ticker with the coarse clock. Connect and time-to-first-byte deadlines
   * first; once the target is answering, the exchange fails when nothing has moved either way for
   * the idle timeout (a target that stalls mid-response). While the request body is still being
   * sent and nothing has come back, the client's side enforces the idle timeout.
   */
  checkDeadline(now: number): void {
    if (this.sink === null) {
      if (now - this.idleSince > this.idleTimeoutMs) this.destroy();
      return;
    }
    if (this.deadline !== 0) {
      if (now < this.deadline) return;
      const kind = this.deadlineKind;
      this.deadline = 0;
      this.fail(new ProxyError(kind === Deadline.Connect ? 'connect-timeout' : 'response-timeout', ''));
      return;
    }
    if (this.receivedAny && now - this.lastActive > this.idleTimeoutMs) this.fail(new ProxyError('idle-timeout', 'target'));
  }

  /** Closes the connection, without telling the exchange it serves (if any). */
  destroy(): void {
    this.sink = null;
    this.markClosed();
    this.socket.destroy();
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.reusable = false;
    this.entry.open.delete(this);
    this.pool.forget(this);
  }

  private fail(err: ProxyError): void {
    const sink = this.sink;
    this.sink = null;
    this.deadline = 0;
    this.markClosed();
    this.socket.destroy();
    if (sink !== null) {
      const retryable = this.reused && !this.receivedAny && err.kind === 'upstream-reset';
      sink.onUpstreamError(err, retryable);
    }
  }

  private onEnd(): void {
    if (this.state === St.BodyEof && this.sink !== null) {
      this.reusable = false;
      this.complete(null);
      return;
    }
    if (this.sink !== null) this.fail(new ProxyError('upstream-reset', this.receivedAny ? 'eof-mid-response' : 'eof'));
    else this.destroy();
  }

  private onClose(): void {
    if (this.sink !== null) {
      if (this.state === St.BodyEof) {
        this.reusable = false;
        this.complete(null);
        return;
      }
      this.fail(new ProxyError('upstream-reset', 'closed'));
      return;
    }
    this.markClosed();
  }

  private garbage(detail: string): void {
    this.fail(new ProxyError('upstream-garbage', detail));
  }

  private complete(last: Buffer | null): void {
    const sink = this.sink;
    this.sink = null;
    this.state = St.Idle;
    this.deadline = 0;
    if (sink === null) return;
    // Release first, so the exchange's end sees the connection back in the pool (or closed).
    this.pool.release(this);
    sink.onResponseEnd(last);
  }

  private onData(buf: Buffer): void {
    if (this.sink === null) {
      // Bytes nobody asked for: the connection's framing can no longer be trusted.
      this.destroy();
      return;
    }
    this.lastActive = this.pool.now;
    if (!this.receivedAny) {
      this.receivedAny = true;
      this.deadline = 0;
    }
    let off = 0;
    let len = buf.length;
    while (off < len && this.sink !== null) {
      switch (this.state) {
        case St.Head: {
          let b = buf;
          if (off > 0) b = buf.subarray(off);
          if (this.pending !== null) {
            b = Buffer.concat([this.pending, b]);
            this.pending = null;
          }
          const end = b.indexOf(CRLFCRLF);
          if (end < 0) {
            if (b.length > MAX_HEAD_BYTES) return this.garbage('head-too-large');
            if (b.length >= 7 && b.toString('latin1', 0, 7) !== 'HTTP/1.') return this.garbage('not-http');
            this.pending = b;
            return;
          }
          if (!this.parseHead(b.toString('latin1', 0, end))) return;
          // Go on in the glued buffer: the saved partial head plus this read.
          buf = b;
          len = b.length;
          off = end + 4;
          if ((this.state as St) === St.Done) {
            if (off < buf.length) this.reusable = false;
            this.complete(null);
            return;
          }
          break;
        }
        case St.BodyLength: {
          const avail = len - off;
          const rem = this.remaining;
          if (avail >= rem) {
            if (avail > rem) this.reusable = false;
            const last = off === 0 && rem === len ? buf : buf.subarray(off, off + rem);
            this.complete(last);
            return;
          }
          this.remaining = rem - avail;
          (this.sink as UpstreamSink).onResponseBody(off === 0 ? buf : buf.subarray(off));
          return;
        }
        case St.BodyEof:
          (this.sink as UpstreamSink).onResponseBody(off === 0 ? buf : buf.subarray(off));
          return;
        case St.ChunkSize:
        case St.Trailers: {
          const nl = buf.indexOf(10, off);
          const stop = nl < 0 ? len : nl + 1;
          this.line += buf.toString('latin1', off, stop);
          off = stop;
          if (this.line.length > MAX_LINE_BYTES) return this.garbage('chunk-line-too-long');
          if (nl < 0) break;
          const line = this.line;
          this.line = '';
          if (line.length < 2 || line.charCodeAt(line.length - 2) !== 13) return this.garbage('bare-lf');
          if (this.state === St.Trailers) {
            if (line.length === 2) {
              if (off < len) this.reusable = false;
              this.complete(null);
              return;
            }
            break; // trailers are dropped
          }
          let size = line.slice(0, line.length - 2);
          const semi = size.indexOf(';');
          if (semi >= 0) size = size.slice(0, semi);
          size = size.trimEnd();
          if (!HEX.test(size)) return this.garbage('bad-chunk-size');
          const n = parseInt(size, 16);
          if (n === 0) this.state = St.Trailers;
          else {
            this.remaining = n;
            this.state = St.ChunkData;
          }
          break;
        }
        case St.ChunkData: {
          const take = Math.min(this.remaining, len - off);
          (this.sink as UpstreamSink).onResponseBody(buf.subarray(off, off + take));
          off += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            this.state = St.ChunkCrlf;
            this.remaining = 2;
          }
          break;
        }
        case St.ChunkCrlf: {
          const c = buf[off++];
          if (c !== (this.remaining === 2 ? 13 : 10)) return this.garbage('bad-chunk-end');
          if (--this.remaining === 0) this.state = St.ChunkSize;
          break;
        }
        default:
          return this.garbage('unexpected-bytes');
      }
    }
  }

  /** Parses one response head; sets the body state. Returns false after failing the exchange. */
  private parseHead(text: string): boolean {
    const lines = text.split('\r\n');
    const m = STATUS_LINE.exec(lines[0] as string);
    if (m === null) {
      this.garbage('bad-status-line');
      return false;
    }
    const http10 = m[1] === '0';
    const status = Number(m[2]);
    const out: string[] = [];
    let cl: string | null = null;
    let te: string | null = null;
    let named: Set<string> | null = null;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(':');
      const c0 = line.charCodeAt(0);
      if (colon <= 0 || c0 === 32 || c0 === 9 || CTL.test(line)) {
        this.garbage('bad-header-line');
        return false;
      }
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      switch (name.toLowerCase()) {
        case 'content-length':
          if (!DIGITS.test(value) || (cl !== null && cl !== value)) {
            this.garbage('bad-content-length');
            return false;
          }
          if (cl !== null) continue;
          cl = value;
          break;
        case 'transfer-encoding':
          te = te === null ? value : `${te}, ${value}`;
          continue;
        case 'connection': {
          if (value.toLowerCase().includes('close')) this.reusable = false;
          const more = connectionNamedHeaders(value);
          if (more !== null) {
            named ??= new Set();
            for (const m of more) named.add(m);
          }
          continue;
        }
        case 'keep-alive':
        case 'proxy-connection':
        case 'te':
        case 'trailer':
        case 'upgrade':
          continue;
      }
      out.push(name, value);
    }
    if (status < 200) {
      // Interim response (100 Continue, 103 Early Hints): skip it; the final one follows. (The
      // client had its 100 Continue from ebb's own server.)
      if (status === 101) {
        this.garbage('unexpected-101');
        return false;
      }
      this.state = St.Head;
      return true;
    }
    if (http10) this.reusable = false;
    if (this.headRequest || status === 204 || status === 304) {
      this.state = St.Done;
    } else if (te !== null) {
      const codings = te.toLowerCase().split(',');
      if ((codings[codings.length - 1] as string).trim() === 'chunked') {
        this.state = St.ChunkSize;
        if (cl !== null) {
          this.reusable = false;
          removeHeader(out, 'content-length');
        }
      } else {
        this.state = St.BodyEof;
        this.reusable = false;
        if (cl !== null) removeHeader(out, 'content-length');
      }
    } else if (cl !== null) {
      this.remaining = Number(cl);
      this.state = this.remaining === 0 ? St.Done : St.BodyLength;
    } else {
      this.state = St.BodyEof;
      this.reusable = false;
    }
    const headers = named === null ? out : dropNamed(out, named);
    return (this.sink as UpstreamSink).onResponseHead(status, m[3] ?? '', headers);
  }
}

function removeHeader(raw: string[], lower: string): void {
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if ((raw[i] as string).toLowerCase() === lower) raw.splice(i, 2);
  }
}

function dropNamed(raw: string[], named: Set<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = (raw[i] as string).toLowerCase();
    if (lower !== 'content-length' && named.has(lower)) continue;
    out.push(raw[i] as string, raw[i + 1] as string);
  }
  return out;
}

/**
 * All upstream connections of one data plane: per-key idle stacks (in `TargetEntry.idle`), a
 * coarse clock, and one ticker that enforces connect, response, mid-response inactivity and idle
 * timeouts by scanning open connections (no timer per request).
 */
export class UpstreamPool {
  /** Coarse monotonic ms, refreshed by the ticker. */
  now = performance.now();
  private readonly entries = new Set<TargetEntry>();
  private ticker: NodeJS.Timeout | null = null;

  constructor(private readonly options: PoolOptions) {}

  /** An idle connection of `entry`, or a new one. */
  acquire(entry: TargetEntry, connectTimeoutMs: number, idleTimeoutMs: number): UpstreamConnection {
    this.ensureTicker();
    const idle = entry.idle;
    let conn = idle.pop();
    // Reused only if quiet: bytes buffered on an idle connection are a response nobody asked for.
    while (conn !== undefined && (!conn.reusable || conn.socket.destroyed || conn.socket.readableLength > 0)) {
      if (!conn.socket.destroyed) conn.destroy();
      conn = idle.pop();
    }
    if (conn === undefined) {
      this.now = performance.now();
      conn = new UpstreamConnection(entry, this, connectTimeoutMs);
      this.entries.add(entry);
    }
    conn.idleTimeoutMs = idleTimeoutMs;
    return conn;
  }

  /** Returns a connection whose exchange ended: kept idle if reusable and its key is routable. */
  release(conn: UpstreamConnection): void {
    const entry = conn.entry;
    if (!conn.reusable || !conn.requestComplete || !entry.routable || entry.idle.length >= this.options.maxIdlePerKey) {
      // Not reusable, the target answered before the request body was sent whole, the key is
      // draining, or the pool is full.
      conn.destroy();
      return;
    }
    if (conn.socket.isPaused()) conn.socket.resume();
    conn.reused = true;
    conn.idleSince = this.now;
    entry.idle.push(conn);
  }

  /** Drops a closed connection from its idle stack. */
  forget(conn: UpstreamConnection): void {
    const idle = conn.entry.idle;
    const i = idle.lastIndexOf(conn);
    if (i >= 0) idle.splice(i, 1);
  }

  /** Closes the idle connections of `entry`; returns how many. */
  closeIdle(entry: TargetEntry): number {
    const idle = entry.idle.splice(0);
    for (const c of idle) c.destroy();
    return idle.length;
  }

  /** Stops the ticker (after every connection is closed). */
  stop(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
  }

  private ensureTicker(): void {
    if (this.ticker !== null) return;
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.ticker.unref();
  }

  private tick(): void {
    const now = (this.now = performance.now());
    for (const entry of this.entries) {
      if (entry.open.size === 0) {
        this.entries.delete(entry);
        continue;
      }
      for (const conn of entry.open) conn.checkDeadline(now);
    }
  }
}

/** Resolution of connect, response, inactivity and idle timeouts. */
const TICK_MS = 50;
