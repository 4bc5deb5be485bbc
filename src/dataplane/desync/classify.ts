/**
 * The HTTP/1 request classifier behind `routing.http.desync_mitigation_mode`, with the tiers and
 * reasons of AWS's http_desync_guardian (github.com/aws/http-desync-guardian, docs/README.md) so a
 * classification means what it means on an ALB: Compliant, Acceptable (not RFC compliant, no known
 * risk), Ambiguous (servers may frame it differently) and Severe (malformed or crafted).
 *
 * It runs on every request: no exceptions, a few regular expressions compiled once, one small state
 * object per call, and the message is only built for a request that is not Compliant.
 *
 * Precedence is the library's: the worst tier wins, and among findings of that tier the first one
 * found, in this order: the parser's raw defects, then each header in turn (its characters, then its
 * name), then Transfer-Encoding and Content-Length, then method, version and URI. Where ebb is stricter
 * than the library the rule says so and cites RFC 9110/9112.
 */

import {
  TCHAR,
  FIELD_VALUE,
  LINE_BREAKING,
  URI_CHAR,
  classOf,
  isOws,
  SAME,
  SIMILAR,
  DISTANT,
  resembles,
  Coding,
  codingOf,
  contentLengthDigits,
  sameLength,
  isZeroLength,
  isHttp09,
  isHttp10,
  owsBounds,
  quoteBytes,
  obscureBytes,
} from './field-syntax.ts';

export type DesyncTier = 'Compliant' | 'Acceptable' | 'Ambiguous' | 'Severe';

export type DesyncReason =
  | 'Compliant'
  | 'NonCompliantHeader'
  | 'SpaceInUri'
  | 'NonCompliantVersion'
  | 'GetHeadZeroContentLength'
  | 'NonCrLfLineTermination'
  | 'EmptyHeader'
  | 'AmbiguousUri'
  | 'UndefinedContentLengthSemantics'
  | 'UndefinedTransferEncodingSemantics'
  | 'DuplicateContentLength'
  | 'BothTeClPresent'
  | 'SuspiciousHeader'
  | 'MultilineHeader'
  | 'PartialHeaderLine'
  | 'MissingLastEmptyLine'
  | 'MissingHeaderColon'
  | 'MissingUri'
  | 'BadHeader'
  | 'BadUri'
  | 'BadVersion'
  | 'MultipleContentLength'
  | 'BadContentLength'
  | 'MultipleTransferEncodingChunked'
  | 'BadTransferEncoding'
  | 'BadMethod';

export interface DesyncVerdict {
  readonly tier: DesyncTier;
  readonly reason: DesyncReason;
  /** Which part of the request and why; empty for a Compliant request. Bytes escaped as by `quoteBytes`. */
  readonly message: string;
}

/** A request head as the wire carried it: each string is the raw bytes as latin1 (one char per byte). */
export interface RawRequestHead {
  readonly method: string;
  readonly uri: string;
  /** 'HTTP/1.1', 'HTTP/1.0', '' for HTTP/0.9, or whatever the request line said. */
  readonly version: string;
  /** name: the bytes before the colon, as they were (not trimmed); value: the bytes after the colon with leading/trailing SP and HTAB removed. */
  readonly headers: ReadonlyArray<{ readonly name: string; readonly value: string }>;
  /** Defects only a raw parser sees (bare LF line ends, obs-fold, a line without a colon, ...), already classified by the parser; the worst of these and of the headers wins. */
  readonly rawDefects?: ReadonlyArray<DesyncVerdict>;
}

