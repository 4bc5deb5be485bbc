/**
 * A state directory written by the previous release: records without a format version `v` (only
 * targets carried `v: 1`). ebb serve opens it, upgrades every record to its kind's current format
 * in the transaction that opens the store, and serves what it holds.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { DescribeListenersCommand, DescribeTargetGroupsCommand, DescribeTargetHealthCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { StoreKind } from '../../src/domain/store-port.ts';
import { currentVersion } from '../../src/store/migrations.ts';
import { openSqlite } from '../../src/store/sqlite-driver.ts';
import { DB_FILE } from '../../src/store/sqlite-state-store.ts';
import { Cleanup, serveConfig, startBackend } from './harness.ts';
import { kill, serve } from './process-harness.ts';

/** kind → the `v` of each of its records, read with SQL while no ebb holds the directory. */
function versions(stateDir: string): Map<string, unknown[]> {
  const db = openSqlite(join(stateDir, DB_FILE));
  try {
    const out = new Map<string, unknown[]>();
    for (const r of db.prepare("SELECT kind, json_extract(value, '$.v') AS v FROM records ORDER BY kind, key").all() as { kind: string; v: unknown }[]) {
      out.set(r.kind, [...(out.get(r.kind) ?? []), r.v]);
    }
    return out;
  } finally {
    db.close();
  }
}

test('ebb serve opens a state directory of the previous release: its resources are served and every record is upgraded', { timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const s = await serveConfig(c, { targets: [A.port], delaySeconds: 10 });
  s.ebb.child.kill('SIGTERM');
  assert.equal(await s.ebb.exited, 0);

  // Rewrite the records as the previous release stored them: no `v`, except on targets (`v: 1`).
  const db = openSqlite(join(s.stateDir, DB_FILE));
  db.exec("UPDATE records SET value = json_remove(value, '$.v') WHERE kind <> 'target'");
  db.exec("UPDATE records SET value = json_set(value, '$.v', 1) WHERE kind = 'target'");
  db.close();
  const old = versions(s.stateDir);
  t.diagnostic(`previous release: ${JSON.stringify([...old])}`);
  for (const kind of ['listener', 'loadBalancer', 'target', 'targetGroup']) assert.ok(old.has(kind), `the first start stored a ${kind}`);
  for (const [kind, vs] of old) assert.ok(vs.every((v) => v === (kind === 'target' ? 1 : null)), kind);

  // Without the file, so only what the state directory holds is served.
  const ebb = await serve(c, s.stateDir);
  const groups = await ebb.client.send(new DescribeTargetGroupsCommand({}));
  assert.deepEqual(groups.TargetGroups?.map((g) => g.TargetGroupName), ['web']);
  const tgArn = groups.TargetGroups?.[0]?.TargetGroupArn;
  const health = await ebb.client.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn }));
  assert.deepEqual(health.TargetHealthDescriptions?.map((d) => [d.Target?.Id, d.Target?.Port]), [['127.0.0.1', A.port]]);
  const listeners = await ebb.client.send(new DescribeListenersCommand({ LoadBalancerArn: groups.TargetGroups?.[0]?.LoadBalancerArns?.[0] }));
  assert.deepEqual(listeners.Listeners?.map((l) => [l.Port, l.DefaultActions?.[0]?.TargetGroupArn]), [[s.listenerPort, tgArn]]);
  assert.equal(await kill(ebb.proc, 'SIGTERM'), 0);

  const upgraded = versions(s.stateDir);
  t.diagnostic(`after: ${JSON.stringify([...upgraded])}`);
  for (const [kind, vs] of upgraded) {
    assert.deepEqual(vs, vs.map(() => currentVersion(kind as StoreKind)), `every ${kind} record is in the current format`);
  }
});
