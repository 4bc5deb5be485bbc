/**
 * Issue 9, test 4: `GET /ebb/v1/wait?for=not-routed` answers only after the last snapshot without the
 * target has been applied by every data plane, and a request sent after that answer never reaches the
 * target.
 *
 * ebb's HTTP data plane swaps routes the instant `apply` is called, so to see the barrier wait, the
 * data plane that serves the listener is put behind a gate that holds the snapshots it is given (as a
 * data plane in another process would take a while to get and apply them); a second data plane applies
 * at once. While the gate holds, the target is out of the newest snapshot yet still served through the
 * listener: an answer then would be a lie. Once the gate opens, the barrier answers, and from then on
 * no request reaches the target.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import type { ApplyResult, DataPlane, TargetActivity, TerminateResult } from '../../src/domain/data-plane-port.ts';
import { targetKey } from '../../src/domain/resources.ts';
import type { RoutingSnapshot } from '../../src/domain/routing-snapshot.ts';
import { FakeDataPlane } from '../fakes/fake-data-plane.ts';
import { oneGroup, startEbbApiHarness, type Answer } from './ebb-api-harness.ts';
import { after, Cleanup, get, startBackend } from './harness.ts';

/** Passes everything to `inner`, except that while held, the snapshots it is given wait, in order, for `release()`. */
class GatedDataPlane implements DataPlane {
  readonly #held: Array<{ snapshot: RoutingSnapshot; resolve: (r: Promise<ApplyResult>) => void }> = [];
  #holding = false;
  appliedVersions: number[] = [];

  constructor(readonly inner: HttpDataPlane) {}

  get id(): string {
    return this.inner.id;
  }

  hold(): void {
    this.#holding = true;
  }

  release(): void {
    this.#holding = false;
    for (const h of this.#held.splice(0)) h.resolve(this.#apply(h.snapshot));
  }

  get heldVersions(): number[] {
    return this.#held.map((h) => h.snapshot.version);
  }

  apply(snapshot: RoutingSnapshot): Promise<ApplyResult> {
    if (!this.#holding) return this.#apply(snapshot);
    return new Promise((resolve) => this.#held.push({ snapshot, resolve }));
  }

  #apply(snapshot: RoutingSnapshot): Promise<ApplyResult> {
    return this.inner.apply(snapshot).then((r) => {
      this.appliedVersions.push(snapshot.version);
      return r;
    });
  }

  activity(key: string): TargetActivity {
    return this.inner.activity(key);
  }
  terminate(key: string): Promise<TerminateResult> {
    return this.inner.terminate(key);
  }
  onIdle(listener: (key: string) => void): void {
    this.inner.onIdle(listener);
  }
  close(deadlineMs: number): Promise<void> {
    return this.inner.close(deadlineMs);
  }
  destroy(): void {
    this.inner.destroy();
  }
}

test('wait for=not-routed answers only once every data plane applied the last snapshot without the target; no request after it reaches the target', { timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const gated = new GatedDataPlane(new HttpDataPlane({ id: 'gated' }));
  const instant = new FakeDataPlane('instant');
  const h = await startEbbApiHarness({ dataPlanes: [gated, instant] });
  c.add(() => gated.inner.close(200));
  c.add(() => gated.release());
  c.add(() => h.close());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const { listenerPort } = await oneGroup(h.control, 'web', [A.port, B.port]);
  const target = `127.0.0.1:${A.port}`;

  const before = await Promise.all(Array.from({ length: 4 }, () => get(listenerPort, '/')));
  assert.deepEqual(new Set(before.map((r) => r.backend)), new Set(['A', 'B']), 'both targets serve before');

  // The data plane behind the listener stops applying; A is deregistered (nothing in flight: its drain
  // ends at once, so two snapshots without A are published, both held).
  gated.hold();
  const dereg = await h.call('POST', '/ebb/v1/deregister', { body: { targetGroup: 'web', targets: [target] } });
  assert.equal(dereg.status, 200, dereg.text);
  assert.equal(h.watch.routed(targetKey(dereg.body.targets[0].targetGroupArn, '127.0.0.1', A.port)), false, 'the newest snapshot no longer routes A');
  const latest = h.watch.latestVersion;
  assert.ok(gated.heldVersions.includes(latest), `the last snapshot (v${latest}) is held; held ${gated.heldVersions.join(',')}`);
  assert.ok(instant.snapshots.some((s) => s.version === latest), 'the other data plane applied it at once');

  let answeredAt = 0;
  const waiting = h.call('GET', `/ebb/v1/wait?targetGroup=web&target=${target}&for=not-routed&timeout=30`).then((a) => {
    answeredAt = Date.now();
    return a;
  });
  assert.equal(await Promise.race([waiting, after(500, null)]), null, 'no answer while a data plane has not applied the snapshot without A');

  // It would have been wrong to answer: the listener's data plane still sends requests to A.
  const aBefore = A.seen.length;
  const during = await Promise.all(Array.from({ length: 6 }, () => get(listenerPort, '/')));
  assert.ok(
    during.some((r) => r.backend === 'A') && A.seen.length > aBefore,
    `while the snapshot is held, A still gets requests (got ${during.map((r) => r.backend).join(',')})`,
  );
  const status = (await h.call('GET', '/ebb/v1/status')).body;
  assert.ok(status.snapshot.appliedVersion < status.snapshot.latestVersion, `the status says so: ${JSON.stringify(status.snapshot)}`);
  assert.equal(await Promise.race([waiting, after(200, null)]), null, 'still no answer');

  const releasedAt = Date.now();
  gated.release();
  const answer: Answer = await waiting;
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.body.outcome, 'not-routed');
  assert.equal(answer.body.reached, true);
  assert.ok(answeredAt >= releasedAt, 'the answer came after the held snapshots were released');
  assert.ok(gated.appliedVersions.includes(latest), `the listener's data plane applied v${latest}`);
  assert.equal(answer.body.snapshot.appliedVersion, answer.body.snapshot.latestVersion, 'every data plane applied the last snapshot');
  assert.ok(answer.body.snapshot.appliedVersion >= latest);
  assert.equal(answer.body.target.routed, false);

  // From here on, nothing reaches A: 100 requests, 10 at a time, all answered by B.
  const aAfter = A.seen.length;
  const replies = [];
  for (let i = 0; i < 10; i++) replies.push(...(await Promise.all(Array.from({ length: 10 }, () => get(listenerPort, '/')))));
  assert.deepEqual(
    replies.filter((r) => r.status !== 200 || r.backend !== 'B').map((r) => `${r.status} ${r.backend}`),
    [],
    'every request sent after the answer is answered by B',
  );
  assert.equal(A.seen.length, aAfter, 'A received no request after the barrier answered');

  // Asked again, it answers at once: nothing routes A.
  const again = await h.call('GET', `/ebb/v1/wait?targetGroup=web&target=${target}&for=not-routed&timeout=5`);
  assert.equal(again.body.outcome, 'not-routed');
  assert.ok(again.body.waitedMs < 500);
});

test('wait for=not-routed times out, saying so, while the target is still routed', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const h = await startEbbApiHarness();
  c.add(() => h.close());
  const A = await startBackend('A', c);
  await oneGroup(h.control, 'web', [A.port]);
  const a = await h.call('GET', `/ebb/v1/wait?targetGroup=web&target=127.0.0.1:${A.port}&for=not-routed&timeout=0.3`);
  assert.equal(a.status, 200);
  assert.deepEqual([a.body.outcome, a.body.reached, a.body.target.routed], ['timeout', false, true]);
  assert.ok(a.body.waitedMs >= 250, `waited ${a.body.waitedMs} ms`);
});
