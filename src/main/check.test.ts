import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCheck, type CheckReport } from './check.ts';

const FILE = `targetGroups:
  - { name: app, protocol: HTTP, port: 80, targetType: instance }
launchTemplates:
  - { name: app, command: [node, server.js] }
autoScalingGroups:
  - name: web
    launchTemplate: app
    minSize: 1
    maxSize: 4
    desiredCapacity: 2
    targetGroups: [app, api]
`;

async function check(text: string): Promise<{ code: number; report: CheckReport }> {
  const dir = await mkdtemp(join(tmpdir(), 'ebb-check-'));
  try {
    await writeFile(join(dir, 'ebb.yaml'), text);
    let out = '';
    const io = { stdout: { write: (t: string) => (out += t) }, stderr: { write: () => true }, env: {}, cwd: dir };
    const code = await runCheck(['--config', 'ebb.yaml', '--state-dir', join(dir, 'state'), '--json'], io);
    return { code, report: JSON.parse(out) as CheckReport };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('ebb check plans the Auto Scaling sections with the rest, and refuses a name the state does not have at its line', async () => {
  const ok = await check(FILE.replace('[app, api]', '[app]'));
  assert.equal(ok.code, 0);
  assert.deepEqual(ok.report.changes, ['created target group app', 'created launch template app', 'created Auto Scaling group web (desired capacity 2)']);

  const bad = await check(FILE);
  assert.equal(bad.code, 2);
  assert.equal(bad.report.valid, false);
  assert.match(
    bad.report.problems.join('\n'),
    /ebb\.yaml:11:25: autoScalingGroups\[0\]\.targetGroups\[1\]: names target group "api", which is neither declared under targetGroups nor exists/,
  );
});
