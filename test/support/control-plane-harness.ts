/**
 * The control plane's unit tests' shared set-up (src/control/control-plane*.test.ts): a ControlPlane on
 * the fake clock, an in-memory store, fake data planes and a fake health checker, with one load balancer,
 * one listener and one target group of two targets; a commit made to fail; queued work let run.
 */
import { FakeClock } from '../fakes/fake-clock.ts';
import { FakeDataPlane } from '../fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../fakes/fake-health-checker.ts';
import { ControlPlane } from '../../src/control/control-plane.ts';
import type { TargetStateEvent } from '../../src/control/events.ts';
import type { DrainRecord } from '../../src/control/outputs.ts';
import { targetKey } from '../../src/domain/resources.ts';
import { EbbError } from '../../src/shared/errors.ts';
import { InMemoryStateStore } from '../../src/store/in-memory-state-store.ts';

export interface SetupOptions {
  /** The group's deregistration delay, seconds (10). */
  readonly delay?: number;
  /** The data planes' ids (default `dp0`, `dp1`, … for `dataPlanes` of them, 1). */
  readonly dataPlaneIds?: readonly string[];
  readonly dataPlanes?: number;
  readonly drainRecordLimit?: number;
  /** How far the monotonic clock has run before the control plane starts (0). */
  readonly clockAdvanceMs?: number;
}

export async function setup(options: SetupOptions = {}) {
  const clock = new FakeClock();
  clock.advance(options.clockAdvanceMs ?? 0);
  const store = new InMemoryStateStore();
  const ids = options.dataPlaneIds ?? Array.from({ length: options.dataPlanes ?? 1 }, (_, i) => `dp${i}`);
  const dps = ids.map((id) => new FakeDataPlane(id));
  const health = new FakeHealthChecker();
  const cp = new ControlPlane({ clock, store, dataPlanes: dps, healthChecker: health, drainRecordLimit: options.drainRecordLimit ?? 1000 });
  await cp.start();
  const states: TargetStateEvent[] = [];
  const drains: DrainRecord[] = [];
  cp.events.on('target:state', (e) => states.push(e));
  cp.events.on('drain:end', (r) => drains.push(r));
  const lb = await cp.createLoadBalancer({ name: 'web' });
  const tg = await cp.createTargetGroup({
    name: 'web',
    protocol: 'HTTP',
    port: 80,
    targetType: 'ip',
    healthCheck: { intervalSeconds: 5, timeoutSeconds: 2, healthyThresholdCount: 2, unhealthyThresholdCount: 2 },
    attributes: { 'deregistration_delay.timeout_seconds': String(options.delay ?? 10) },
  });
  await cp.createListener({ loadBalancerArn: lb.arn, protocol: 'HTTP', port: 8080, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
  await cp.registerTargets(tg.arn, [
    { id: '127.0.0.1', port: 3001 },
    { id: '127.0.0.1', port: 3002 },
  ]);
  const a = targetKey(tg.arn, '127.0.0.1', 3001);
  const b = targetKey(tg.arn, '127.0.0.1', 3002);
  const stateOf = (port: number) => cp.describeTargetHealth(tg.arn, [{ id: '127.0.0.1', port }])[0]?.health;
  return { clock, store, dps, dp: dps[0] as FakeDataPlane, health, cp, tg, lb, a, b, states, drains, stateOf };
}

/** Makes the `n`th commit from now fail (as a full disk would), changing nothing; the others go through. */
export function failCommit(store: InMemoryStateStore, n: number): void {
  const commit = store.commit.bind(store);
  let calls = 0;
  store.commit = (ops) => {
    calls += 1;
    if (calls === n) return Promise.reject(new EbbError('StoreUnavailable', 'The state store could not write (simulated).'));
    return commit(ops);
  };
}

/** Lets queued control-plane work (promise chains) run. */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