/** The one tier each reason belongs to (http_desync_guardian docs/README.md). */
export const DESYNC_REASON_TIER: Readonly<Record<DesyncReason, DesyncTier>> = Object.freeze({
  Compliant: 'Compliant',
  NonCompliantHeader: 'Acceptable',
  SpaceInUri: 'Acceptable',
  NonCompliantVersion: 'Acceptable',
  GetHeadZeroContentLength: 'Acceptable',
  NonCrLfLineTermination: 'Acceptable',
  EmptyHeader: 'Ambiguous',
  AmbiguousUri: 'Ambiguous',
  UndefinedContentLengthSemantics: 'Ambiguous',
  UndefinedTransferEncodingSemantics: 'Ambiguous',
  DuplicateContentLength: 'Ambiguous',
  BothTeClPresent: 'Ambiguous',
  SuspiciousHeader: 'Ambiguous',
  MultilineHeader: 'Ambiguous',
  PartialHeaderLine: 'Ambiguous',
  MissingLastEmptyLine: 'Ambiguous',
  MissingHeaderColon: 'Ambiguous',
  MissingUri: 'Ambiguous',
  BadHeader: 'Severe',
  BadUri: 'Severe',
  BadVersion: 'Severe',
  MultipleContentLength: 'Severe',
  BadContentLength: 'Severe',
  MultipleTransferEncodingChunked: 'Severe',
  BadTransferEncoding: 'Severe',
  BadMethod: 'Severe',
});

export const DESYNC_TIERS: readonly DesyncTier[] = Object.freeze(['Compliant', 'Acceptable', 'Ambiguous', 'Severe']);
export const DESYNC_REASONS: readonly DesyncReason[] = Object.freeze(Object.keys(DESYNC_REASON_TIER) as DesyncReason[]);

/** Orders tiers: Compliant 0 < Acceptable 1 < Ambiguous 2 < Severe 3. */
export function tierRank(t: DesyncTier): number {
  switch (t) {
    case 'Compliant':
      return COMPLIANT;
    case 'Acceptable':
      return ACCEPTABLE;
    case 'Ambiguous':
      return AMBIGUOUS;
    case 'Severe':
      return SEVERE;
  }
}

const COMPLIANT = 0;
const ACCEPTABLE = 1;
const AMBIGUOUS = 2;
const SEVERE = 3;

const COMPLIANT_VERDICT: DesyncVerdict = Object.freeze({ tier: 'Compliant', reason: 'Compliant', message: '' });

// ---------------------------------------------------------------------------------------------
// Findings. The state keeps the first finding of the worst tier and enough to word it later.

/** How the message of a finding is worded. */
const enum Subject {
  RawDefect,
  /** A header, its value printed in full (a framing header: its value is what matters). */
  HeaderShown,
  /** A header, its value reduced to its offending bytes (any other header may carry secrets). */
  HeaderHidden,
  /** The request line's version, with the framing header it cannot carry. */
  VersionFraming,
  /** The method, with the framing header it has no use for. */
  MethodFraming,
  Method,
  Version,
  Uri,
}

interface State {
  tier: number;
  reason: DesyncReason;
  subject: Subject;
  /** Index into headers or rawDefects, per subject. */
  index: number;
  /** Why, in words; a constant. */
  why: string;
}

function note(s: State, tier: number, reason: DesyncReason, subject: Subject, index: number, why: string): void {
  // Written so a rank that is not a number (a caller's bad rawDefects tier) changes nothing.
  if (!(tier > s.tier)) return;
  s.tier = tier;
  s.reason = reason;
  s.subject = subject;
  s.index = index;
  s.why = why;
}

