/**
 * Dependencies point inward (docs/architecture.md): each src/ folder may import only the folders listed for it.
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
  // Auto Scaling drives the control plane (registering and draining its instances) and the instance runner port.
  autoscaling: ['control', 'domain', 'shared'],
  // The processes that are Auto Scaling's instances: spawn, adopt, signal, log files.
  instances: ['domain', 'shared'],
  config: ['domain', 'shared', 'control', 'autoscaling'],
  api: ['autoscaling', 'control', 'domain', 'shared', 'telemetry'],
  // Metrics and access logs: they listen to the control plane's events and the data plane's channels.
  telemetry: ['autoscaling', 'control', 'dataplane', 'domain', 'shared'],
  // The command-line client talks to the admin endpoint over HTTP; it shares only names and errors.
  cli: ['domain', 'shared'],
  // Data-plane workers: the protocol between the control plane's process and a data-plane process, the
  // remote data plane (the port over it), the worker process around an HTTP data plane, the supervisor.
  workers: ['dataplane', 'domain', 'shared'],
  // Hot restart: the handover between the running ebb and its successor, which then drives the
  // predecessor's data plane as a worker (the drains it hands over are the control plane's).
  restart: ['control', 'dataplane', 'domain', 'shared', 'workers'],
  main: ['shared', 'domain', 'control', 'autoscaling', 'instances', 'health', 'dataplane', 'store', 'config', 'api', 'telemetry', 'cli', 'workers', 'restart'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

/** The src/ files each file imports (type imports included), by path relative to src/. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const from = relative(SRC, file);
    const to: string[] = [];
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const rel = relative(SRC, resolve(dirname(file), m[1] ?? m[2] ?? ''));
      if (!rel.startsWith('..')) to.push(rel);
    }
    graph.set(from, to);
  }
  return graph;
}

test('no import cycles, type imports included', () => {
  const graph = importGraph();
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 'open') cycles.push([...stack.slice(stack.indexOf(g)), g].join(' -> '));
      else if (state.get(g) === undefined && graph.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...graph.keys()].sort()) if (state.get(f) === undefined) visit(f);
  assert.deepEqual(cycles, []);
});

test('each layer imports only the layers it may', () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const layer = relative(SRC, file).split('/')[0] ?? '';
    const allowed = Object.hasOwn(ALLOWED, layer) ? ALLOWED[layer] : undefined;
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
