import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { BodyKind } from './response-parser.ts';
import { SocketWriter } from './socket-writer.ts';

/**
 * Body bytes up to this size are written in the same string as their head or chunk framing (one
 * write instead of a corked writev of several pieces); larger ones are not copied.
 */
const INLINE_BODY_BYTES = 4096;

/** A response's status line and header lines, each ending in CRLF (the blank line not included). */
export function statusAndHeaders(status: number, reason: string, rawHeaders: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${reason === '' ? (STATUS_CODES[status] ?? '') : reason}\r\n`;
  for (let i = 0; i < rawHeaders.length; i += 2) head += `${rawHeaders[i] as string}: ${rawHeaders[i + 1] as string}\r\n`;
  return head;
}

/**
 * How a response leaves for the client: its head held until the body's first bytes (so a head and
 * a small body that arrived together leave in one write of one string), the body chunked when the
 * client connection says so, and every byte counted. One per client connection, reset per response.
 */
export class ResponseFraming {
  readonly #socket: Socket;
  /** Where every write of a response goes: straight to the handle while nothing is queued (socket-writer.ts). */
  readonly #out: SocketWriter;
  #held: string | null = null;
  #chunked = false;
  /** Bytes of this response written (or held) so far: the access log's sent_bytes. */
  sent = 0;

  constructor(socket: Socket) {
    this.#socket = socket;
    this.#out = new SocketWriter(socket);
  }

  /**
   * A Buffer given as body may still be read by a write in progress: anything not yet written out may
   * be one (a body Buffer is written as it is, not copied, unless small enough to go inline).
   */
  get holdsBuffer(): boolean {
    return this.#out.holdsWrite;
  }

  /** A new response begins. */
  reset(): void {
    this.#held = null;
    this.#chunked = false;
    this.sent = 0;
  }

  /**
   * The head of a target's response, framed for the client: a body of unknown length is chunked, or,
   * to an HTTP/1.0 client, ends with the connection; `Connection: close` when the connection ends after
   * this response. Written at once when no body follows, else held for the body's first bytes. Returns
   * whether the connection stays open after it (`keepAlive`, unless the framing ends it).
   */
  head(status: number, reason: string, rawHeaders: readonly string[], body: BodyKind, http10: boolean, keepAlive: boolean): boolean {
    let head = statusAndHeaders(status, reason, rawHeaders);
    this.#chunked = false;
    if (body === BodyKind.Chunked || body === BodyKind.Eof) {
      if (http10) keepAlive = false;
      else {
        head += 'Transfer-Encoding: chunked\r\n';
        this.#chunked = true;
      }
    }
    if (!keepAlive) head += 'Connection: close\r\n';
    else if (http10) head += 'Connection: keep-alive\r\n';
    head += '\r\n';
    this.sent += head.length;
    if (body !== BodyKind.None) this.#held = head;
    else this.#out.latin1(head);
    return keepAlive;
  }

  /** Writes a held head (the target's read ended before any body byte). */
  flushHead(): void {
    const head = this.#held;
    if (head === null) return;
    this.#held = null;
    this.#out.latin1(head);
  }

  body(chunk: Buffer): boolean {
    if (chunk.length === 0) {
      this.flushHead();
      return true;
    }
    this.sent += chunk.length;
    let pre = this.#held ?? '';
    this.#held = null;
    if (!this.#chunked) return this.#send(pre, chunk, '');
    const size = chunk.length.toString(16);
    this.sent += size.length + 4;
    pre += `${size}\r\n`;
    return this.#send(pre, chunk, '\r\n');
  }

  end(last: Buffer | null): void {
    const trailer = this.#chunked ? '0\r\n\r\n' : '';
    this.sent += trailer.length;
    if (last === null || last.length === 0) {
      const head = this.#held ?? '';
      this.#held = null;
      if (head !== '' || trailer !== '') this.#out.latin1(head + trailer);
      return;
    }
    let pre = this.#held ?? '';
    this.#held = null;
    this.sent += last.length;
    let post = trailer;
    if (this.#chunked) {
      const size = last.length.toString(16);
      this.sent += size.length + 4;
      pre += `${size}\r\n`;
      post = `\r\n${trailer}`;
    }
    this.#send(pre, last, post);
  }

  /** An answer ebb writes itself, whole. */
  answer(text: string): void {
    this.sent += text.length;
    this.#out.latin1(text);
  }

  /** The response is cut: nothing held is written. */
  drop(): void {
    this.#held = null;
  }

  /**
   * Writes `pre`, `chunk` and `post` (framing, and a held head) with as few writes as it can: a small
   * chunk is carried in the same latin1 string (byte for byte), a large one goes in one corked writev.
   */
  #send(pre: string, chunk: Buffer, post: string): boolean {
    if (pre === '' && post === '') return this.#out.buffer(chunk);
    if (chunk.length <= INLINE_BODY_BYTES) return this.#out.latin1(pre + chunk.toString('latin1') + post);
    const s = this.#socket;
    s.cork();
    if (pre !== '') s.write(pre, 'latin1');
    let ok = s.write(chunk);
    if (post !== '') ok = s.write(post, 'latin1');
    s.uncork();
    return ok;
  }
}
