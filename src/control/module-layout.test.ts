/**
 * The control plane and the domain stay in rooms: no import cycles among their files (type imports
 * count: a type import still ties one module to another), and no source file over 500 lines unless
 * its first lines say why (a comment that names the 500-line limit).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = resolve(import.meta.dirname, '..');
const FOLDERS = ['control', 'domain'];
const MAX_LINES = 500;

function sources(): string[] {
  return FOLDERS.flatMap((folder) =>
    readdirSync(join(SRC, folder), { encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .map((f) => join(SRC, folder, f)),
  );
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
    out.push(resolve(dirname(file), m[1] ?? m[2] ?? ''));
  }
  return out;
}

test('no import cycles in src/control and src/domain', () => {
  const files = new Set(sources());
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const cycles: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    path.push(file);
    for (const dep of importsOf(file).filter((d) => files.has(d))) {
      if (state.get(dep) === 'open') cycles.push([...path.slice(path.indexOf(dep)), dep].map((f) => relative(SRC, f)).join(' → '));
      else if (!state.has(dep)) visit(dep);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  assert.deepEqual(cycles, []);
});

test(`no source file in src/control or src/domain over ${MAX_LINES} lines without saying why at its top`, () => {
  const tooLong = sources().filter((file) => {
    const lines = readFileSync(file, 'utf8').split('\n');
    return lines.length > MAX_LINES && !lines.slice(0, 10).some((l) => /500 lines/.test(l));
  });
  assert.deepEqual(tooLong.map((f) => relative(SRC, f)), []);
});
