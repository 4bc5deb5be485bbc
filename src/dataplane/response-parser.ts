import { connectionNamedHeaders } from './hop-by-hop.ts';

/**
 * The HTTP/1.1 response parser for what targets send: status line and header lines strictly (CRLF,
 * no obs-fold, header names that are tokens, no control characters, one Content-Length value), the
 * body framed as RFC 9112 §6.3 says. It is fed reads as they come, cut anywhere: a head or a chunk
 * line split over several reads is glued before it is parsed. Hop-by-hop headers are dropped from
 * what it reports; the framing is reported as a `BodyKind` for the client side to re-frame.
 *
 * Bytes after the end of a response in the same read mean the connection's framing can no longer be
 * trusted: `keepAlive` turns false and the bytes are dropped.
 */

/** How the response body is delimited on the target's connection. */
export const enum BodyKind {
  /** No body (HEAD, 204, 304, Content-Length: 0). */
  None = 0,
  /** Content-Length (the header stays in the reported headers). */
  Length = 1,
  Chunked = 2,
  /** Until the target closes the connection. */
  Eof = 3,
}

export interface ResponseEvents {
  /** A final response head (interim 1xx heads are skipped). Returns false to stop parsing. */
  onHead(status: number, reason: string, rawHeaders: string[], body: BodyKind): boolean;
  onBody(chunk: Buffer): void;
  /** The response ended; `last` is its final body bytes, if any, to send with the end. */
  onEnd(last: Buffer | null): void;
  /** The bytes are not a valid response; nothing more is parsed. */
  onGarbage(detail: string): void;
  /**
   * `101 Switching Protocols` to an upgrade request: `rawHeaders` without Connection and Upgrade,
   * `upgrade` the protocol named, `rest` the bytes after the head (the new protocol's first bytes).
   */
  onSwitch(reason: string, rawHeaders: string[], upgrade: string, rest: Buffer): void;
}

const MAX_HEAD_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 4096;
/** Byte classes for the head's one pass: a control byte (not HTAB) ends the parse, a tchar may be in a name. */
const CTL_BYTE = 1;
const TCHAR_BYTE = 2;
const BYTE = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  if ((b < 0x20 && b !== 0x09) || b === 0x7f) BYTE[b] = CTL_BYTE;
  else if (/[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(String.fromCharCode(b))) BYTE[b] = TCHAR_BYTE;
}
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
  Broken,
}

export class ResponseParser {
  /** The connection may carry another exchange after this response. */
  keepAlive = true;
  /** Some byte of the current response has arrived. */
  started = false;
  #state = St.Idle;
  #pending: Buffer | null = null;
  #remaining = 0;
  #line = '';
  #headRequest = false;
  #upgradeRequest = false;

  readonly #events: ResponseEvents;

  constructor(events: ResponseEvents) {
    this.#events = events;
  }

  /** Expects the response to a new request. */
  begin(headRequest: boolean, upgradeRequest: boolean): void {
    this.#state = St.Head;
    this.#headRequest = headRequest;
    this.#upgradeRequest = upgradeRequest;
    this.started = false;
    this.#pending = null;
    this.#line = '';
  }

  /** Waiting for nothing (between exchanges): any byte now is one nobody asked for. */
  get idle(): boolean {
    return this.#state === St.Idle;
  }

  /** The body runs until the target closes. */
  get untilEof(): boolean {
    return this.#state === St.BodyEof;
  }

