import type { DesyncVerdict, RawRequestHead } from './desync/classify.ts';
import { quoteBytes, trimOws } from './desync/field-syntax.ts';

/**
 * Reading a client's request head off the wire, leniently: whatever the bytes say is kept as it
 * was, so the desync classifier can judge it (a header name with a trailing space, a bare LF line
 * end, a folded line) rather than a strict parser refusing it unseen. What only a raw reader can
 * see is reported as `rawDefects`, classified as http_desync_guardian does
 * (github.com/aws/http-desync-guardian, docs/README.md). Nothing here decides what is forwarded:
 * that is request-guard's, from the classification and the load balancer's desync mode.
 */

export interface RequestHead extends RawRequestHead {
  readonly headers: Array<{ readonly name: string; readonly value: string }>;
  readonly rawDefects: DesyncVerdict[];
  /** The request line had no version (HTTP/0.9 style). */
  readonly noVersion: boolean;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');
const LFLF = Buffer.from('\n\n');
const LFCRLF = Buffer.from('\n\r\n');
const HTTP_SLASH = Buffer.from('HTTP/');
const SP_HTTP_SLASH = ' HTTP/';

/**
 * Finds where a request head ends, as bytes arrive. How its lines end is decided by its request line:
 * a request line ended by CRLF makes CRLF the only line end of the head, so a lone LF (or CR) inside
 * a header line or the target stays in it, where the classifier calls it Severe (BadHeader, BadUri),
 * as ALB does; a request line ended by a bare LF makes every line end a bare LF (Acceptable,
 * NonCrLfLineTermination). A request line without a version is an HTTP/0.9 request: that line alone.
 * Each byte is searched once, however the head is cut into reads.
 */
export class HeadScanner {
  /** The head's lines end in CRLF (else in a bare LF). */
  crlf = true;
  /** An HTTP/0.9 request: the head is the request line alone. */
  single = false;
  /** Index of the LF ending the request line; -1 while unknown. */
  #lineEnd = -1;
  #from = 0;

  reset(): void {
    this.crlf = true;
    this.single = false;
    this.#lineEnd = -1;
    this.#from = 0;
  }

  /** The index just past the head's blank line (or its only line), or -1 while more bytes are needed. */
  scan(buf: Buffer): number {
    if (this.#lineEnd < 0 && !this.#findRequestLine(buf)) return -1;
    const lineEnd = this.#lineEnd;
    if (this.single) return lineEnd + 1;
    if (this.crlf) {
      const i = buf.indexOf(CRLFCRLF, Math.max(lineEnd - 1, this.#from));
      if (i >= 0) return i + 4;
    } else {
      const from = Math.max(lineEnd, this.#from);
      const a = buf.indexOf(LFLF, from);
      const b = buf.indexOf(LFCRLF, from);
      if (a >= 0 && (b < 0 || a <= b)) return a + 2;
      if (b >= 0) return b + 3;
    }
    this.#from = Math.max(0, buf.length - 3);
    return -1;
  }

  #findRequestLine(buf: Buffer): boolean {
    const lf = buf.indexOf(10);
    if (lf < 0) return false;
    if (lf > 0 && buf[lf - 1] === 13) {
      this.#lineEnd = lf;
    } else if (buf.indexOf(HTTP_SLASH, lf + 1) === lf + 1 || buf.length - lf - 1 < HTTP_SLASH.length) {
      // A lone LF right before `HTTP/` is inside the request line (`GET /a<LF>HTTP/1.1<CR><LF>`): the line
      // ends at the first CRLF. Until enough bytes follow the LF to tell, wait.
      if (buf.length - lf - 1 < HTTP_SLASH.length) return false;
      const crlf = buf.indexOf(CRLF, lf);
      if (crlf < 0) return false;
      this.#lineEnd = crlf + 1;
    } else {
      this.crlf = false;
      this.#lineEnd = lf;
    }
    const end = this.crlf ? this.#lineEnd - 1 : this.#lineEnd;
    // A line with ` HTTP/` in it has a version (see splitRequestLine); most end in ` HTTP/1.1`.
    this.single = !endsWithVersion(buf, end) && splitRequestLine(buf.toString('latin1', 0, end)).noVersion;
    return true;
  }
}

/** `buf[0, end)` ends in ` HTTP/x.y` (any two bytes after the slash). */
function endsWithVersion(buf: Buffer, end: number): boolean {
  const i = end - 9;
  return (
    i >= 0 && buf[i] === 32 && buf[i + 1] === 72 && buf[i + 2] === 84 && buf[i + 3] === 84 && buf[i + 4] === 80 && buf[i + 5] === 47
  );
}

/** Bytes of empty lines before a request line (RFC 9112 §2.2 lets a server skip them). */
export function leadingEmptyLines(buf: Buffer, from: number): number {
  let i = from;
  while (i < buf.length && (buf[i] === 13 || buf[i] === 10)) i++;
  return i - from;
}

/**
 * Parses a whole head found by a `HeadScanner`: `text` is its bytes as latin1 without the blank line
 * (with the line end of its last line), `crlf` how its lines end.
 */
export function parseRequestHead(text: string, crlf = true): RequestHead {
  const rawDefects: DesyncVerdict[] = [];
  let lines: string[];
  if (crlf) {
    lines = text.split('\r\n');
  } else {
    lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      if (line.charCodeAt(line.length - 1) === 13) lines[i] = line.slice(0, -1);
    }
    rawDefects.push({ tier: 'Acceptable', reason: 'NonCrLfLineTermination', message: 'lines end in a bare LF, not CRLF' });
  }
  // split leaves an empty last element after the final line end.
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();

  const { method, uri, version, noVersion } = splitRequestLine(lines[0] ?? '');
  const headers: Array<{ name: string; value: string }> = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon < 0) {
      // A folded line (obs-fold) or none at all: not a header any reader agrees on.
      rawDefects.push({ tier: 'Ambiguous', reason: 'MissingHeaderColon', message: `the header line ${quoteBytes(line)} has no colon` });
      continue;
    }
    // A name with whitespace around it (a line that starts with a space) is kept as it came: the
    // classifier judges it by the name it resembles, as ALB does.
    headers.push({ name: line.slice(0, colon), value: trimOws(line.slice(colon + 1)) });
  }
  return { method, uri, version, headers, rawDefects, noVersion };
}

/**
 * METHOD SP request-target SP HTTP-version. A target with spaces in it (SpaceInUri) keeps them: the
 * version is what follows the first ` HTTP/`, so `GET /a b HTTP/1.1` is `/a b` at HTTP/1.1 and a line
 * without one has no version (HTTP/0.9).
 */
function splitRequestLine(line: string): { method: string; uri: string; version: string; noVersion: boolean } {
  const sp = line.indexOf(' ');
  if (sp < 0) return { method: line, uri: '', version: '', noVersion: true };
  const method = line.slice(0, sp);
  let rest = line.slice(sp + 1);
  const v = rest.indexOf(SP_HTTP_SLASH);
  if (v >= 0) return { method, uri: rest.slice(0, v), version: rest.slice(v + 1), noVersion: false };
  if (rest.startsWith('HTTP/')) return { method, uri: '', version: rest, noVersion: false };
  // No recognisable version: the last word is one if it looks like `NAME/x.y` (a bad version), else none.
  const last = rest.lastIndexOf(' ');
  if (last >= 0 && /^[A-Za-z]+\/[0-9.]*$/.test(rest.slice(last + 1))) {
    const version = rest.slice(last + 1);
    rest = rest.slice(0, last);
    return { method, uri: rest, version, noVersion: false };
  }
  return { method, uri: rest, version: '', noVersion: true };
}
