import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyRequest, DESYNC_REASON_TIER, DESYNC_TIERS, tierRank } from './classify.ts';
import { quoteBytes } from './field-syntax.ts';
import { bodyFraming } from './framing.ts';
import type { DesyncReason, DesyncTier, DesyncVerdict, RawRequestHead } from './classify.ts';
import { corpusFiles, loadCorpus, renderRequest, requestHeadOf } from './corpus.ts';
import type { CorpusCase } from './corpus.ts';
import { prng } from '../../../test/support/random.ts';

const corpus = loadCorpus();

// ---------------------------------------------------------------------------------------------
// The http_desync_guardian corpus: every case, tier, reason and message items. No case is skipped.

function mismatch(c: CorpusCase): string | null {
  const v = classifyRequest(requestHeadOf(c));
  const missing = c.expected.requiredMessageItems.filter((item) => !v.message.includes(item));
  if (v.tier === c.expected.tier && v.reason === c.expected.reason && missing.length === 0) return null;
  return [
    `#${c.index} ${c.name}`,
    `expected ${c.expected.tier}/${c.expected.reason}`,
    `got ${v.tier}/${v.reason}`,
    missing.length > 0 ? `message lacks ${missing.map((m) => JSON.stringify(m)).join(', ')}` : '',
    `message: ${v.message}`,
  ].join(' | ');
}

test('the corpus has its nine files and 158 cases', () => {
  assert.equal(corpusFiles().length, 9);
  assert.equal(corpus.length, 158);
});

for (const file of corpusFiles()) {
  test(`corpus ${file}: each case gets the expected tier, reason and message items`, () => {
    const cases = corpus.filter((c) => c.file === file);
    assert.ok(cases.length > 0);
    const rows = cases.map(mismatch).filter((row) => row !== null);
    assert.equal(rows.length, 0, `${rows.length}/${cases.length} cases differ:\n${rows.join('\n')}`);
  });
}

test('the loader turns YAML into wire bytes the way the library harness reads the files', () => {
  const byName = (file: string, name: string): CorpusCase => {
    const c = corpus.find((x) => x.file === file && x.name === name);
    assert.ok(c, `${file}: ${name}`);
    return c;
  };
  const longS = byName('ambiguous.yaml', 'Transfer-Encoding Latin Small Letter Long S');
  assert.equal(longS.headers[0]?.name, 'Tran\xc5\xbffer-Encoding'); // `ſ` as its UTF-8 bytes
  const x01 = byName('ambiguous.yaml', '\\x01Transfer-Encoding with a non-printable character');
  assert.equal(x01.headers[0]?.name, '\x01Transfer-Encoding');
  const numeric = byName('severe.yaml', 'Multiple Content-Length');
  assert.deepEqual(numeric.headers.map((h) => h.value), ['1000', '100']);
  const escaped = byName('severe.yaml', 'Bad character in Transfer-Encoding value: chunked\\x11');
  assert.deepEqual(escaped.expected.requiredMessageItems, ['Transfer-Encoding', 'chunked\\0x11']);
  const tab = byName('edge-cases.yaml', 'Bad URI does not shadow essential ambiguous headers');
  assert.equal(tab.uri, '/foo/bar\t/baz');
  const cyrillic = byName('rfc-compliant.yaml', 'International in URI');
  assert.equal(cyrillic.uri.slice(0, 3), '/\xd1\x81');
  assert.equal(byName('rfc-compliant.yaml', 'No headers').headers.length, 0);
});

// ---------------------------------------------------------------------------------------------
// Edges the corpus does not cover.

function req(headers: ReadonlyArray<readonly [string, string]>, method = 'POST', version = 'HTTP/1.1', uri = '/p'): RawRequestHead {
  return { method, uri, version, headers: headers.map(([name, value]) => ({ name, value })) };
}

interface Edge {
  readonly name: string;
  readonly head: RawRequestHead;
  readonly tier: DesyncTier;
  readonly reason: DesyncReason;
  readonly says?: string;
}

