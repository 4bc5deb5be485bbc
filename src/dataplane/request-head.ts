import type { DesyncVerdict, RawRequestHead } from './desync/classify.ts';

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

/** Where the head ends in `buf` (searched from `from`): the index after its blank line, or -1. */
export function findHeadEnd(buf: Buffer, from: number): number {
  // A head ends at its first empty line: LF CR LF, or LF LF when lines end in a bare LF.
  let i = buf.indexOf(10, from);
  while (i >= 0) {
    const next = buf[i + 1];
    if (next === 10) return i + 2;
    if (next === 13 && buf[i + 2] === 10) return i + 3;
    if (next === undefined || (next === 13 && buf[i + 2] === undefined)) return -1;
    i = buf.indexOf(10, i + 1);
  }
  return -1;
}

/** Bytes of empty lines before a request line (RFC 9112 §2.2 lets a server skip them). */
export function leadingEmptyLines(buf: Buffer, from: number): number {
  let i = from;
  while (i < buf.length && (buf[i] === 13 || buf[i] === 10)) i++;
  return i - from;
}

const LEADING_WS_VERDICT: DesyncVerdict = { tier: 'Ambiguous', reason: 'MultilineHeader', message: 'a header line starts with whitespace (obs-fold)' };

/**
 * Parses a whole head: `text` is its bytes as latin1, from the request line up to and including the
 * line end of its last header line (the blank line excluded).
 */
export function parseRequestHead(text: string): RequestHead {
  const rawDefects: DesyncVerdict[] = [];
  const lines = text.split('\n');
  // split leaves an empty last element after the final LF.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let bareLf = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.charCodeAt(line.length - 1) === 13) lines[i] = line.slice(0, -1);
    else bareLf = true;
  }
  if (bareLf) rawDefects.push({ tier: 'Acceptable', reason: 'NonCrLfLineTermination', message: 'lines end in a bare LF, not CRLF' });

  const { method, uri, version, noVersion } = splitRequestLine(lines[0] ?? '');
  const headers: Array<{ name: string; value: string }> = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const c0 = line.charCodeAt(0);
    if (c0 === 32 || c0 === 9) {
      // obs-fold (RFC 9112 §5.2): the line continues the previous value. Replaced by one space, as
      // the RFC lets a proxy do, so that no target reads a line break in it.
      const prev = headers[headers.length - 1];
      rawDefects.push(LEADING_WS_VERDICT);
      if (prev !== undefined) {
        const more = trimOws(line);
        headers[headers.length - 1] = { name: prev.name, value: more === '' ? prev.value : `${prev.value} ${more}` };
      }
      continue;
    }
    const colon = line.indexOf(':');
    if (colon < 0) {
      rawDefects.push({ tier: 'Ambiguous', reason: 'MissingHeaderColon', message: `the header line '${printable(line)}' has no colon` });
      continue;
    }
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
  const v = rest.indexOf(' HTTP/');
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

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** For messages: control and non-ASCII bytes as \xNN, at most 64 characters. */
export function printable(s: string): string {
  const cut = s.length > 64 ? `${s.slice(0, 64)}…` : s;
  return cut.replace(/[\x00-\x1f\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
