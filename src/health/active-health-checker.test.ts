import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultHealthCheck, type HealthCheckConfig } from '../domain/health-check.ts';
import type { HealthCheckTarget, HealthObservation } from '../domain/health-port.ts';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { ActiveHealthChecker } from './active-health-checker.ts';
import type { CheckOutcome } from './check-outcome.ts';
import type { CheckSignal } from './check-signal.ts';
import type { ProbeFn } from './probe.ts';

/** A probe whose checks finish only when the test says so. */
class ManualProbe {
  readonly calls: Array<{ key: string; config: HealthCheckConfig; signal: CheckSignal; finish: (o: CheckOutcome) => void }> = [];
  readonly fn: ProbeFn = (target, signal) =>
    new Promise((resolve) => {
      // Like the real probes, settle once aborted.
      signal.addEventListener('abort', () => resolve({ ok: false, reason: 'Target.Timeout', detail: 'aborted' }), { once: true });
      this.calls.push({ key: target.key, config: target.config, signal, finish: resolve });
    });
  count(key: string): number {
    return this.calls.filter((c) => c.key === key).length;
  }
  last(key: string): (typeof this.calls)[number] {
    const call = this.calls.filter((c) => c.key === key).at(-1);
    assert.ok(call, `no check of ${key}`);
    return call;
  }
}

const hc = (over: Partial<HealthCheckConfig> = {}): HealthCheckConfig => ({
  ...defaultHealthCheck('HTTP'),
  intervalSeconds: 10,
  timeoutSeconds: 5,
  ...over,
});
const target = (key: string, over: Partial<HealthCheckConfig> = {}): HealthCheckTarget => ({
  key,
  host: '127.0.0.1',
  port: 1,
  config: hc(over),
});
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup() {
  const clock = new FakeClock();
  const probe = new ManualProbe();
  const checker = new ActiveHealthChecker({ clock, probe: probe.fn });
  const seen: HealthObservation[] = [];
  checker.onObservation((o) => seen.push(o));
  return { clock, probe, checker, seen };
}

