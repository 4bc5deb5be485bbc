/**
 * Group commit through the control plane (a store that can group its flushes, StoreTransaction): a
 * command is answered only after the flush that covers it, commands queued while a flush runs share
 * the next flush and one publication, a refused command fails alone, and a failed flush fails every
 * command of its group.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../../test/fakes/fake-health-checker.ts';
import { EbbError } from '../shared/errors.ts';
import { InMemoryGroupCommitStore } from '../store/in-memory-state-store.ts';
import { ControlPlane } from './control-plane.ts';

async function setup() {
  const store = new InMemoryGroupCommitStore();
  const dp = new FakeDataPlane();
  const cp = new ControlPlane({ clock: new FakeClock(), store, dataPlanes: [dp], healthChecker: new FakeHealthChecker() });
  await cp.start();
  const lb = await cp.createLoadBalancer({ name: 'web' });
  // Checks off: a registered target is routable at once, so each snapshot shows which registrations it has.
  const tg = await cp.createTargetGroup({ name: 'web', protocol: 'HTTP', port: 80, targetType: 'ip', healthCheck: { enabled: false } });
  await cp.createListener({ loadBalancerArn: lb.arn, protocol: 'HTTP', port: 8080, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
  const answered: string[] = [];
  /** Registers 10.0.0.n, noting its answer. */
  const register = (n: number): Promise<void> =>
    cp.registerTargets(tg.arn, [{ id: `10.0.0.${n}` }]).then(
      () => void answered.push(`${n} ok`),
      (error: unknown) => {
        answered.push(`${n} ${EbbError.is(error) ? error.code : String(error)}`);
        throw error;
      },
    );
  return { store, dp, cp, tg, answered, register };
}

/** Lets queued commands and promise chains run. */
const turns = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

test('commands queued while a flush runs are answered together after the next one, with one publication', async () => {
  const s = await setup();
  s.store.holdFlushes();
  const flushes = s.store.flushes;
  const snapshots = s.dp.snapshots.length;
  const calls = [1, 2, 3, 4].map((n) => s.register(n));
  await turns();
  assert.equal(s.store.commits > 0 && s.store.heldFlushes, 1, 'one flush runs');
  assert.deepEqual(s.answered, [], 'nothing is answered before its flush');
  assert.deepEqual(s.dp.routable(s.tg.arn), ['10.0.0.1:80'], 'the first registration started a group and was published with it');
  s.store.releaseFlush();
  await turns();
  assert.deepEqual(s.answered, ['1 ok']);
  assert.deepEqual(s.dp.routable(s.tg.arn), ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.4:80'], 'the others are published together');
  assert.equal(s.dp.snapshots.length - snapshots, 2, 'two publications for four registrations');
  s.store.releaseFlush();
  await Promise.all(calls);
  assert.deepEqual(s.answered, ['1 ok', '2 ok', '3 ok', '4 ok']);
  assert.equal(s.store.flushes - flushes, 2, 'two flushes for four registrations');
});

test('a refused command writes nothing and fails alone; it is answered after the flush of what came before it', async () => {
  const s = await setup();
  s.store.holdFlushes();
  const commits = s.store.commits;
  const first = s.register(1);
  const refused = s.cp.registerTargets(s.tg.arn, [{ id: 'not-an-address' }]);
  const last = s.register(3);
  let refusedYet = false;
  refused.catch(() => (refusedYet = true));
  await turns();
  assert.equal(refusedYet, false, 'its check read the first registration, which is not durable yet');
  s.store.releaseFlush();
  await turns();
  s.store.releaseFlush();
  await Promise.all([first, last]);
  await assert.rejects(refused, (e: unknown) => EbbError.is(e) && e.code === 'InvalidTarget');
  assert.equal(s.store.commits - commits, 2, 'the refused command wrote nothing');
  assert.deepEqual(s.dp.routable(s.tg.arn), ['10.0.0.1:80', '10.0.0.3:80']);
});

test('a failed flush fails every command of its group, and the store takes no change after it', async () => {
  const s = await setup();
  s.store.holdFlushes();
  const calls = [1, 2, 3].map((n) => s.register(n).catch(() => undefined));
  await turns();
  s.store.releaseFlush(); // the first group: durable
  await turns();
  s.store.releaseFlush(new EbbError('StoreUnavailable', 'A change could not be made durable (EIO); restart ebb'));
  await Promise.all(calls);
  assert.deepEqual(s.answered, ['1 ok', '2 StoreUnavailable', '3 StoreUnavailable']);
  await assert.rejects(s.register(4), /could not be made durable/);
  assert.equal(s.cp.describeTargetHealth(s.tg.arn).length, 3, 'a change refused by the broken store is not applied');
});

test('a deregistration is published inside its command, whatever waits for the next group', async () => {
  const s = await setup();
  await s.register(1);
  await s.register(2);
  s.store.holdFlushes();
  const third = s.register(3);
  await turns(); // 3 started a group and was published with it
  const fourth = s.register(4); // waits for the next group, unpublished
  const deregistered = s.cp.deregisterTargets(s.tg.arn, [{ id: '10.0.0.1' }]);
  await turns();
  assert.deepEqual(s.dp.routable(s.tg.arn), ['10.0.0.2:80', '10.0.0.3:80', '10.0.0.4:80'], 'no new work for the target from its deregistration on (the waiting registration goes with it)');
  s.store.releaseFlush();
  await turns();
  s.store.releaseFlush();
  await Promise.all([third, fourth, deregistered]);
  assert.deepEqual(s.cp.drainRecords().map((r) => [r.targetId, r.outcome]), [['10.0.0.1', 'idle']], 'idle already: its drain ended at once');
});
