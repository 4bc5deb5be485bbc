/**
 * The lexical side of the desync classifier: what each byte may be (RFC 9110 §5.6.2 tchar, §5.5
 * field-value, RFC 9112 §3.2 request-target), header names that resemble the framing headers,
 * transfer codings and Content-Length values, and how bytes are quoted in a message. Shared by the
 * classifier (`classify.ts`) and the body framing (`framing.ts`).
 */

// Byte classes (RFC 9110 §5.6.2 tchar, §5.5 field-vchar/obs-text, RFC 9112 §3.2 request-target),
// one table lookup per byte. A char above 0xFF cannot come off the wire as latin1; it is taken as
// obs-text so a caller's mistake cannot make a request look cleaner than it is.

export const TCHAR = 1;
/** field-vchar, obs-text, SP, HTAB: what a field value may hold. */
export const FIELD_VALUE = 2;
/** CR, LF, NUL: the bytes that end or truncate a line in some parser (the library's "bad" characters). */
export const LINE_BREAKING = 4;
/** Above SP and not DEL: what the library lets into a URI unremarked. */
export const URI_CHAR = 8;
export const ALNUM = 16;
/** VCHAR and SP: printed as they are in messages. */
export const PRINTABLE = 32;
export const OBS_TEXT_CLASS = FIELD_VALUE | URI_CHAR;

export const CLASS = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  let c = 0;
  const alnum = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
  if (alnum) c |= ALNUM | TCHAR;
  if ("!#$%&'*+-.^_`|~".includes(String.fromCharCode(b))) c |= TCHAR;
  if ((b >= 0x20 && b < 0x7f) || b >= 0x80 || b === 0x09) c |= FIELD_VALUE;
  if (b === 0x0d || b === 0x0a || b === 0x00) c |= LINE_BREAKING;
  if (b > 0x20 && b !== 0x7f) c |= URI_CHAR;
  if (b >= 0x20 && b < 0x7f) c |= PRINTABLE;
  CLASS[b] = c;
}

export function classOf(code: number): number {
  return code < 256 ? (CLASS[code] as number) : OBS_TEXT_CLASS;
}

export function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

export function lower(code: number): number {
  return code >= 0x41 && code <= 0x5a ? code + 0x20 : code;
}

// ---------------------------------------------------------------------------------------------
// Names that resemble the framing headers.

export const SAME = 0;
export const SIMILAR = 1;
export const DISTANT = 2;

/**
 * SAME when `name` is the header name in any case; SIMILAR when it spells the same words with junk
 * around them: any non-alphanumeric bytes before, between (in place of the `-`) and after the words,
 * control bytes or spaces inside a word, and the two UTF-8 letters that upper-case to an ASCII
 * letter of these names, `ſ` (C5 BF, to S) and `ı` (C4 B1, to I), as the library's scan found.
 * Examples: `Transfer_Encoding`, ` Content-Length`, `Transfer-Encoding\t`, `\x01Content-Length`,
 * `Tranſfer-Encoding`. Anything else is DISTANT (`X-Transfer-Encoding`, `TransferEncoding`).
 */
export function resembles(name: string, first: string, second: string): number {
  const n = name.length;
  // Most names start with a letter or digit other than the first letter wanted: decided at once.
  const c0 = classOf(name.charCodeAt(0));
  if ((c0 & ALNUM) !== 0 && lower(name.charCodeAt(0)) !== first.charCodeAt(0)) return DISTANT;
  let i = 0;
  while (i < n && (classOf(name.charCodeAt(i)) & ALNUM) === 0) i++;
  let exact = i === 0;
  for (let w = 0; w < 2; w++) {
    const word = w === 0 ? first : second;
    if (w > 0) {
      const gap = i;
      while (i < n && (classOf(name.charCodeAt(i)) & ALNUM) === 0) i++;
      if (i === gap) return DISTANT;
      if (i - gap !== 1 || name.charCodeAt(gap) !== 0x2d) exact = false;
    }
    for (let k = 0; k < word.length; k++) {
      if (i >= n) return DISTANT;
      const want = word.charCodeAt(k);
      const got = name.charCodeAt(i);
      if (lower(got) === want) i++;
      else if (i + 1 < n && lookAlike(want, got, name.charCodeAt(i + 1))) {
        i += 2;
        exact = false;
      } else return DISTANT;
      if (k + 1 < word.length) {
        const before = i;
        while (i < n && name.charCodeAt(i) <= 0x20) i++;
        if (i !== before) exact = false;
      }
    }
  }
  if (exact && i === n) return SAME;
  while (i < n) if ((classOf(name.charCodeAt(i++)) & ALNUM) !== 0) return DISTANT;
  return SIMILAR;
}

export function lookAlike(want: number, b1: number, b2: number): boolean {
  return (want === 0x73 && b1 === 0xc5 && b2 === 0xbf) || (want === 0x69 && b1 === 0xc4 && b2 === 0xb1);
}

// ---------------------------------------------------------------------------------------------
// Transfer-Encoding and Content-Length (RFC 9112 §6).

export const enum Coding {
  Chunked,
  Other,
  Invalid,
}

/**
 * One list element of Transfer-Encoding: OWS, a coding name, optional `;` parameters, OWS. The
 * names are the library's: chunked, compress, deflate, gzip and identity (RFC 7230's registry);
 * anything else, an empty element included, is Invalid, as unknown codings are where servers part.
 */
