/**
 * The body framing a strict HTTP/1.1 reader gives a request head (RFC 9112 §6.3): what ebb frames a
 * forwarded request by, whatever the classifier says of it.
 */
import type { RawRequestHead } from './classify.ts';
import {
  SAME,
  resembles,
  Coding,
  codingOf,
  contentLengthDigits,
  sameLength,
  owsBounds,
} from './field-syntax.ts';

/** How a request's body is delimited, read from its exact framing headers (RFC 9112 §6.3). */
export type BodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  /**
   * Chunked is the final coding, applied once; any Content-Length must be removed before forwarding
   * (RFC 9112 §6.3). `codings`: the codings applied before it (`gzip`, `deflate`, `compress`; identity
   * left out), lower-cased and comma-separated, '' for none: the body's bytes are still coded by them,
   * so they are forwarded with it.
   */
  | { readonly kind: 'chunked'; readonly codings: string }
  /** No reader can know where the body ends: a bad or non-final chunked coding, or disagreeing lengths. */
  | { readonly kind: 'unframeable' };

const NO_BODY: BodyFraming = Object.freeze({ kind: 'none' });
const CHUNKED_BODY: BodyFraming = Object.freeze({ kind: 'chunked', codings: '' });
const UNFRAMEABLE: BodyFraming = Object.freeze({ kind: 'unframeable' });

/**
 * The body framing a strict HTTP/1.1 reader gives `head`: Transfer-Encoding first, then
 * Content-Length. Only headers named exactly (in any case) count; a look-alike name is for the
 * classifier to report. A length above 2^53 - 1 is unframeable here, as no Node reader can count it.
 */
export function bodyFraming(head: RawRequestHead): BodyFraming {
  let sawTe = false;
  let chunked = false;
  let lastIsChunked = false;
  let length: string | null = null;
  let codings = '';
  for (const h of head.headers) {
    if (resembles(h.name, 'transfer', 'encoding') === SAME) {
      sawTe = true;
      let start = 0;
      while (start <= h.value.length) {
        let end = h.value.indexOf(',', start);
        if (end < 0) end = h.value.length;
        const coding = codingOf(h.value, start, end);
        if (coding === Coding.Invalid || (coding === Coding.Chunked && chunked)) return UNFRAMEABLE;
        if (coding === Coding.Chunked) chunked = true;
        else if (coding === Coding.Other) {
          const name = codingName(h.value, start, end);
          if (name !== 'identity') codings = codings === '' ? name : `${codings}, ${name}`;
        }
        lastIsChunked = coding === Coding.Chunked;
        start = end + 1;
      }
    } else if (resembles(h.name, 'content', 'length') === SAME) {
      if (contentLengthDigits(h.value) < 0) return UNFRAMEABLE;
      if (length === null) length = h.value;
      else if (!sameLength(length, h.value)) return UNFRAMEABLE;
    }
  }
  if (sawTe) return !lastIsChunked ? UNFRAMEABLE : codings === '' ? CHUNKED_BODY : { kind: 'chunked', codings };
  if (length === null) return NO_BODY;
  const n = Number(length.slice(contentLengthDigits(length), owsBounds(length)[1]));
  return Number.isSafeInteger(n) ? { kind: 'length', length: n } : UNFRAMEABLE;
}

/** The name of the coding in `value[start, end)`, lower-cased, without OWS or parameters (rare: only a request coded before chunked). */
function codingName(value: string, start: number, end: number): string {
  const semi = value.indexOf(';', start);
  return value.slice(start, semi >= 0 && semi < end ? semi : end).trim().toLowerCase();
}