const EDGES: readonly Edge[] = [
  { name: 'Content-Length 2^64 overflows', head: req([['Content-Length', '18446744073709551616']]), tier: 'Severe', reason: 'BadContentLength' },
  { name: 'Content-Length 2^64 - 1 is a length', head: req([['Content-Length', '18446744073709551615']]), tier: 'Compliant', reason: 'Compliant' },
  {
    name: 'leading zeros do not count towards the overflow',
    head: req([['Content-Length', '000000000018446744073709551615']]),
    tier: 'Compliant',
    reason: 'Compliant',
  },
  { name: 'Content-Length with a sign', head: req([['Content-Length', '+5']]), tier: 'Severe', reason: 'BadContentLength' },
  { name: 'negative Content-Length', head: req([['Content-Length', '-1']]), tier: 'Severe', reason: 'BadContentLength' },
  { name: 'hex Content-Length', head: req([['Content-Length', '0x10']]), tier: 'Severe', reason: 'BadContentLength' },
  { name: 'empty Content-Length (the library reads 0)', head: req([['Content-Length', '']]), tier: 'Severe', reason: 'BadContentLength' },
  { name: 'Content-Length with OWS around it', head: req([['Content-Length', '\t5 ']]), tier: 'Compliant', reason: 'Compliant' },
  { name: '5 and 005 are one length', head: req([['Content-Length', '5'], ['Content-Length', '005']]), tier: 'Ambiguous', reason: 'DuplicateContentLength' },
  {
    name: 'lengths past 2^53 are compared exactly',
    head: req([['Content-Length', '18446744073709551615'], ['Content-Length', '18446744073709551614']]),
    tier: 'Severe',
    reason: 'MultipleContentLength',
  },
  { name: 'chunked, chunked', head: req([['Transfer-Encoding', 'chunked, chunked']]), tier: 'Severe', reason: 'MultipleTransferEncodingChunked' },
  {
    name: 'chunked twice with a coding between (the library compares neighbours only)',
    head: req([['Transfer-Encoding', 'chunked, gzip, chunked']]),
    tier: 'Severe',
    reason: 'MultipleTransferEncodingChunked',
  },
  { name: 'gzip, chunked', head: req([['Transfer-Encoding', 'gzip, chunked']]), tier: 'Compliant', reason: 'Compliant' },
  { name: 'any case of the coding and the name', head: req([['transfer-ENCODING', 'CHUNKED']]), tier: 'Compliant', reason: 'Compliant' },
  {
    name: 'chunked, gzip: chunked is not final',
    head: req([['Transfer-Encoding', 'chunked, gzip']]),
    tier: 'Severe',
    reason: 'BadTransferEncoding',
    says: 'after chunked',
  },
  {
    name: 'chunked then gzip in two headers',
    head: req([['Transfer-Encoding', 'chunked'], ['Transfer-Encoding', 'gzip']]),
    tier: 'Severe',
    reason: 'BadTransferEncoding',
  },
  {
    name: 'gzip alone leaves the length undefined',
    head: req([['Transfer-Encoding', 'gzip']]),
    tier: 'Ambiguous',
    reason: 'UndefinedTransferEncodingSemantics',
    says: 'does not end in chunked',
  },
  { name: 'gzip beside a Content-Length', head: req([['Transfer-Encoding', 'gzip'], ['Content-Length', '5']]), tier: 'Ambiguous', reason: 'BothTeClPresent' },
  { name: 'an empty list element', head: req([['Transfer-Encoding', 'chunked,']]), tier: 'Severe', reason: 'BadTransferEncoding' },
  { name: 'x-gzip is not a coding here', head: req([['Transfer-Encoding', 'x-gzip, chunked']]), tier: 'Severe', reason: 'BadTransferEncoding' },
  {
    name: 'a bad coding on HTTP/1.0 is still Severe (the library stops at Ambiguous)',
    head: req([['Transfer-Encoding', 'xchunked']], 'POST', 'HTTP/1.0'),
    tier: 'Severe',
    reason: 'BadTransferEncoding',
  },
  {
    name: 'Content-Length on HTTP/1.0 is fine',
    head: req([['Content-Length', '5']], 'POST', 'HTTP/1.0'),
    tier: 'Compliant',
    reason: 'Compliant',
  },
  { name: 'TransferEncoding without a separator is another name', head: req([['TransferEncoding', 'chunked']]), tier: 'Compliant', reason: 'Compliant' },
  { name: 'X-Transfer-Encoding is another name', head: req([['X-Transfer-Encoding', 'chunked']]), tier: 'Compliant', reason: 'Compliant' },
  { name: 'Content-Type is another name', head: req([['Content-Type', 'text/plain']]), tier: 'Compliant', reason: 'Compliant' },
  { name: 'Content-Lengths is another name', head: req([['Content-Lengths', '5']]), tier: 'Compliant', reason: 'Compliant' },
  { name: 'Content.Length', head: req([['Content.Length', '5']]), tier: 'Ambiguous', reason: 'SuspiciousHeader', says: '"Content.Length"' },
  {
    name: 'a control byte inside a word',
    head: req([['Trans\x01fer-Encoding', 'chunked']]),
    tier: 'Ambiguous',
    reason: 'SuspiciousHeader',
    says: 'Trans\\0x01fer',
  },
  {
    name: 'a look-alike beside the real Content-Length with another value',
    head: req([['Content_Length', '5'], ['Content-Length', '6']]),
    tier: 'Severe',
    reason: 'MultipleContentLength',
  },
  { name: 'HTTP/2.0 on an HTTP/1 request line', head: req([], 'GET', 'HTTP/2.0'), tier: 'Severe', reason: 'BadVersion' },
  { name: 'lower-case version', head: req([], 'GET', 'http/1.1'), tier: 'Severe', reason: 'BadVersion' },
  { name: 'HTTP/1.10', head: req([], 'GET', 'HTTP/1.10'), tier: 'Severe', reason: 'BadVersion' },
  { name: 'a tab before the version', head: req([], 'GET', '\tHTTP/1.1'), tier: 'Acceptable', reason: 'NonCompliantVersion' },
  { name: 'empty method', head: req([], ''), tier: 'Severe', reason: 'BadMethod' },
  {
    name: 'methods are case-sensitive: get is not GET',
    head: req([['Content-Length', '5']], 'get'),
    tier: 'Compliant',
    reason: 'Compliant',
  },
  {
    name: 'HEAD with chunked',
    head: req([['Transfer-Encoding', 'gzip, chunked']], 'HEAD'),
    tier: 'Ambiguous',
    reason: 'UndefinedTransferEncodingSemantics',
    says: '"HEAD"',
  },
  { name: 'GET with Content-Length 000', head: req([['Content-Length', '000']], 'GET'), tier: 'Acceptable', reason: 'GetHeadZeroContentLength' },
  { name: 'DEL in the URI', head: req([], 'GET', 'HTTP/1.1', '/a\x7fb'), tier: 'Ambiguous', reason: 'AmbiguousUri' },
  { name: 'obs-text in the URI', head: req([], 'GET', 'HTTP/1.1', '/caf\xc3\xa9'), tier: 'Compliant', reason: 'Compliant' },
  { name: 'asterisk-form', head: req([], 'OPTIONS', 'HTTP/1.1', '*'), tier: 'Compliant', reason: 'Compliant' },
];

