import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HealthFailureReason } from './target-health.ts';
import { TargetLifecycle, type Thresholds } from './target-lifecycle.ts';

const thresholds: Thresholds = { healthy: 2, unhealthy: 2 };

function pass(life: TargetLifecycle, now: number, times = thresholds.healthy): void {
  for (let i = 0; i < times; i++) life.observe({ key: 'k', ok: true }, thresholds, now);
}

function fail(life: TargetLifecycle, now: number, reason: HealthFailureReason, statusCode?: number, times = thresholds.unhealthy): void {
  for (let i = 0; i < times; i++) {
    life.observe(statusCode === undefined ? { key: 'k', ok: false, reason, detail: 'test' } : { key: 'k', ok: false, reason, statusCode, detail: 'test' }, thresholds, now);
  }
}

describe('health carried across a hot restart (settledHealth, resumeHealth)', () => {
  test('a healthy target hands over how long it has been healthy, and the next ebb goes on from that age', () => {
    const before = new TargetLifecycle(true);
    pass(before, 1_000);
    assert.deepEqual(before.settledHealth(6_000), { health: 'healthy', failure: null, healthyForMs: 5_000 });

    // The next process's monotonic clock starts elsewhere: only the duration crosses over.
    const after = new TargetLifecycle(true);
    after.resumeHealth({ health: 'healthy', failure: null, healthyForMs: 5_000 }, 200);
    assert.deepEqual(after.view(), { state: 'healthy' });
    assert.equal(after.isRoutable(), true);
    assert.equal(after.healthySince, -4_800, 'slow start counts from when it became healthy, 5 s before');
    assert.equal(after.settledHealth(1_200)?.healthyForMs, 6_000);
  });

  test('healthyForMs is never negative', () => {
    const life = new TargetLifecycle(true);
    pass(life, 5_000);
    assert.equal(life.settledHealth(4_000)?.healthyForMs, 0);
  });

  test('an unhealthy target hands over its failure: the next ebb shows the same reason and routes nothing to it', () => {
    const before = new TargetLifecycle(true);
    pass(before, 0);
    fail(before, 1_000, 'Target.ResponseCodeMismatch', 503);
    const settled = before.settledHealth(2_000);
    assert.deepEqual(settled, { health: 'unhealthy', failure: { reason: 'Target.ResponseCodeMismatch', statusCode: 503 }, healthyForMs: null });

    const after = new TargetLifecycle(true);
    assert.ok(settled !== null);
    after.resumeHealth(settled, 50);
    assert.deepEqual(after.view(), { state: 'unhealthy', reason: 'Target.ResponseCodeMismatch', description: 'Health checks failed with these codes: [503]' });
    assert.equal(after.isRoutable(), false);
    assert.equal(after.isFailOpenCandidate(), true, 'still registered: fail-open may route to it');
    assert.equal(after.healthySince, null);

    const timedOut = new TargetLifecycle(true);
    timedOut.resumeHealth({ health: 'unhealthy', failure: { reason: 'Target.Timeout' }, healthyForMs: null }, 0);
    assert.deepEqual(timedOut.view(), { state: 'unhealthy', reason: 'Target.Timeout', description: 'Request timed out' });
  });

  test('the resumed health keeps its hysteresis: it flips only after the threshold of opposite results', () => {
    const healthy = new TargetLifecycle(true);
    healthy.resumeHealth({ health: 'healthy', failure: null, healthyForMs: 0 }, 0);
    assert.equal(healthy.observe({ key: 'k', ok: false, reason: 'Target.Timeout', detail: 'test' }, thresholds, 10), 'ChangePending');
    assert.equal(healthy.view().state, 'healthy');
    assert.equal(healthy.observe({ key: 'k', ok: false, reason: 'Target.Timeout', detail: 'test' }, thresholds, 20), 'Changed');
    assert.equal(healthy.view().state, 'unhealthy');

    const unhealthy = new TargetLifecycle(true);
    unhealthy.resumeHealth({ health: 'unhealthy', failure: { reason: 'Target.FailedHealthChecks' }, healthyForMs: null }, 0);
    assert.equal(unhealthy.observe({ key: 'k', ok: true }, thresholds, 10), 'ChangePending');
    assert.equal(unhealthy.isRoutable(), false);
    assert.equal(unhealthy.observe({ key: 'k', ok: true }, thresholds, 20), 'Changed');
    assert.equal(unhealthy.isRoutable(), true);
    assert.equal(unhealthy.healthySince, 20, 'healthy from its own checks: slow start from then');
  });

  test('with checks disabled nothing is handed over, and handed-over health is ignored', () => {
    const before = new TargetLifecycle(true);
    pass(before, 0);
    before.setChecksEnabled(false);
    assert.equal(before.settledHealth(1_000), null);

    const after = new TargetLifecycle(false);
    after.resumeHealth({ health: 'unhealthy', failure: { reason: 'Target.Timeout' }, healthyForMs: null }, 0);
    assert.deepEqual(after.view(), { state: 'unavailable', reason: 'Target.HealthCheckDisabled', description: 'Health checks are disabled' });
    assert.equal(after.isRoutable(), true);
    assert.equal(after.settledHealth(0), null);
  });

  test('health the checks have not settled (unknown) is not handed over', () => {
    const life = new TargetLifecycle(true);
    assert.equal(life.settledHealth(0), null, 'no check yet');
    pass(life, 0, thresholds.healthy - 1);
    assert.equal(life.view().reason, 'Elb.InitialHealthChecking');
    assert.equal(life.settledHealth(100), null, 'below the healthy threshold');
    fail(life, 200, 'Target.Timeout', undefined, thresholds.unhealthy - 1);
    assert.equal(life.settledHealth(300), null, 'below the unhealthy threshold');
  });

  test('a draining target keeps the health it resumed; a removed one takes none', () => {
    const draining = new TargetLifecycle(true);
    draining.deregister();
    draining.resumeHealth({ health: 'healthy', failure: null, healthyForMs: 1_000 }, 0);
    assert.equal(draining.view().state, 'draining');
    assert.equal(draining.isRoutable(), false);
    draining.reregister();
    assert.deepEqual(draining.view(), { state: 'healthy' }, 'registered again, it returns to the health it has');

    const removed = new TargetLifecycle(true);
    removed.remove();
    removed.resumeHealth({ health: 'healthy', failure: null, healthyForMs: 1_000 }, 0);
    assert.equal(removed.health, 'unknown');
    assert.equal(removed.settledHealth(0), null);
  });
});
