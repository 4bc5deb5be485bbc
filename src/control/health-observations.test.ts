import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { defaultHealthCheck } from '../domain/health-check.ts';
import type { TargetGroupRecord } from '../domain/resources.ts';
import { TypedEmitter } from '../shared/typed-emitter.ts';
import type { ControlEvents } from './events.ts';
import { HealthObservations, SPACING_MS_PER_REGISTRATION, SPREAD_FROM_REGISTRATIONS } from './health-observations.ts';
import { TargetRegistry } from './registered-targets.ts';

const ARN = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef';
const group = { arn: ARN, name: 'web', protocol: 'HTTP', port: 80, healthCheck: { ...defaultHealthCheck('HTTP'), healthyThresholdCount: 2, unhealthyThresholdCount: 2 } } as unknown as TargetGroupRecord;

function setup(registrations: number) {
  const clock = new FakeClock();
  const targets = new TargetRegistry(new TypedEmitter<ControlEvents>(), clock);
  const keys: string[] = [];
  for (let i = 0; i < registrations; i++) {
    const target = targets.add({ targetGroupArn: ARN, id: '10.0.0.1', port: 1000 + i, source: 'api' }, group);
    // As a publication does: the target is being checked.
    target.life.markChecking();
    targets.reportChange(target);
    keys.push(target.key);
  }
  const published: number[] = [];
  const observed: string[] = [];
  const observations = new HealthObservations({
    clock,
    targets,
    targetGroup: (arn) => (arn === ARN ? group : undefined),
    publish: () => published.push(clock.now()),
    observed: (t, before) => observed.push(`${t.reg.port}:${before}->${t.life.health}`),
  });
  /** Two passes: the healthy threshold, so the target's health changes. */
  const turnHealthy = (key: string): void => {
    observations.observe({ key, ok: true });
    observations.observe({ key, ok: true });
  };
  return { clock, keys, published, observed, observations, turnHealthy };
}

test('below the threshold every change of what is routed is published at once; results that change nothing are not', () => {
  const s = setup(3);
  const [a, b] = s.keys as [string, string];
  s.observations.observe({ key: a, ok: true });
  assert.deepEqual(s.published, [], 'one pass of two changes nothing routed');
  s.observations.observe({ key: a, ok: true });
  s.turnHealthy(b);
  assert.deepEqual(s.published, [0, 0], 'two targets turned healthy at the same instant: two publications');
  assert.deepEqual(s.observed, ['1000:unknown->unknown', '1000:unknown->healthy', '1001:unknown->unknown', '1001:unknown->healthy'], 'every result is told on');
  s.observations.observe({ key: 'no such key', ok: true });
  assert.equal(s.observed.length, 4);
});

test('from the threshold on, health publications are spaced by the number of registrations, the changes between published together', () => {
  const s = setup(SPREAD_FROM_REGISTRATIONS * 2);
  const spacing = SPREAD_FROM_REGISTRATIONS * 2 * SPACING_MS_PER_REGISTRATION;
  s.turnHealthy(s.keys[0] as string);
  assert.deepEqual(s.published, [0], 'the first change is published at once');
  for (const key of s.keys.slice(1, 500)) s.turnHealthy(key);
  assert.deepEqual(s.published, [0], 'the next ones wait');
  s.clock.advance(spacing - 1);
  assert.deepEqual(s.published, [0]);
  s.clock.advance(1);
  assert.deepEqual(s.published, [0, spacing], 'and are published together');
  s.clock.advance(spacing * 3);
  s.turnHealthy(s.keys[600] as string);
  assert.deepEqual(s.published, [0, spacing, spacing * 4], 'a change after a quiet spell is published at once');
});

test('close drops a publication waiting for its time, and applies nothing more', () => {
  const s = setup(SPREAD_FROM_REGISTRATIONS);
  s.turnHealthy(s.keys[0] as string);
  s.turnHealthy(s.keys[1] as string);
  assert.equal(s.clock.pendingTimers(), 1);
  s.observations.close();
  assert.equal(s.clock.pendingTimers(), 0);
  s.turnHealthy(s.keys[2] as string);
  s.clock.advance(60_000);
  assert.deepEqual(s.published, [0]);
  assert.equal(s.observed.length, 4, 'nothing observed after close');
});

test('published() resolves once the changes observed so far are published: at once, or when a spaced publication is made', async () => {
  const s = setup(SPREAD_FROM_REGISTRATIONS);
  const spacing = SPREAD_FROM_REGISTRATIONS * SPACING_MS_PER_REGISTRATION;
  /** Whether `p` has resolved by the next turn of the event loop (never awaited past it, so a pending one fails here rather than hangs). */
  const resolvedSoon = async (p: Promise<void>): Promise<boolean> => {
    let done = false;
    void p.then(() => (done = true));
    await new Promise<void>((resolve) => setImmediate(resolve));
    return done;
  };
  s.turnHealthy(s.keys[0] as string);
  assert.equal(await resolvedSoon(s.observations.published()), true, 'nothing waits: resolved at once');
  s.turnHealthy(s.keys[1] as string);
  const waited = s.observations.published();
  assert.equal(await resolvedSoon(waited), false, 'a publication waits for its time');
  s.clock.advance(spacing);
  assert.deepEqual(s.published, [0, spacing]);
  assert.equal(await resolvedSoon(waited), true, 'resolved with that publication');
  s.turnHealthy(s.keys[2] as string);
  const dropped = s.observations.published();
  s.observations.close();
  assert.equal(await resolvedSoon(dropped), true, 'a waiter is let go when its publication is dropped');
});
