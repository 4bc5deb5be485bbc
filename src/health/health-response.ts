/**
 * Reads the answer to one health-check GET, as it arrives: the status line and the head, then the
 * body by its framing (Content-Length, chunked, or to the close), discarded as it goes. Only the
 * status decides a check, but the check ends when the body does, so a target that stalls mid-body
 * is caught by the timeout, as with Node's own HTTP client (which this replaces for checks: a check
 * through `http.request` made an agent, a request and a response object, and their listeners, each
 * time, for one status code).
 *
 * It is as strict as Node's parser where a check can tell: a head that is not HTTP/1.x, a header
 * line without a name, obsolete line folding, conflicting or malformed Content-Length, both
 * Content-Length and Transfer-Encoding, a bad chunk size or chunk end, or a head over 16 KiB (Node's
 * default) make the answer unreadable. Informational answers (1xx) are skipped, as Node skips them.
 */

/** Node's default bound on a response head (`--max-http-header-size`). */
export const MAX_HEAD_BYTES = 16 * 1024;

export type ReadProgress =
  | { readonly state: 'more' }
  /** The answer is whole (or the body reached the caller's bound): `status` decides. */
  | { readonly state: 'done'; readonly status: number }
  | { readonly state: 'bad'; readonly why: string };

const MORE: ReadProgress = { state: 'more' };

type Body =
  | { readonly kind: 'length'; left: number }
  | { readonly kind: 'chunked'; phase: 'size' | 'data' | 'data-end' | 'trailers'; left: number; line: string }
  | { readonly kind: 'close' };

const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?:[ \t][^\r\n]*)?$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DIGITS = /^\d+$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,8})[ \t]*(?:;.*)?$/;

export class HealthResponseReader {
  readonly #maxBodyBytes: number;
  #head: Buffer = Buffer.alloc(0);
  #status = 0;
  #body: Body | null = null;
  #bodyBytes = 0;
  #result: ReadProgress = MORE;

  /** `maxBodyBytes`: past this many body bytes the answer counts as read (the rest is not waited for). */
  constructor(maxBodyBytes: number) {
    this.#maxBodyBytes = maxBodyBytes;
  }

  /** The status of the final answer once its head is read, else 0. */
  get status(): number {
    return this.#status;
  }

  /** Takes the next bytes from the socket. */
  push(chunk: Buffer): ReadProgress {
    let rest: Buffer | null = chunk;
    while (this.#result.state === 'more' && rest !== null && rest.length > 0) {
      rest = this.#body === null ? this.#readHead(rest) : this.#readBody(rest);
    }
    return this.#result;
  }