export function codingOf(value: string, start: number, end: number): Coding {
  let a = start;
  while (a < end && isOws(value.charCodeAt(a))) a++;
  let b = a;
  while (b < end && value.charCodeAt(b) !== 0x3b) b++;
  while (b > a && isOws(value.charCodeAt(b - 1))) b--;
  if (equalsLower(value, a, b, 'chunked')) return Coding.Chunked;
  if (
    equalsLower(value, a, b, 'gzip') ||
    equalsLower(value, a, b, 'deflate') ||
    equalsLower(value, a, b, 'compress') ||
    equalsLower(value, a, b, 'identity')
  ) {
    return Coding.Other;
  }
  return Coding.Invalid;
}

export function equalsLower(s: string, a: number, b: number, word: string): boolean {
  if (b - a !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (lower(s.charCodeAt(a + i)) !== word.charCodeAt(i)) return false;
  return true;
}

/** Where the digits of a Content-Length value are, or -1 when it is not 1*DIGIT within OWS, or exceeds 2^64 - 1. */
export function contentLengthDigits(value: string): number {
  let a = 0;
  let b = value.length;
  while (a < b && isOws(value.charCodeAt(a))) a++;
  while (b > a && isOws(value.charCodeAt(b - 1))) b--;
  // Empty is not a length (RFC 9110 §8.6 `1*DIGIT`), though the library reads it as 0: a server that
  // forwards an empty Content-Length has been a smuggling bug (HAProxy, CVE-2023-40225).
  if (a === b) return -1;
  for (let i = a; i < b; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
  }
  while (a < b - 1 && value.charCodeAt(a) === 0x30) a++;
  // The library parses into a u64: 18446744073709551616 (2^64) and beyond are Bad.
  if (b - a > U64_MAX.length) return -1;
  if (b - a === U64_MAX.length && value.slice(a, b) > U64_MAX) return -1;
  return a;
}

export const U64_MAX = '18446744073709551615';

/** Whether two valid Content-Length values are the same number, compared as digits (exact past 2^53). */
export function sameLength(x: string, y: string): boolean {
  let a = contentLengthDigits(x);
  let b = contentLengthDigits(y);
  let xe = x.length;
  let ye = y.length;
  while (isOws(x.charCodeAt(xe - 1))) xe--;
  while (isOws(y.charCodeAt(ye - 1))) ye--;
  if (xe - a !== ye - b) return false;
  while (a < xe) if (x.charCodeAt(a++) !== y.charCodeAt(b++)) return false;
  return true;
}

export function isZeroLength(value: string): boolean {
  const a = contentLengthDigits(value);
  return value.charCodeAt(a) === 0x30 && (a + 1 === value.length || isOws(value.charCodeAt(a + 1)));
}

/** A blank version is HTTP/0.9's request line, which has none. */
export function isHttp09(version: string): boolean {
  const [a, b] = owsBounds(version);
  return a === b || version.slice(a, b) === 'HTTP/0.9';
}

export function isHttp10(version: string): boolean {
  const [a, b] = owsBounds(version);
  return b - a === 8 && version.startsWith('HTTP/1.0', a);
}

export function owsBounds(s: string): [number, number] {
  let a = 0;
  let b = s.length;
  while (a < b && isOws(s.charCodeAt(a))) a++;
  while (b > a && isOws(s.charCodeAt(b - 1))) b--;
  return [a, b];
}

/** `s` without the SP and HTAB around it (a field value's OWS, RFC 9110 §5.5); not String.trim, which takes more. */
export function trimOws(s: string): string {
  const [a, b] = owsBounds(s);
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** A header name some reader may take for Transfer-Encoding or Content-Length (`Transfer_Encoding`, ` Content-Length`). */
export function isLookAlikeFramingName(name: string): boolean {
  // Both words and something between them: never shorter than `content-length` (most names are, so this costs them nothing).
  if (name.length < 14) return false;
  return resembles(name, 'transfer', 'encoding') === SIMILAR || resembles(name, 'content', 'length') === SIMILAR;
}

/** Output characters kept of one quoted part, so a message stays a log line (the library caps at 300 bytes). */
export const PART_LIMIT = 120;

/**
 * Quotes bytes for a log line the way the library does: printable ASCII as is, `\r` `\n` `\t` `\\`,
 * and any other byte as `\0xHH` (so `chunked\x11` reads `"chunked\0x11"`).
 */
export function quoteBytes(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    if (out.length >= PART_LIMIT) return `${out}..."`;
    out += escapeByte(s.charCodeAt(i), true);
  }
  return `${out}"`;
}

/**
 * Quotes a value without its content: each run of visible bytes becomes `_`; spaces, `\r`, `\n`,
 * `\t` and other control bytes stay visible, since they are the finding (the library's obfuscation).
 */
export function obscureBytes(s: string): string {
  let out = '"';
  let inRun = false;
  for (let i = 0; i < s.length; i++) {
    if (out.length >= PART_LIMIT) return `${out}..."`;
    const code = s.charCodeAt(i);
    if (code > 0x20 && code !== 0x7f) {
      if (!inRun) out += '_';
      inRun = true;
    } else {
      out += escapeByte(code, false);
      inRun = false;
    }
  }
  return `${out}"`;
}

export function escapeByte(code: number, showPrintable: boolean): string {
  switch (code) {
    case 0x0d:
      return '\\r';
    case 0x0a:
      return '\\n';
    case 0x09:
      return '\\t';
    case 0x5c:
      return '\\\\';
    case 0x20:
      return ' ';
  }
  if (showPrintable && code < 256 && ((CLASS[code] as number) & PRINTABLE) !== 0) return String.fromCharCode(code);
  return `\\0x${code < 16 ? '0' : ''}${code.toString(16)}`;
}
