import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import type { ApplyResult, DataPlane, TargetActivity, TerminateResult } from '../domain/data-plane-port.ts';
import type { RoutingSnapshot } from '../domain/routing-snapshot.ts';
import { EbbError } from '../shared/errors.ts';
import { MAX_PENDING_WAITS, RoutingWatch, type NotRoutedResult } from './routing-watch.ts';

const GROUP = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1';

/** A data plane whose applies resolve only when the test says so (a data plane in another process, say). */
class GatedDataPlane implements DataPlane {
  readonly pending: Array<{ version: number; resolve: () => void }> = [];
  constructor(readonly id: string) {}
  apply(snapshot: RoutingSnapshot): Promise<ApplyResult> {
    return new Promise((resolve) => this.pending.push({ version: snapshot.version, resolve: () => resolve({ listenerErrors: [] }) }));
  }
  /** Resolves every apply given so far. */
  release(): void {
    for (const p of this.pending.splice(0)) p.resolve();
  }
  activity(): TargetActivity {
    return { requests: 2, tunnels: 1, completed: 0, connections: 3 };
  }
  terminate(): Promise<TerminateResult> {
    return Promise.resolve({ requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 });
  }
  onIdle(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): void {}
}

function snapshot(version: number, keys: readonly string[]): RoutingSnapshot {
  return {
    version,
    listeners: [],
    targetGroups: new Map([
      [GROUP, { arn: GROUP, name: 'web', protocol: 'HTTP', targetTls: null, proxyProtocolV2: false, connectionTermination: false, algorithm: 'round_robin', failOpen: false, slowStartMs: 0, targets: keys.map((key) => ({ key, host: '127.0.0.1', port: 80, healthyForMs: 0 })) }],
    ]),
  };
}

/** What the control plane does: the same snapshot to every data plane. */
function publish(watch: RoutingWatch, s: RoutingSnapshot): void {
  for (const dp of watch.dataPlanes) void dp.apply(s);
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Whether `p` has settled, without waiting for it. */
async function settled<T>(p: Promise<T>): Promise<{ value: T } | null> {
  let out: { value: T } | null = null;
  void p.then((value) => (out = { value }));
  await flush();
  return out;
}

test('not-routed waits until every data plane has applied the snapshot without the target', async () => {
  const clock = new FakeClock();
  const a = new GatedDataPlane('a');
  const b = new GatedDataPlane('b');
  const watch = new RoutingWatch([a, b], clock);
  publish(watch, snapshot(1, ['A', 'B']));
  a.release();
  b.release();
  await flush();
  assert.equal(watch.appliedVersion, 1);
  assert.ok(watch.routed('A'));

  const waiting = watch.untilNotRouted('A', { timeoutMs: 10_000 });
  assert.equal(await settled(waiting), null, 'A is routed: the wait goes on');
  publish(watch, snapshot(2, ['B']));
  assert.equal(watch.routed('A'), false);
  a.release();
  await flush();
  assert.equal(await settled(waiting), null, 'b has not applied version 2 yet: it may still route A');
  b.release();
  assert.deepEqual((await settled(waiting))?.value, { outcome: 'not-routed', appliedVersion: 2 });
  assert.equal(watch.pendingWaits, 0);
});

test('a target routed again before every data plane applied its removal starts the wait over', async () => {
  const clock = new FakeClock();
  const a = new GatedDataPlane('a');
  const watch = new RoutingWatch([a], clock);
  publish(watch, snapshot(1, ['A']));
  a.release();
  await flush();
  const waiting = watch.untilNotRouted('A', { timeoutMs: 10_000 });
  publish(watch, snapshot(2, []));
  publish(watch, snapshot(3, ['A'])); // registered again
  a.release();
  await flush();
  assert.equal(await settled(waiting), null, 'the newest snapshot routes A again');
  publish(watch, snapshot(4, []));
  assert.equal(await settled(waiting), null, 'version 4 is not applied yet');
  a.release();
  assert.deepEqual((await settled(waiting))?.value, { outcome: 'not-routed', appliedVersion: 4 });
});

test('a target no snapshot routes is not routed at once, once the newest snapshot is applied everywhere', async () => {
  const clock = new FakeClock();
  const a = new GatedDataPlane('a');
  const watch = new RoutingWatch([a], clock);
  publish(watch, snapshot(1, ['B']));
  const waiting = watch.untilNotRouted('A', { timeoutMs: 10_000 });
  assert.equal(await settled(waiting), null, 'version 1 is not applied yet');
  a.release();
  assert.deepEqual((await settled(waiting))?.value, { outcome: 'not-routed', appliedVersion: 1 });
  assert.deepEqual(await watch.untilNotRouted('A', { timeoutMs: 0 }), { outcome: 'not-routed', appliedVersion: 1 });
});

test('the wait answers timeout with what it saw, and an abort rejects it', async () => {
  const clock = new FakeClock();
  const a = new GatedDataPlane('a');
  const watch = new RoutingWatch([a], clock);
  publish(watch, snapshot(1, ['A']));
  a.release();
  await flush();
  const waiting = watch.untilNotRouted('A', { timeoutMs: 5000 });
  clock.advance(4999);
  assert.equal(await settled(waiting), null);
  clock.advance(1);
  const r: NotRoutedResult | undefined = (await settled(waiting))?.value;
  assert.deepEqual(r, { outcome: 'timeout', routedInLatest: true, latestVersion: 1, appliedVersion: 1 });

  const abort = new AbortController();
  const abandoned = watch.untilNotRouted('A', { timeoutMs: 5000, signal: abort.signal });
  abort.abort();
  await assert.rejects(abandoned, (e: unknown) => EbbError.is(e) && e.code === 'ServiceUnavailable');
  assert.equal(watch.pendingWaits, 0);
  assert.equal(clock.pendingTimers(), 0);
});

test('pending waits are bounded', async () => {
  const clock = new FakeClock();
  const a = new GatedDataPlane('a');
  const watch = new RoutingWatch([a], clock);
  publish(watch, snapshot(1, ['A']));
  a.release();
  await flush();
  const waits = Array.from({ length: MAX_PENDING_WAITS }, () => watch.untilNotRouted('A', { timeoutMs: 1000 }));
  await assert.rejects(watch.untilNotRouted('A', { timeoutMs: 1000 }), (e: unknown) => EbbError.is(e) && e.code === 'ServiceUnavailable');
  clock.advance(1000);
  assert.ok((await Promise.all(waits)).every((r) => r.outcome === 'timeout'));
});

test('work sums every data plane, and the wrapped data planes pass every call through', async () => {
  const clock = new FakeClock();
  const a = new GatedDataPlane('a');
  const b = new GatedDataPlane('b');
  const watch = new RoutingWatch([a, b], clock);
  assert.deepEqual(watch.work('A'), { requests: 4, tunnels: 2, connections: 6 });
  assert.deepEqual(
    watch.dataPlanes.map((dp) => dp.id),
    ['a', 'b'],
  );
  assert.deepEqual(watch.dataPlanes[0]?.activity('A'), a.activity());
  assert.deepEqual(await watch.dataPlanes[1]?.terminate('A'), { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 });
});