/** Classifies one request head. Never throws; a Compliant request costs no message. */
export function classifyRequest(head: RawRequestHead): DesyncVerdict {
  const s: State = { tier: COMPLIANT, reason: 'Compliant', subject: Subject.RawDefect, index: -1, why: '' };

  const defects = head.rawDefects;
  if (defects !== undefined) {
    for (let i = 0; i < defects.length; i++) {
      const d = defects[i] as DesyncVerdict;
      note(s, tierRank(d.tier), d.reason, Subject.RawDefect, i, '');
    }
  }

  const headers = head.headers;
  // Indexes of the headers that frame the body, or look as if they might; allocated only when seen.
  let te: number[] | null = null;
  let cl: number[] | null = null;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i] as { readonly name: string; readonly value: string };
    const name = h.name;
    const chars = fieldCharacters(name, h.value);
    if (chars === SEVERE) note(s, SEVERE, 'BadHeader', Subject.HeaderHidden, i, 'contains CR, LF or NUL');
    else if (chars === ACCEPTABLE) {
      note(s, ACCEPTABLE, 'NonCompliantHeader', Subject.HeaderHidden, i, 'has characters RFC 9110 does not allow in a field');
    }

    if (isEmptyName(name)) {
      note(s, AMBIGUOUS, 'EmptyHeader', Subject.HeaderHidden, i, 'has an empty name');
      continue;
    }
    const teLike = resembles(name, 'transfer', 'encoding');
    const clLike = teLike === DISTANT ? resembles(name, 'content', 'length') : DISTANT;
    if (teLike === SAME) (te ??= []).push(i);
    else if (clLike === SAME) (cl ??= []).push(i);
    else if (chars !== SEVERE && teLike === SIMILAR) {
      // Some servers and proxies fold such a name onto the real one (trimming, `_` for `-`, Unicode
      // case mapping), so it frames the body for them and not for others; it counts as one here.
      note(s, AMBIGUOUS, 'SuspiciousHeader', Subject.HeaderShown, i, 'is too close to "Transfer-Encoding"');
      (te ??= []).push(i);
    } else if (chars !== SEVERE && clLike === SIMILAR) {
      note(s, AMBIGUOUS, 'SuspiciousHeader', Subject.HeaderShown, i, 'is too close to "Content-Length"');
      (cl ??= []).push(i);
    }
  }

  if (te !== null || cl !== null) checkFraming(s, head, te, cl);
  checkMethod(s, head.method);
  checkVersion(s, head.version);
  checkUri(s, head.uri);

  if (s.tier === COMPLIANT) return COMPLIANT_VERDICT;
  return { tier: DESYNC_TIERS[s.tier] as DesyncTier, reason: s.reason, message: wordFinding(s, head) };
}

// Fast paths: one native scan finds whether a string holds any byte outside its grammar at all, so
// the per-byte loops below only run for the rare request that does. Compiled once, no `g` flag, so
// they keep no state between calls.
const OUTSIDE_TOKEN = /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const OUTSIDE_FIELD_VALUE = /[^\t\x20-\x7e\x80-\uffff]/;
const OUTSIDE_URI = /[^\x21-\x7e\x80-\uffff]/;

/** The library's header tier: CR/LF/NUL anywhere is Severe; another byte outside the grammar, Acceptable. */
function fieldCharacters(name: string, value: string): number {
  if (!OUTSIDE_TOKEN.test(name) && !OUTSIDE_FIELD_VALUE.test(value)) return COMPLIANT;
  let worst = COMPLIANT;
  for (let i = 0; i < name.length; i++) {
    const c = classOf(name.charCodeAt(i));
    if ((c & TCHAR) === 0) {
      if ((c & LINE_BREAKING) !== 0) return SEVERE;
      worst = ACCEPTABLE;
    }
  }
  for (let i = 0; i < value.length; i++) {
    const c = classOf(value.charCodeAt(i));
    if ((c & FIELD_VALUE) === 0) {
      if ((c & LINE_BREAKING) !== 0) return SEVERE;
      worst = ACCEPTABLE;
    }
  }
  return worst;
}

/** A name of only whitespace, or one starting with `:` (an empty name before a colon). */
function isEmptyName(name: string): boolean {
  let i = 0;
  while (i < name.length && isOws(name.charCodeAt(i))) i++;
  return i === name.length || name.charCodeAt(i) === 0x3a;
}