for (const e of EDGES) {
  test(`edge: ${e.name}`, () => {
    const v = classifyRequest(e.head);
    assert.deepEqual([v.tier, v.reason], [e.tier, e.reason], v.message);
    if (e.says !== undefined) assert.ok(v.message.includes(e.says), v.message);
  });
}

test('every byte in a name, a value and a URI gets the tier RFC 9110 grammar and the library give it', () => {
  const lineBreaking = (b: number): boolean => b === 0x00 || b === 0x0a || b === 0x0d;
  const tchar = (b: number): boolean => /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(String.fromCharCode(b));
  const fieldValue = (b: number): boolean => b === 0x09 || (b >= 0x20 && b <= 0x7e) || b >= 0x80;
  const expect = (ok: boolean, b: number, bad: DesyncReason, odd: DesyncReason): DesyncReason => (ok ? 'Compliant' : lineBreaking(b) ? bad : odd);
  for (let b = 0; b < 256; b++) {
    const ch = String.fromCharCode(b);
    const hex = b.toString(16);
    const inName = classifyRequest(req([[`X-${ch}A`, 'v']])).reason;
    assert.equal(inName, expect(tchar(b), b, 'BadHeader', 'NonCompliantHeader'), `name byte 0x${hex}`);
    const inValue = classifyRequest(req([['X-A', `v${ch}v`]])).reason;
    assert.equal(inValue, expect(fieldValue(b), b, 'BadHeader', 'NonCompliantHeader'), `value byte 0x${hex}`);
    const inUri = classifyRequest(req([], 'GET', 'HTTP/1.1', `/a${ch}b`)).reason;
    const uriOdd = b === 0x20 ? 'SpaceInUri' : 'AmbiguousUri';
    assert.equal(inUri, expect(b > 0x20 && b !== 0x7f, b, 'BadUri', uriOdd), `URI byte 0x${hex}`);
  }
});