  /** The target closed: true if that ended a response delimited by the close (then `onEnd` was called). */
  eof(): boolean {
    if (this.#state !== St.BodyEof) return false;
    this.keepAlive = false;
    this.#state = St.Idle;
    this.#events.onEnd(null);
    return true;
  }

  execute(input: Buffer): void {
    if (input.length > 0) this.started = true;
    let buf = input;
    let off = 0;
    let len = buf.length;
    while (off < len) {
      switch (this.#state) {
        case St.Head: {
          let b = off > 0 ? buf.subarray(off) : buf;
          let copied = false;
          if (this.#pending !== null) {
            b = Buffer.concat([this.#pending, b]);
            this.#pending = null;
            copied = true;
          }
          const end = b.indexOf(CRLFCRLF);
          if (end < 0) {
            if (b.length > MAX_HEAD_BYTES) return this.#garbage('head-too-large');
            if (b.length >= 7 && b.toString('latin1', 0, 7) !== 'HTTP/1.') return this.#garbage('not-http');
            // Kept past this read: a copy, as the read may be into a buffer the connection reuses.
            this.#pending = copied ? b : Buffer.from(b);
            return;
          }
          // The same limit whether the head came in one read or many.
          if (end + 4 > MAX_HEAD_BYTES) return this.#garbage('head-too-large');
          // Go on in the glued buffer: the saved partial head and this read.
          buf = b;
          len = b.length;
          off = end + 4;
          if (!this.#parseHead(b.toString('latin1', 0, end), b, off)) return;
          if ((this.#state as St) === St.Done) {
            if (off < len) this.keepAlive = false;
            this.#state = St.Idle;
            this.#events.onEnd(null);
            return;
          }
          break;
        }
        case St.BodyLength: {
          const avail = len - off;
          const rem = this.#remaining;
          if (avail >= rem) {
            if (avail > rem) this.keepAlive = false;
            this.#state = St.Idle;
            this.#events.onEnd(off === 0 && rem === len ? buf : buf.subarray(off, off + rem));
            return;
          }
          this.#remaining = rem - avail;
          this.#events.onBody(off === 0 ? buf : buf.subarray(off));
          return;
        }
        case St.BodyEof:
          this.#events.onBody(off === 0 ? buf : buf.subarray(off));
          return;
        case St.ChunkSize:
        case St.Trailers: {
          const nl = buf.indexOf(10, off);
          const stop = nl < 0 ? len : nl + 1;
          this.#line += buf.toString('latin1', off, stop);
          off = stop;
          if (this.#line.length > MAX_LINE_BYTES) return this.#garbage('chunk-line-too-long');
          if (nl < 0) break;
          const line = this.#line;
          this.#line = '';
          if (line.length < 2 || line.charCodeAt(line.length - 2) !== 13) return this.#garbage('bare-lf');
          if (this.#state === St.Trailers) {
            if (line.length === 2) {
              if (off < len) this.keepAlive = false;
              this.#state = St.Idle;
              this.#events.onEnd(null);
              return;
            }
            break; // trailers are dropped
          }
          let size = line.slice(0, line.length - 2);
          const semi = size.indexOf(';');
          if (semi >= 0) size = size.slice(0, semi);
          size = size.trimEnd();
          if (!HEX.test(size)) return this.#garbage('bad-chunk-size');
          const n = parseInt(size, 16);
          if (n === 0) this.#state = St.Trailers;
          else {
            this.#remaining = n;
            this.#state = St.ChunkData;
          }
          break;
        }
        case St.ChunkData: {
          const take = Math.min(this.#remaining, len - off);
          this.#events.onBody(buf.subarray(off, off + take));
          off += take;
          this.#remaining -= take;
          if (this.#remaining === 0) {
            this.#state = St.ChunkCrlf;
            this.#remaining = 2;
          }
          break;
        }
        case St.ChunkCrlf: {
          const c = buf[off++];
          if (c !== (this.#remaining === 2 ? 13 : 10)) return this.#garbage('bad-chunk-end');
          if (--this.#remaining === 0) this.#state = St.ChunkSize;
          break;
        }
        case St.Idle:
          return this.#garbage('unexpected-bytes');
        default:
          return; // Broken or Done: nothing more is read
      }
    }
  }

  #garbage(detail: string): void {
    this.#state = St.Broken;
    this.keepAlive = false;
    this.#pending = null;
    this.#events.onGarbage(detail);
  }

  /**
   * Parses one response head (`text`, without its blank line; `buf` and `after` locate the bytes that
   * follow it) and sets the body state. Returns false when parsing stops (garbage, a switch, or the
   * exchange refused the head).
   */
  #parseHead(text: string, buf: Buffer, after: number): boolean {
    // One pass over the head's characters (latin1, so each is a byte) rather than a split and a
    // regular expression per line: the status line `HTTP/1.x NNN[ reason]`, then each header line
    // checked for control bytes and a token name, its value without the OWS around it.
    const len = text.length;
    const next = text.indexOf('\r\n');
    const statusEnd = next < 0 ? len : next;
    const reason = statusReason(text, statusEnd);
    if (reason === null) {
      this.#garbage('bad-status-line');
      return false;
    }
    const http10 = text.charCodeAt(7) === 48;
    const status = (text.charCodeAt(9) - 48) * 100 + (text.charCodeAt(10) - 48) * 10 + (text.charCodeAt(11) - 48);
    const out: string[] = [];
    let cl: string | null = null;
    let te: string | null = null;
    let upgrade = '';
    let named: Set<string> | null = null;
    let start = statusEnd + 2;
    let more = next >= 0;
    while (more) {
      const nl = text.indexOf('\r\n', start);
      more = nl >= 0;
      const lineEnd = more ? nl : len;
      let colon = -1;
      let badName = false;
      for (let i = start; i < lineEnd; i++) {
        const c = text.charCodeAt(i);
        const k = BYTE[c] as number;
        if (k === CTL_BYTE) {
          this.#garbage('bad-header-line');
          return false;
        }
        if (colon < 0) {
          if (c === 58) colon = i;
          else if (k !== TCHAR_BYTE) badName = true;
        }
      }
      if (colon <= start) {
        this.#garbage('bad-header-line');
        return false;
      }
      if (badName) {
        this.#garbage('bad-header-name');
        return false;
      }
      const name = text.slice(start, colon);
      let a = colon + 1;
      let b = lineEnd;
      while (a < b && isOwsCode(text.charCodeAt(a))) a++;
      while (b > a && isOwsCode(text.charCodeAt(b - 1))) b--;
      const value = text.slice(a, b);
      start = lineEnd + 2;
      // Only names as long as a hop-by-hop or framing one are lower-cased and looked at.
      if (!FRAMING_OR_HOP_LENGTH[name.length]) {
        out.push(name, value);
        continue;
      }
      switch (name.toLowerCase()) {
        case 'content-length':
          if (!DIGITS.test(value) || (cl !== null && cl !== value)) {
            this.#garbage('bad-content-length');
            return false;
          }
          if (cl !== null) continue;
          cl = value;
          break;
        case 'transfer-encoding':
          te = te === null ? value : `${te}, ${value}`;
          continue;
        case 'connection': {
          if (value.toLowerCase().includes('close')) this.keepAlive = false;
          const listed = connectionNamedHeaders(value);
          if (listed !== null) {
            named ??= new Set();
            for (const n of listed) named.add(n);
          }
          continue;
        }
        case 'upgrade':
          upgrade = value;
          continue;
        case 'keep-alive':
        case 'proxy-connection':
        case 'te':
        case 'trailer':
          continue;
      }
      out.push(name, value);
    }
    const headers = named === null ? out : dropNamed(out, named);
    if (status < 200) {
      if (status === 101) {
        if (!this.#upgradeRequest || upgrade === '') {
          this.#garbage('unexpected-101');
          return false;
        }
        this.#state = St.Done;
        this.keepAlive = false;
        this.#events.onSwitch(reason, headers, upgrade, buf.subarray(after));
        this.#state = St.Broken;
        return false;
      }
      // Interim response (100 Continue, 103 Early Hints): skipped; the final one follows. (The client
      // had its 100 Continue from ebb itself.)
      this.#state = St.Head;
      return true;
    }
    if (http10) this.keepAlive = false;
    let body: BodyKind;
    if (this.#headRequest || status === 204 || status === 304) {
      this.#state = St.Done;
      body = BodyKind.None;
      // A 204 has no content and no Content-Length (RFC 9110 §8.6): a lenient client would wait for the bytes.
      if (status === 204 && cl !== null) removeHeader(headers, 'content-length');
    } else if (te !== null) {
      // ebb frames the body it relays itself (chunked, or ended by the close), so it can carry no other
      // coding on: a `gzip` whose name was dropped would hand the client compressed bytes as the body.
      // So, as nginx and Envoy do, a coding other than chunked, or chunked twice, is a bad response.
      let chunks = 0;
      let other = false;
      for (const part of te.toLowerCase().split(',')) {
        const coding = part.trim();
        if (coding === 'chunked') chunks++;
        else if (coding !== '' && coding !== 'identity') other = true;
      }
      if (other || chunks > 1) {
        this.#garbage('unsupported-transfer-coding');
        return false;
      }
      if (cl !== null) removeHeader(headers, 'content-length');
      if (chunks === 1) {
        this.#state = St.ChunkSize;
        body = BodyKind.Chunked;
        if (cl !== null) this.keepAlive = false;
      } else {
        this.#state = St.BodyEof;
        body = BodyKind.Eof;
        this.keepAlive = false;
      }
    } else if (cl !== null) {
      this.#remaining = Number(cl);
      this.#state = this.#remaining === 0 ? St.Done : St.BodyLength;
      body = this.#remaining === 0 ? BodyKind.None : BodyKind.Length;
    } else {
      this.#state = St.BodyEof;
      body = BodyKind.Eof;
      this.keepAlive = false;
    }
    if (!this.#events.onHead(status, reason, headers, body)) {
      this.#state = St.Broken;
      return false;
    }
    return true;
  }
}

/** The lengths of the names `#parseHead` looks at: content-length, transfer-encoding, connection, upgrade, keep-alive, proxy-connection, te, trailer. */
const FRAMING_OR_HOP_LENGTH: readonly boolean[] = Array.from({ length: 18 }, (_, n) => n === 2 || n === 7 || n === 10 || n === 14 || n === 16 || n === 17);

function isOwsCode(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * The reason phrase of a status line `text[0, end)` if it is `HTTP/1.[01] NNN` (NNN from 100 to 599, RFC 9110 §15), with
 * ` reason` after it or nothing, the reason free of control bytes but HTAB; null if it is not.
 */
function statusReason(text: string, end: number): string | null {
  if (end < 12 || !text.startsWith('HTTP/1.')) return null;
  const minor = text.charCodeAt(7);
  if ((minor !== 48 && minor !== 49) || text.charCodeAt(8) !== 32) return null;
  const d0 = text.charCodeAt(9);
  const d1 = text.charCodeAt(10);
  const d2 = text.charCodeAt(11);
  if (d0 < 49 || d0 > 53 || d1 < 48 || d1 > 57 || d2 < 48 || d2 > 57) return null;
  if (end === 12) return '';
  if (text.charCodeAt(12) !== 32) return null;
  for (let i = 13; i < end; i++) if (BYTE[text.charCodeAt(i)] === CTL_BYTE) return null;
  return text.slice(13, end);
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