function checkFraming(s: State, head: RawRequestHead, te: readonly number[] | null, cl: readonly number[] | null): void {
  const headers = head.headers;
  // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding must be treated as if its framing is
  // faulty; HTTP/0.9 has no headers at all. The library stops here; ebb goes on to check the values,
  // so a bad coding is Severe whatever the version.
  if (te !== null && (isHttp09(head.version) || isHttp10(head.version))) {
    note(s, AMBIGUOUS, 'UndefinedTransferEncodingSemantics', Subject.VersionFraming, 0, 'Transfer-Encoding');
  } else if (cl !== null && isHttp09(head.version)) {
    note(s, AMBIGUOUS, 'UndefinedContentLengthSemantics', Subject.VersionFraming, 0, 'Content-Length');
  }

  let chunked = false;
  if (te !== null) {
    let lastIsChunked = false;
    let lastHeader = -1;
    for (const i of te) {
      const value = (headers[i] as { readonly value: string }).value;
      let start = 0;
      while (start <= value.length) {
        let end = value.indexOf(',', start);
        if (end < 0) end = value.length;
        const coding = codingOf(value, start, end);
        if (coding === Coding.Invalid) {
          note(s, SEVERE, 'BadTransferEncoding', Subject.HeaderShown, i, 'names a transfer coding that is not chunked, gzip, deflate, compress or identity');
        } else if (coding === Coding.Chunked && chunked) {
          // RFC 9112 §7: a sender MUST NOT apply chunked more than once.
          note(s, SEVERE, 'MultipleTransferEncodingChunked', Subject.HeaderShown, i, 'applies chunked a second time');
        }
        if (coding === Coding.Chunked) chunked = true;
        lastIsChunked = coding === Coding.Chunked;
        lastHeader = i;
        start = end + 1;
      }
    }
    // RFC 9112 §6.3: a request whose final coding is not chunked has no reliable length, and
    // `chunked, gzip` is how a request gets read as chunked by one server and not by the next.
    // The library does not look at the order; ebb does.
    if (chunked && !lastIsChunked) {
      note(s, SEVERE, 'BadTransferEncoding', Subject.HeaderShown, lastHeader, 'has a coding after chunked, which must be the final coding');
    }
  }

  let length = -1;
  if (cl !== null) {
    for (const i of cl) {
      const value = (headers[i] as { readonly value: string }).value;
      if (contentLengthDigits(value) < 0) {
        note(s, SEVERE, 'BadContentLength', Subject.HeaderShown, i, 'is not a decimal length below 2^64');
      } else if (length < 0) {
        length = i;
      } else if (sameLength((headers[length] as { readonly value: string }).value, value)) {
        note(s, AMBIGUOUS, 'DuplicateContentLength', Subject.HeaderShown, i, 'repeats the Content-Length');
      } else {
        note(s, SEVERE, 'MultipleContentLength', Subject.HeaderShown, i, 'differs from an earlier Content-Length');
      }
    }
  }

  // RFC 9110 §9.3.1/§9.3.2: content in a GET or HEAD request has no defined semantics.
  const method = head.method;
  if (method === 'GET' || method === 'HEAD') {
    if (te !== null) note(s, AMBIGUOUS, 'UndefinedTransferEncodingSemantics', Subject.MethodFraming, -1, 'Transfer-Encoding');
    if (length >= 0) {
      const value = (headers[length] as { readonly value: string }).value;
      if (isZeroLength(value)) note(s, ACCEPTABLE, 'GetHeadZeroContentLength', Subject.MethodFraming, length, 'Content-Length');
      else note(s, AMBIGUOUS, 'UndefinedContentLengthSemantics', Subject.MethodFraming, length, 'Content-Length');
    }
  }

  if (te !== null && length >= 0) {
    note(s, AMBIGUOUS, 'BothTeClPresent', Subject.HeaderShown, (cl as readonly number[])[0] as number, 'comes with Transfer-Encoding, which overrides it');
  }
  // RFC 9112 §6.3: Transfer-Encoding without chunked leaves a request's length undefined (the server
  // MUST answer 400). The library lets it pass; with a Content-Length beside it the library's
  // BothTeClPresent above already holds the tier, which the corpus pins.
  if (te !== null && !chunked) {
    note(s, AMBIGUOUS, 'UndefinedTransferEncodingSemantics', Subject.HeaderShown, te[0] as number, 'does not end in chunked, so the request has no defined length');
  }
}

// ---------------------------------------------------------------------------------------------
// The request line.

function checkMethod(s: State, method: string): void {
  // RFC 9110 §9.1: method = token, so at least one tchar.
  if (method.length === 0) {
    note(s, SEVERE, 'BadMethod', Subject.Method, -1, 'is empty');
    return;
  }
  for (let i = 0; i < method.length; i++) {
    if ((classOf(method.charCodeAt(i)) & TCHAR) === 0) {
      note(s, SEVERE, 'BadMethod', Subject.Method, -1, 'is not an RFC 9110 token');
      return;
    }
  }
}