  /** The connection ended (the target closed it): whether that ends the answer or cuts it short. */
  end(): ReadProgress {
    if (this.#result.state !== 'more') return this.#result;
    if (this.#body?.kind === 'close') return this.#finish();
    this.#result = { state: 'bad', why: this.#body === null ? 'connection closed without a complete response' : 'response cut short' };
    return this.#result;
  }

  /** Head bytes until the blank line; returns what follows it, or null when more is needed. */
  #readHead(chunk: Buffer): Buffer | null {
    const scanFrom = Math.max(0, this.#head.length - 3);
    this.#head = this.#head.length === 0 ? chunk : Buffer.concat([this.#head, chunk]);
    let end = this.#head.indexOf('\r\n\r\n', scanFrom, 'latin1');
    let sep = 4;
    if (end < 0) {
      end = this.#head.indexOf('\n\n', scanFrom, 'latin1');
      sep = 2;
    }
    if (end < 0) {
      if (this.#head.length > MAX_HEAD_BYTES) this.#bad(`response head over ${MAX_HEAD_BYTES} bytes`);
      return null;
    }
    if (end > MAX_HEAD_BYTES) {
      this.#bad(`response head over ${MAX_HEAD_BYTES} bytes`);
      return null;
    }
    const text = this.#head.toString('latin1', 0, end);
    const rest = this.#head.subarray(end + sep);
    this.#head = Buffer.alloc(0);
    this.#parseHead(text);
    return rest;
  }

  #parseHead(text: string): void {
    const lines = text.split(/\r?\n/);
    const status = STATUS_LINE.exec(lines[0] ?? '');
    if (status === null) return this.#bad(`not an HTTP/1.x status line: ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`);
    const code = Number(status[1]);
    const lengths: string[] = [];
    const codings: string[] = [];
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] ?? '';
      const colon = line.indexOf(':');
      const name = colon < 0 ? '' : line.slice(0, colon);
      if (!HEADER_NAME.test(name)) return this.#bad(`a header line without a valid name: ${JSON.stringify(line.slice(0, 60))}`);
      const lower = name.toLowerCase();
      if (lower === 'content-length') lengths.push(line.slice(colon + 1).trim());
      else if (lower === 'transfer-encoding') codings.push(...line.slice(colon + 1).split(',').map((c) => c.trim().toLowerCase()));
    }
    // 1xx answers precede the real one and have no body: read on.
    if (code < 200) return;
    this.#status = code;
    if (lengths.length > 0 && codings.length > 0) return this.#bad('both Content-Length and Transfer-Encoding');
    if (code === 204 || code === 304) {
      this.#finish();
      return;
    }
    if (codings.length > 0) {
      this.#body = codings.at(-1) === 'chunked' ? { kind: 'chunked', phase: 'size', left: 0, line: '' } : { kind: 'close' };
      return;
    }
    if (lengths.length > 0) {
      const first = lengths[0] ?? '';
      if (!DIGITS.test(first) || lengths.some((l) => l !== first)) return this.#bad(`a bad Content-Length: ${lengths.join(', ')}`);
      const left = Number(first);
      if (left === 0) {
        this.#finish();
        return;
      }
      this.#body = { kind: 'length', left };
      return;
    }
    this.#body = { kind: 'close' };
  }

  #readBody(chunk: Buffer): null {
    const body = this.#body;
    if (body === null) return null;
    this.#bodyBytes += chunk.length;
    if (body.kind === 'length') {
      body.left -= chunk.length;
      if (body.left <= 0) this.#finish();
    } else if (body.kind === 'chunked') {
      this.#readChunked(body, chunk);
    }
    if (this.#result.state === 'more' && this.#bodyBytes >= this.#maxBodyBytes) this.#finish();
    return null;
  }

  #readChunked(body: Extract<Body, { kind: 'chunked' }>, chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && this.#result.state === 'more') {
      if (body.phase === 'data') {
        const take = Math.min(body.left, chunk.length - i);
        body.left -= take;
        i += take;
        if (body.left === 0) {
          body.phase = 'data-end';
          body.line = '';
        }
        continue;
      }
      // size, data-end and trailers are lines: gather up to LF.
      const lf = chunk.indexOf(10, i);
      const upTo = lf < 0 ? chunk.length : lf;
      body.line += chunk.toString('latin1', i, upTo);
      i = upTo + 1;
      if (body.line.length > MAX_HEAD_BYTES) return this.#bad('a chunk line over 16 KiB');
      if (lf < 0) return;
      const line = body.line.endsWith('\r') ? body.line.slice(0, -1) : body.line;
      body.line = '';
      if (body.phase === 'data-end') {
        if (line !== '') return this.#bad('chunk data not followed by CRLF');
        body.phase = 'size';
      } else if (body.phase === 'size') {
        const size = CHUNK_SIZE.exec(line);
        if (size === null) return this.#bad(`a bad chunk size line: ${JSON.stringify(line.slice(0, 60))}`);
        body.left = Number.parseInt(size[1] ?? '', 16);
        body.phase = body.left === 0 ? 'trailers' : 'data';
      } else if (line === '') {
        this.#finish();
      }
    }
  }

  #finish(): ReadProgress {
    this.#result = { state: 'done', status: this.#status };
    return this.#result;
  }

  #bad(why: string): void {
    this.#result = { state: 'bad', why };
  }
}