describe('ActiveHealthChecker scheduling (FakeClock)', () => {
  it('checks a new target at once, then every interval', async () => {
    const { clock, probe, checker } = setup();
    checker.setTargets([target('a')]);
    assert.equal(probe.count('a'), 1);
    probe.last('a').finish({ ok: true });
    await tick();
    clock.advance(9_999);
    assert.equal(probe.count('a'), 1);
    clock.advance(1);
    assert.equal(probe.count('a'), 2);
    probe.last('a').finish({ ok: true });
    await tick();
    // Unfinished checks time out after 5 s, so each of the checks due at 20, 30 and 40 s starts.
    clock.advance(30_000);
    assert.equal(probe.count('a'), 5);
    await checker.close();
  });

  it('reports each result as an observation with its reason and how long the check took', async () => {
    const { clock, probe, checker, seen } = setup();
    checker.setTargets([target('a'), target('b')]);
    clock.advance(12);
    probe.last('a').finish({ ok: true });
    clock.advance(30);
    probe.last('b').finish({ ok: false, reason: 'Target.ResponseCodeMismatch', statusCode: 503, detail: 'answered 503' });
    await tick();
    assert.deepEqual(seen, [
      { key: 'a', ok: true, durationMs: 42 },
      { key: 'b', ok: false, reason: 'Target.ResponseCodeMismatch', statusCode: 503, detail: 'answered 503', durationMs: 42 },
    ]);
    await checker.close();
  });

  it('reports Target.Timeout after timeoutSeconds, aborts the probe and ignores its late result', async () => {
    const { clock, probe, checker, seen } = setup();
    checker.setTargets([target('a', { timeoutSeconds: 3 })]);
    const first = probe.last('a');
    clock.advance(2_999);
    assert.equal(seen.length, 0);
    assert.equal(first.signal.aborted, false);
    clock.advance(1);
    assert.equal(first.signal.aborted, true);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.ok, false);
    assert.equal(seen[0]?.ok === false && seen[0].reason, 'Target.Timeout');
    assert.equal(seen[0]?.ok === false && seen[0].detail, 'no answer from 127.0.0.1:1 within 3 s');
    assert.equal(seen[0]?.durationMs, 3000, 'a timed-out check took its timeout');
    first.finish({ ok: true }); // too late
    await tick();
    assert.equal(seen.length, 1);
    // The next check runs on schedule after a timeout.
    clock.advance(7_000);
    assert.equal(probe.count('a'), 2);
    await checker.close();
  });

  it('names an IPv6 target in brackets when its check times out', async () => {
    const { clock, checker, seen } = setup();
    checker.setTargets([{ ...target('v6', { timeoutSeconds: 2 }), host: '::1', port: 8080 }]);
    clock.advance(2_000);
    assert.equal(seen[0]?.ok === false && seen[0].detail, 'no answer from [::1]:8080 within 2 s');
    await checker.close();
  });

  it('keeps at most one check in flight per target', async () => {
    const { clock, probe, checker, seen } = setup();
    // A timeout longer than the interval (the domain refuses it, the checker must still cope).
    checker.setTargets([target('a', { intervalSeconds: 5, timeoutSeconds: 12 })]);
    clock.advance(10_000); // due at 5 s and 10 s: both skipped, the first is still in flight
    assert.equal(probe.count('a'), 1);
    clock.advance(2_000); // timeout at 12 s
    assert.equal(seen.length, 1);
    clock.advance(3_000); // due at 15 s: runs
    assert.equal(probe.count('a'), 2);
    await checker.close();
  });

  it('stops checking a removed target and drops its late result', async () => {
    const { clock, probe, checker, seen } = setup();
    checker.setTargets([target('a'), target('b')]);
    const inFlight = probe.last('a');
    checker.setTargets([target('b')]);
    assert.equal(inFlight.signal.aborted, true);
    inFlight.finish({ ok: true });
    await tick();
    clock.advance(60_000);
    assert.equal(probe.count('a'), 1);
    assert.ok(probe.count('b') >= 2);
    assert.ok(seen.every((o) => o.key !== 'a'));
    assert.deepEqual(checker.keys(), ['b']);
    // Its timers are gone: only b's schedule (next check + timeout of the one in flight) remains.
    assert.ok(clock.pendingTimers() <= 2);
    await checker.close();
    assert.equal(clock.pendingTimers(), 0);
  });

  it('a re-added target starts afresh and is checked at once', async () => {
    const { probe, checker } = setup();
    checker.setTargets([target('a')]);
    checker.setTargets([]);
    checker.setTargets([target('a')]);
    assert.equal(probe.count('a'), 2);
    await checker.close();
  });

  it('applies a changed interval from the last check, and other changes at the next check', async () => {
    const { clock, probe, checker } = setup();
    checker.setTargets([target('a', { intervalSeconds: 300, timeoutSeconds: 5 })]);
    probe.last('a').finish({ ok: true });
    await tick();
    clock.advance(6_000);
    checker.setTargets([target('a', { intervalSeconds: 10, timeoutSeconds: 5, path: '/ready' })]);
    assert.equal(probe.count('a'), 1, 'a changed config does not trigger an extra check');
    clock.advance(3_999);
    assert.equal(probe.count('a'), 1);
    clock.advance(1); // 10 s after the first check
    assert.equal(probe.count('a'), 2);
    assert.equal(probe.last('a').config.path, '/ready');
    probe.last('a').finish({ ok: true });
    await tick();
    clock.advance(10_000);
    assert.equal(probe.count('a'), 3);
    await checker.close();
  });

  it('an interval change to a shorter one that is already overdue checks at once', async () => {
    const { clock, probe, checker } = setup();
    checker.setTargets([target('a', { intervalSeconds: 300 })]);
    probe.last('a').finish({ ok: true });
    await tick();
    clock.advance(60_000);
    checker.setTargets([target('a', { intervalSeconds: 30 })]);
    clock.advance(0);
    assert.equal(probe.count('a'), 2);
    await checker.close();
  });

  it('does not check a target whose health check is disabled, and resumes when enabled', async () => {
    const { clock, probe, checker } = setup();
    checker.setTargets([target('a', { enabled: false })]);
    clock.advance(60_000);
    assert.equal(probe.count('a'), 0);
    checker.setTargets([target('a')]);
    assert.equal(probe.count('a'), 1);
    checker.setTargets([target('a', { enabled: false })]);
    assert.equal(probe.last('a').signal.aborted, true);
    clock.advance(60_000);
    assert.equal(probe.count('a'), 1);
    await checker.close();
  });

  it('a throwing listener does not stop observations for others', async (t) => {
    const { probe, checker, seen } = setup();
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on('warning', onWarning);
    t.after(() => process.off('warning', onWarning));
    checker.onObservation(() => {
      throw new Error('boom');
    });
    const later: HealthObservation[] = [];
    checker.onObservation((o) => later.push(o));
    checker.setTargets([target('a')]);
    probe.last('a').finish({ ok: true });
    await tick();
    await tick();
    assert.equal(seen.length, 1);
    assert.equal(later.length, 1);
    assert.ok(warnings.some((w) => w.includes('boom')));
    await checker.close();
  });

  it('close() cancels every timer and ignores setTargets afterwards', async () => {
    const { clock, probe, checker } = setup();
    checker.setTargets([target('a'), target('b')]);
    const closing = checker.close();
    for (const c of probe.calls) c.finish({ ok: true });
    await closing;
    assert.equal(clock.pendingTimers(), 0);
    checker.setTargets([target('c')]);
    assert.equal(probe.count('c'), 0);
  });
});
