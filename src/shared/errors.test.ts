import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, EbbError, ebbError } from './errors.ts';

const SRC = fileURLToPath(new URL('..', import.meta.url));
const REGISTRY = fileURLToPath(new URL('./errors.ts', import.meta.url));

/** The source of every non-test file under src/, but the registry itself. */
function sources(): Array<{ file: string; text: string }> {
  return readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.fixture.ts'))
    .map((f) => join(SRC, f))
    .filter((file) => file !== REGISTRY)
    .map((file) => ({ file, text: readFileSync(file, 'utf8') }));
}

/** Where each code is raised with a literal: `ebbError('Code', …)` or `new EbbError('Code', …)`, the code maybe on the next line. */
function raisedCodes(): Map<string, string[]> {
  return codesMatching(/(?:\bebbError|\bnew EbbError)\(\s*'([A-Za-z][A-Za-z.]*)'/g);
}

/** Codes written into an object literal (`code: 'Code'`): an error put on the wire, or named, by hand. */
function literalCodes(): Map<string, string[]> {
  return codesMatching(/\bcode: '([A-Z][A-Za-z.]+)'/g);
}

function codesMatching(pattern: RegExp): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const { file, text } of sources()) {
    for (const m of text.matchAll(pattern)) {
      const code = m[1] ?? '';
      found.set(code, [...(found.get(code) ?? []), file.slice(SRC.length)]);
    }
  }
  return found;
}

test('every registered code is raised somewhere in src/ (a code nothing raises is removed, not kept)', () => {
  const raised = raisedCodes();
  assert.deepEqual(
    Object.keys(ERROR_CODES).filter((code) => !raised.has(code)),
    [],
  );
});

test('every code raised or written out in src/ is registered', () => {
  const unregistered = [...raisedCodes(), ...literalCodes()]
    .filter(([code]) => !Object.hasOwn(ERROR_CODES, code))
    .map(([code, files]) => `${code} (${files.join(', ')})`);
  assert.deepEqual(unregistered, []);
});

test('every error code is documented in docs/errors.md, and every code documented there is registered', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const missing = Object.keys(ERROR_CODES).filter((code) => !doc.includes(`| \`${code}\` |`));
  assert.deepEqual(missing, []);
  const documented = [...doc.matchAll(/^\| `([A-Za-z][A-Za-z.]*)` \|/gm)].map((m) => m[1] ?? '');
  assert.deepEqual(documented.filter((code) => !Object.hasOwn(ERROR_CODES, code)), []);
});

test('statuses and fault types are coherent', () => {
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    assert.ok(spec.status >= 400 && spec.status < 600, code);
    assert.equal(spec.fault, spec.status >= 500 ? 'Receiver' : 'Sender', code);
  }
});

test('EbbError carries code, status and fault, and is recognised by brand', () => {
  const e = ebbError('TargetGroupNotFound', 'Target group x not found');
  assert.equal(e.code, 'TargetGroupNotFound');
  assert.equal(e.status, 400);
  assert.equal(e.fault, 'Sender');
  assert.ok(EbbError.is(e));
  assert.ok(!EbbError.is(new Error('plain')));
  assert.ok(!EbbError.is({ code: 'TargetGroupNotFound' }));
});