/**
 * HTTP/1.0 and HTTP/1.1 are compliant; HTTP/0.9 (no version), HTTP/1.2 to HTTP/1.9 and a version
 * with spaces or tabs around it are Acceptable; anything else is Severe. The library passes
 * anything from `HTTP/2` up because it also sees HTTP/2 requests; this function sees only HTTP/1
 * request lines, where `HTTP/2.0` is not a version a server can speak (RFC 9112 §2.3, 505).
 */
function checkVersion(s: State, version: string): void {
  if (version === 'HTTP/1.1' || version === 'HTTP/1.0') return;
  const [a, b] = owsBounds(version);
  if (a === b || (b - a === 8 && version.startsWith('HTTP/0.9', a))) {
    note(s, ACCEPTABLE, 'NonCompliantVersion', Subject.Version, -1, 'is HTTP/0.9, which no RFC defines');
    return;
  }
  const minor = version.charCodeAt(a + 7);
  if (b - a !== 8 || !version.startsWith('HTTP/1.', a) || minor < 0x30 || minor > 0x39) {
    note(s, SEVERE, 'BadVersion', Subject.Version, -1, 'is not HTTP/1.x');
  } else if (a !== 0 || b !== version.length) {
    note(s, ACCEPTABLE, 'NonCompliantVersion', Subject.Version, -1, 'has whitespace around it');
  } else if (minor > 0x31) {
    note(s, ACCEPTABLE, 'NonCompliantVersion', Subject.Version, -1, 'is a minor version no RFC defines');
  }
}

/** CR, LF, NUL: Severe (they split the request line); a space: Acceptable; other control bytes: Ambiguous. */
function checkUri(s: State, uri: string): void {
  if (!OUTSIDE_URI.test(uri)) return;
  for (let i = 0; i < uri.length; i++) {
    const code = uri.charCodeAt(i);
    const c = classOf(code);
    if ((c & URI_CHAR) !== 0) continue;
    if ((c & LINE_BREAKING) !== 0) {
      note(s, SEVERE, 'BadUri', Subject.Uri, -1, 'contains CR, LF or NUL');
      return;
    }
    if (code === 0x20) note(s, ACCEPTABLE, 'SpaceInUri', Subject.Uri, -1, 'contains an unescaped space');
    else note(s, AMBIGUOUS, 'AmbiguousUri', Subject.Uri, -1, 'contains a control character');
  }
}

// ---------------------------------------------------------------------------------------------
// Messages.


function wordFinding(s: State, head: RawRequestHead): string {
  const r = s.reason;
  switch (s.subject) {
    case Subject.RawDefect:
      return (head.rawDefects?.[s.index] as DesyncVerdict).message;
    case Subject.HeaderShown:
    case Subject.HeaderHidden: {
      const h = head.headers[s.index] as { readonly name: string; readonly value: string };
      const value = s.subject === Subject.HeaderShown ? quoteBytes(h.value) : obscureBytes(h.value);
      return `${r}: header ${quoteBytes(h.name)}: ${value} ${s.why}`;
    }
    case Subject.VersionFraming: {
      const version = isHttp09(head.version) ? 'HTTP/0.9' : head.version;
      return `${r}: ${s.why} in an ${quoteBytes(version)} request, whose framing it leaves undefined`;
    }
    case Subject.MethodFraming: {
      const h = head.headers[s.index];
      const value = h === undefined ? '' : `: ${quoteBytes(h.value)}`;
      return `${r}: ${s.why}${value} on a ${quoteBytes(head.method)} request, whose content has no defined meaning`;
    }
    case Subject.Method:
      return `${r}: method ${quoteBytes(head.method)} ${s.why}`;
    case Subject.Version:
      return `${r}: HTTP version ${quoteBytes(head.version)} ${s.why}`;
    case Subject.Uri:
      return `${r}: URI ${obscureBytes(head.uri)} ${s.why}`;
  }
}
