/**
 * Dependencies point inward (STYLE.md §2): each src/ folder may import only the folders listed for it.
 * Test files and type-only imports count too — a type import still ties one layer to another.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = resolve(import.meta.dirname, '../src');

const ALLOWED: Record<string, readonly string[]> = {
  shared: [],
  domain: ['shared'],
  control: ['domain', 'shared'],
  health: ['domain', 'shared'],
  dataplane: ['domain', 'shared'],
  store: ['domain', 'shared'],
  config: ['domain', 'shared', 'control'],
  api: ['control', 'domain', 'shared'],
  cli: ['api', 'shared'],
  main: ['shared', 'domain', 'control', 'health', 'dataplane', 'store', 'config', 'api', 'cli'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

test('each layer imports only the layers it may', () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const layer = relative(SRC, file).split('/')[0] ?? '';
    const allowed = ALLOWED[layer];
    assert.ok(allowed !== undefined, `src/${layer} has no rule in this test; add one`);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2] ?? '';
      const target = resolve(dirname(file), spec);
      const rel = relative(SRC, target);
      if (rel.startsWith('..')) {
        if (!file.endsWith('.test.ts')) violations.push(`${relative(SRC, file)} imports ${spec}, outside src/`);
        continue;
      }
      const targetLayer = rel.split('/')[0] ?? '';
      // Tests may use the in-memory store as their test double.
      const testDouble = file.endsWith('.test.ts') && rel === 'store/in-memory-state-store.ts';
      if (targetLayer !== layer && !allowed.includes(targetLayer) && !testDouble) {
        violations.push(`src/${relative(SRC, file)} (${layer}) imports ${spec} (${targetLayer})`);
      }
    }
  }
  assert.deepEqual(violations, []);
});
