import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { DESYNC_REASONS, DESYNC_TIERS } from './classify.ts';
import { bodyFraming } from './framing.ts';
import type { DesyncReason, DesyncTier, RawRequestHead } from './classify.ts';

/**
 * The http_desync_guardian test corpus (github.com/aws/http-desync-guardian `tests/*.yaml`,
 * Apache-2.0), loaded as typed cases for the classifier's test and for end-to-end tests that send
 * each case over a socket. The format is described in the corpus's own README.md.
 *
 * Strings come back as latin1 byte strings (one char per byte), the form `RawRequestHead` takes:
 * a YAML escape such as "\x01" or "\xa0" is that byte, and literal non-Latin-1 text in the files
 * (`ſ`, `―`, Cyrillic) is its UTF-8 bytes, as a client would send it.
 *
 * The library's own harness (src/request_analyzer.rs, `unescape_value`) unescapes every string once
 * more after YAML has: `\xHH`, `\n`, `\r`, `\t`, `\b`, `\f`, and a backslash before any other
 * character stands for that character. The corpus is written for that, so this loader does the same:
 * `"chunked\\\\0x11"` is the 12 characters `chunked\0x11` (the escaped form messages use), and the
 * unquoted URI `/foo/bar\t/baz` holds a tab.
 */

export type CorpusHeaderTier = 'Compliant' | 'NonCompliant' | 'Bad';

export interface CorpusHeader {
  readonly name: string;
  readonly value: string;
  /** The header's own tier in the library's terms; the classifier does not read it. */
  readonly tier: CorpusHeaderTier;
}

export interface CorpusCase {
  /** The file's base name, e.g. `severe.yaml`. */
  readonly file: string;
  /** Position in the file, from 0. */
  readonly index: number;
  readonly name: string;
  readonly method: string;
  readonly uri: string;
  readonly version: string;
  readonly headers: readonly CorpusHeader[];
  readonly expected: {
    readonly tier: DesyncTier;
    readonly reason: DesyncReason;
    /** Substrings the message must contain, with non-printable bytes written as `quoteBytes` writes them. */
    readonly requiredMessageItems: readonly string[];
  };
}

/** `<repo>/../shared/corpus/http-desync-guardian`: this file is `<repo>/src/dataplane/desync/` (or `<repo>/dist/dataplane/desync/` built). */
export function corpusDirectory(): string {
  return fileURLToPath(new URL('../../../../shared/corpus/http-desync-guardian/', import.meta.url));
}

/** The corpus's `.yaml` files, by base name, sorted. */
export function corpusFiles(dir: string = corpusDirectory()): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
}

/** Every case of every file in `dir`, file by file. Throws, naming the file and case, on a malformed case. */
export function loadCorpus(dir: string = corpusDirectory()): CorpusCase[] {
  return corpusFiles(dir).flatMap((f) => loadCorpusFile(join(dir, f)));
}

/** YAML reads `value: 1000` as a number; the corpus means the text. */
const text = z.union([z.string(), z.number()]).transform((v) => (typeof v === 'number' ? String(v) : wireBytes(unescapeAgain(v))));

const caseSchema = z.object({
  name: z.string(),
  method: text,
  uri: text,
  version: text,
  headers: z
    .array(z.object({ name: text, value: text, tier: z.enum(['Compliant', 'NonCompliant', 'Bad']) }))
    .nullish()
    .transform((h) => h ?? []),
  expected: z.object({
    tier: z.enum(DESYNC_TIERS as [DesyncTier, ...DesyncTier[]]),
    reason: z.enum(DESYNC_REASONS as [DesyncReason, ...DesyncReason[]]),
    required_message_items: z
      .array(text)
      .nullish()
      .transform((m) => m ?? []),
  }),
});

/** The cases of one corpus file. */
export function loadCorpusFile(path: string): CorpusCase[] {
  const file = basename(path);
  const doc: unknown = parse(readFileSync(path, 'utf8'));
  if (!Array.isArray(doc)) throw new Error(`${file}: expected a list of cases`);
  return doc.map((raw: unknown, index): CorpusCase => {
    const parsed = caseSchema.safeParse(raw);
    if (!parsed.success) throw new Error(`${file} case ${index}: ${z.prettifyError(parsed.error)}`);
    const c = parsed.data;
    return {
      file,
      index,
      name: c.name,
      method: c.method,
      uri: c.uri,
      version: c.version,
      headers: c.headers,
      expected: { tier: c.expected.tier, reason: c.expected.reason, requiredMessageItems: c.expected.required_message_items },
    };
  });
}

/** The library harness's second unescaping pass (see the module comment). */
function unescapeAgain(s: string): string {
  if (!s.includes('\\')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] as string;
    if (ch !== '\\' || i + 1 === s.length) {
      out += ch;
      continue;
    }
    const next = s[++i] as string;
    switch (next) {
      case 'x':
        out += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
        i += 2;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      default:
        out += next;
    }
  }
  return out;
}

/** Code points up to U+00FF are one byte each (YAML's `\xHH`); anything above is its UTF-8 bytes. */
function wireBytes(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    out += cp <= 0xff ? ch : Buffer.from(ch, 'utf8').toString('latin1');
  }
  return out;
}

/** A case as the classifier takes it. */
export function requestHeadOf(c: CorpusCase): RawRequestHead {
  return { method: c.method, uri: c.uri, version: c.version, headers: c.headers };
}

export interface RenderOptions {
  /** A Content-Length body longer than this is left out (default 8 MiB). */
  readonly maxBodyBytes?: number;
}

/** Only SP and HTAB (not String.trim's Unicode spaces): what HTTP calls whitespace. */
function isBlank(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s[i] !== ' ' && s[i] !== '\t') return false;
  return true;
}

/** The content of the one chunk a chunked body gets. */
const CHUNK = 'ebb-desync-corpus';

/**
 * The request as bytes on the wire: `METHOD URI VERSION\r\n`, each header as `name: value\r\n`, a
 * blank line, then a body a server can frame: one chunk and the last chunk when the final coding is
 * chunked (also beside a Content-Length, which chunked overrides, RFC 9112 §6.3), or as many bytes as
 * an agreed Content-Length says. When the framing is what is wrong (a bad coding, lengths that
 * differ), no body is sent. A blank version is HTTP/0.9, whose request is the one line
 * `METHOD URI\r\n`; a version that says `HTTP/0.9` is sent as written, with its headers.
 */
export function renderRequest(head: RawRequestHead, options: RenderOptions = {}): Buffer {
  if (isBlank(head.version)) return Buffer.from(`${head.method} ${head.uri}\r\n`, 'latin1');
  let out = `${head.method} ${head.uri} ${head.version}\r\n`;
  // A value that ends in CR LF (a case written as if its line end were part of it) is sent with that
  // CR LF as its line end: a second one would end the head there.
  for (const h of head.headers) out += `${h.name}: ${h.value.endsWith('\r\n') ? h.value.slice(0, -2) : h.value}\r\n`;
  out += '\r\n';
  const framing = bodyFraming(head);
  if (framing.kind === 'chunked') out += `${CHUNK.length.toString(16)}\r\n${CHUNK}\r\n0\r\n\r\n`;
  else if (framing.kind === 'length' && framing.length <= (options.maxBodyBytes ?? 8 * 1024 * 1024)) {
    out += 'x'.repeat(framing.length);
  }
  return Buffer.from(out, 'latin1');
}