test('raw defects come first among findings of one tier, and a worse header finding still wins', () => {
  const bareLf: DesyncVerdict = { tier: 'Acceptable', reason: 'NonCrLfLineTermination', message: 'Header line is \\n terminated' };
  const fold: DesyncVerdict = { tier: 'Ambiguous', reason: 'MultilineHeader', message: 'Multiline header found: "X-A"' };
  const nonCompliant = [['X-A ', 'v']] as const;
  assert.deepEqual(classifyRequest({ ...req(nonCompliant), rawDefects: [bareLf] }), bareLf);
  assert.deepEqual(classifyRequest({ ...req(nonCompliant), rawDefects: [bareLf, fold] }), fold);
  const bad = classifyRequest({ ...req([['X-A', 'a\x00b']]), rawDefects: [fold] });
  assert.deepEqual([bad.tier, bad.reason], ['Severe', 'BadHeader']);
  assert.deepEqual(classifyRequest({ ...req([]), rawDefects: [] }).tier, 'Compliant');
});

test('a Compliant request has no message; others name their reason', () => {
  assert.deepEqual(classifyRequest(req([['Host', 'a']])), { tier: 'Compliant', reason: 'Compliant', message: '' });
  assert.match(classifyRequest(req([['X-A', '\x01']])).message, /^NonCompliantHeader: /);
});

test('messages do not carry the values of ordinary headers, only their offending bytes', () => {
  const v = classifyRequest(req([['Authorization', 'Bearer s3cr3t\x01']]));
  assert.equal(v.reason, 'NonCompliantHeader');
  assert.ok(!v.message.includes('s3cr3t'), v.message);
  assert.ok(v.message.includes('"_ _\\0x01"'), v.message);
  const uri = classifyRequest(req([], 'GET', 'HTTP/1.1', '/reset?token=s3cr3t&x=\x01'));
  assert.ok(!uri.message.includes('s3cr3t'), uri.message);
});

test('messages stay log-line sized whatever the request holds', () => {
  const long = 'x'.repeat(100_000);
  for (const head of [req([[`${long}\x01`, long]]), req([['Content-Length', `${long}!`]]), req([], long + '\x01'), req([], 'GET', 'HTTP/1.1', `${long} `)]) {
    const v = classifyRequest(head);
    assert.notEqual(v.tier, 'Compliant');
    assert.ok(v.message.length < 500, `${v.message.length}`);
  }
});

test('quoteBytes escapes as the library logs', () => {
  assert.equal(quoteBytes('a\\b\r\n\t\x7f\xff\x00 ~'), '"a\\\\b\\r\\n\\t\\0x7f\\0xff\\0x00 ~"');
});

test('tierRank orders the tiers', () => {
  assert.deepEqual(DESYNC_TIERS.map(tierRank), [0, 1, 2, 3]);
});

// ---------------------------------------------------------------------------------------------
// Framing and rendering.

test('bodyFraming reads the exact framing headers as RFC 9112 §6.3 orders them', () => {
  assert.deepEqual(bodyFraming(req([])), { kind: 'none' });
  assert.deepEqual(bodyFraming(req([['Content-Length', ' 12 ']])), { kind: 'length', length: 12 });
  assert.deepEqual(bodyFraming(req([['Content-Length', '5'], ['content-length', '05']])), { kind: 'length', length: 5 });
  assert.deepEqual(bodyFraming(req([['Transfer-Encoding', 'gzip, chunked']])), { kind: 'chunked', codings: 'gzip' });
  assert.deepEqual(bodyFraming(req([['Transfer-Encoding', 'Deflate;x=1'], ['Transfer-Encoding', 'identity,GZIP, chunked']])), { kind: 'chunked', codings: 'deflate, gzip' });
  assert.deepEqual(bodyFraming(req([['Transfer-Encoding', 'chunked'], ['Content-Length', '4']])), { kind: 'chunked', codings: '' });
  assert.deepEqual(bodyFraming(req([['Transfer_Encoding', 'chunked']])), { kind: 'none' });
  for (const headers of [
    [['Transfer-Encoding', 'chunked, gzip']],
    [['Transfer-Encoding', 'gzip']],
    [['Transfer-Encoding', 'chunked, chunked']],
    [['Transfer-Encoding', 'xchunked']],
    [['Content-Length', '5'], ['Content-Length', '6']],
    [['Content-Length', '5,5']],
    [['Content-Length', '9007199254740992']],
  ] as const) {
    assert.deepEqual(bodyFraming(req(headers)), { kind: 'unframeable' }, JSON.stringify(headers));
  }
});

