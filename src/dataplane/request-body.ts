/**
 * Reading a request body off the client's connection: a Content-Length count, or the chunked coding
 * decoded strictly (RFC 9112 §7.1): a chunk size of 1 to 13 hex digits (up to 2^52, beyond any body
 * a load balancer streams), optional extensions up to 4 KiB (after whitespace behind the size, only a
 * `;` or the line's end), every line ended by CRLF, trailers up to
 * 16 KiB. Anything else (`zz`, `-3`, `0x3`, a size of 2^72, a bare LF, a missing CRLF after the
 * data, an endless extension) is an error, reported at once so the client gets a 400 and the
 * target connection the request was streamed on is closed.
 */

export interface BodySink {
  /** Decoded body bytes (for chunked, the chunk data without its framing). */
  onBodyData(chunk: Buffer): void;
  onBodyEnd(): void;
}

const MAX_SIZE_LINE = 4096;
const MAX_TRAILERS = 16 * 1024;
const MAX_HEX_DIGITS = 13;

const enum St {
  Length,
  Size,
  SizeLf,
  /** Whitespace after the size: only more of it, an extension's `;` or the line's end may follow. */
  ExtBws,
  Ext,
  Data,
  DataCr,
  DataLf,
  TrailerLineStart,
  TrailerLine,
  TrailerLf,
  FinalLf,
  Done,
  Broken,
}

export class RequestBodyReader {
  /** Why the body is invalid, once it is; null while it is fine. */
  error: string | null = null;
  #state: St;
  #remaining: number;
  #size = 0;
  #digits = 0;
  #lineBytes = 0;
  #trailerBytes = 0;

  constructor(chunked: boolean, length: number) {
    this.#state = chunked ? St.Size : length > 0 ? St.Length : St.Done;
    this.#remaining = length;
  }

  get done(): boolean {
    return this.#state === St.Done;
  }

  /**
   * Consumes body bytes from `buf` at `off`, telling `sink`; returns the offset just past the body's
   * last byte (the rest belongs to the next request), or `buf.length` if the body goes on. On an
   * invalid body it sets `error` and returns -1.
   */
  feed(buf: Buffer, off: number, sink: BodySink): number {
    const len = buf.length;
    while (off < len) {
      switch (this.#state) {
        case St.Length: {
          const take = Math.min(this.#remaining, len - off);
          this.#remaining -= take;
          sink.onBodyData(off === 0 && take === len ? buf : buf.subarray(off, off + take));
          off += take;
          if (this.#remaining === 0) {
            this.#state = St.Done;
            sink.onBodyEnd();
            return off;
          }
          continue;
        }
        case St.Data: {
          const take = Math.min(this.#remaining, len - off);
          this.#remaining -= take;
          sink.onBodyData(buf.subarray(off, off + take));
          off += take;
          if (this.#remaining === 0) this.#state = St.DataCr;
          continue;
        }
        case St.Done:
          return off;
        case St.Broken:
          return -1;
        default:
          break; // the line states read byte by byte, below
      }
      const c = buf[off++] as number;
      switch (this.#state) {
        case St.Size: {
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.#digits > MAX_HEX_DIGITS) return this.#fail('chunk-size-too-large');
            this.#size = this.#size * 16 + v;
            this.#lineBytes++;
            break;
          }
          if (this.#digits === 0) return this.#fail('bad-chunk-size');
          if (c === 13) this.#state = St.SizeLf;
          else if (c === 59 /* ; */ || c === 32 || c === 9) {
            // Whitespace before an extension is BWS (RFC 9112 §7.1.1); after it only an extension may come.
            this.#state = c === 59 ? St.Ext : St.ExtBws;
            this.#lineBytes++;
          } else return this.#fail(c === 10 ? 'bare-lf' : 'bad-chunk-size');
          break;
        }
        case St.ExtBws:
          // Whitespace before the line's end is let through, as HAProxy does; nothing else but `;`.
          if (c === 59 /* ; */) this.#state = St.Ext;
          else if (c === 13) this.#state = St.SizeLf;
          else if (c !== 32 && c !== 9) return this.#fail(c === 10 ? 'bare-lf' : 'bad-chunk-extension');
          if (++this.#lineBytes > MAX_SIZE_LINE) return this.#fail('chunk-extension-too-long');
          break;
        case St.Ext:
          if (c === 13) this.#state = St.SizeLf;
          else if (c === 10) return this.#fail('bare-lf');
          else if (++this.#lineBytes > MAX_SIZE_LINE) return this.#fail('chunk-extension-too-long');
          else if (c < 32 && c !== 9) return this.#fail('bad-chunk-extension');
          break;
        case St.SizeLf:
          if (c !== 10) return this.#fail('bad-chunk-line-end');
          if (this.#size === 0) this.#state = St.TrailerLineStart;
          else {
            this.#remaining = this.#size;
            this.#state = St.Data;
          }
          this.#size = 0;
          this.#digits = 0;
          this.#lineBytes = 0;
          break;
        case St.DataCr:
          if (c !== 13) return this.#fail('missing-crlf-after-chunk');
          this.#state = St.DataLf;
          break;
        case St.DataLf:
          if (c !== 10) return this.#fail('missing-crlf-after-chunk');
          this.#state = St.Size;
          break;
        case St.TrailerLineStart:
          if (c === 13) this.#state = St.FinalLf;
          else if (c === 10) return this.#fail('bare-lf');
          else this.#state = St.TrailerLine;
          if (++this.#trailerBytes > MAX_TRAILERS) return this.#fail('trailers-too-long');
          break;
        case St.TrailerLine:
          if (++this.#trailerBytes > MAX_TRAILERS) return this.#fail('trailers-too-long');
          if (c === 13) this.#state = St.TrailerLf;
          else if (c === 10 || c === 0) return this.#fail('bad-trailer');
          break;
        case St.TrailerLf:
          if (c !== 10) return this.#fail('bad-trailer');
          this.#state = St.TrailerLineStart;
          break;
        case St.FinalLf:
          if (c !== 10) return this.#fail('bad-chunk-line-end');
          this.#state = St.Done;
          sink.onBodyEnd();
          return off;
      }
    }
    return off;
  }

  #fail(detail: string): number {
    this.#state = St.Broken;
    this.error = detail;
    return -1;
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
