/**
 * A SIGTERM that reaches `ebb serve` while it is still starting (its listener already open, its admin
 * API not yet) is a graceful stop once ebb is up: exit 0, never the default kill by the signal. The
 * signal handlers are installed before ebb starts; before that, this window killed ebb outright.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../support/ports.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('SIGTERM while ebb serve is starting: it stops gracefully once up (exit 0), not killed by the signal', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ebb-early-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const config = path.join(dir, 'lb.yaml');
  writeFileSync(
    config,
    `loadBalancers:\n  - name: web\n    listeners:\n      - protocol: HTTP\n        port: ${port}\n        address: 127.0.0.1\n        defaultActions: [{ type: forward, targetGroup: web }]\ntargetGroups:\n  - name: web\n    protocol: HTTP\n    port: 80\n    targets: []\n`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', 'serve', '--workers', '1', '--config', config, '--admin', '127.0.0.1:0', '--state-dir', path.join(dir, 'state'), '--no-auth'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // The listener opens while ebb starts: the signal goes the moment it accepts.
  const deadline = Date.now() + 30_000;
  while (!(await accepts(port))) {
    assert.ok(Date.now() < deadline, `the listener never opened: ${out}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  child.kill('SIGTERM');
  const how = await exited;
  assert.deepEqual(how, { code: 0, signal: null }, out);
  assert.match(out, /"event":"ebb:stopped"/);
});