test('renderRequest writes the head and a body a server can frame', () => {
  const latin1 = (head: RawRequestHead): string => renderRequest(head).toString('latin1');
  assert.equal(latin1(req([['X', '1']], 'GET', '')), 'GET /p\r\n');
  assert.equal(latin1(req([['Content-Length', '3']], 'PUT')), 'PUT /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nxxx');
  assert.equal(
    latin1(req([['Transfer-Encoding', 'chunked'], ['Content-Length', '4']])),
    'POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n11\r\nebb-desync-corpus\r\n0\r\n\r\n',
  );
  assert.equal(latin1(req([['Content-Length', '1000,1000']])), 'POST /p HTTP/1.1\r\nContent-Length: 1000,1000\r\n\r\n');
  assert.equal(renderRequest(req([['Content-Length', '100']]), { maxBodyBytes: 10 }).length, 'POST /p HTTP/1.1\r\nContent-Length: 100\r\n\r\n'.length);
  const bytes = renderRequest(req([['X', '\xff\x00']]));
  assert.deepEqual([...bytes.subarray(-6, -4)], [0xff, 0x00]);
});

test('every corpus case renders', () => {
  for (const c of corpus) {
    const bytes = renderRequest(requestHeadOf(c));
    assert.ok(bytes.length > c.method.length, `${c.file} #${c.index}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Never throws.

const PIECES = ['chunked', 'gzip', 'Transfer', 'Encoding', 'Content', 'Length', '-', '_', ',', ';', ':', ' ', '\t', '\r', '\n', '\x00', '\x01', '\x7f', '\xc5\xbf', '\xc4\xb1', '0', '9', '18446744073709551616', 'HTTP/1.', 'GET', 'HEAD', '\xff', '\\'];

test('classifyRequest, bodyFraming and renderRequest never throw on random latin1 input', () => {
  const next = prng(0xebb);
  const pick = (n: number): number => Math.floor(next() * n);
  const junk = (): string => {
    let s = '';
    const parts = pick(6);
    for (let i = 0; i < parts; i++) s += next() < 0.6 ? (PIECES[pick(PIECES.length)] as string) : String.fromCharCode(pick(256));
    return s;
  };
  const tiers = new Set<string>();
  for (let round = 0; round < 20_000; round++) {
    const headers = [];
    for (let h = pick(5); h > 0; h--) headers.push({ name: junk(), value: junk() });
    const rawDefects: DesyncVerdict[] = [];
    if (next() < 0.1) rawDefects.push({ tier: 'Ambiguous', reason: 'MissingHeaderColon', message: 'Header colon is missing' });
    const head: RawRequestHead = { method: junk(), uri: junk(), version: next() < 0.5 ? 'HTTP/1.1' : junk(), headers, rawDefects };
    const v = classifyRequest(head);
    tiers.add(v.tier);
    assert.equal(DESYNC_REASON_TIER[v.reason], v.tier, JSON.stringify(head));
    assert.equal(v.message === '', v.tier === 'Compliant', JSON.stringify(head));
    assert.ok(v.message.length < 500);
    bodyFraming(head);
    renderRequest(head);
  }
  assert.equal(tiers.size, 4);
});

test('corpus cases with one byte changed are still classified without throwing', () => {
  const next = prng(7);
  for (const c of corpus) {
    for (let round = 0; round < 50; round++) {
      const head = requestHeadOf(c);
      const headers = head.headers.map((h) => ({ name: h.name, value: h.value }));
      const target = headers[Math.floor(next() * headers.length)];
      if (target !== undefined) {
        const i = Math.floor(next() * (target.value.length + 1));
        target.value = target.value.slice(0, i) + String.fromCharCode(Math.floor(next() * 256)) + target.value.slice(i + 1);
      }
      const v = classifyRequest({ ...head, headers });
      assert.equal(DESYNC_REASON_TIER[v.reason], v.tier);
    }
  }
});
