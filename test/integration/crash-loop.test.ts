/**
 * Crash safety end to end (issue 3 §4, §5): `ebb serve` is killed with SIGKILL at a random moment
 * while a JS SDK client issues changes back to back, 30 times over one state directory. Each restart
 * must start cleanly (the store opens, nothing logged at level error, nothing on stderr), and the state
 * it serves must be exactly what the client saw acknowledged: every acknowledged create, register,
 * attribute change, tag and delete, plus at most the one change whose answer the kill cut off (it may
 * or may not have been committed; either is correct, anything else is a loss).
 *
 * Repeat a run with EBB_CRASH_SEED=<seed printed in the diagnostics>; EBB_CRASH_ROUNDS changes the
 * number of rounds (20 by default, which keeps the CI run in its time on two cores; a soak runs more,
 * e.g. EBB_CRASH_ROUNDS=200).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  AddTagsCommand,
  CreateTargetGroupCommand,
  DeleteTargetGroupCommand,
  DeregisterTargetsCommand,
  DescribeTagsCommand,
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  type ElasticLoadBalancingV2Client,
  ModifyTargetGroupAttributesCommand,
  RegisterTargetsCommand,
  RemoveTagsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { Cleanup, sleep, tempDir } from './harness.ts';
import { kill, prng, serve } from './process-harness.ts';

const ROUNDS = Math.max(1, Number(process.env['EBB_CRASH_ROUNDS'] ?? 20));
const SEED = Number(process.env['EBB_CRASH_SEED'] ?? Date.now() % 1_000_000);
const DELAY_KEY = 'deregistration_delay.timeout_seconds';
const MAX_GROUPS = 8;

// ------------------------------------------------------------------ the model

/** A registered target, or one deregistered while its answer was lost (its drain may still run, or be over). */
type TargetMark = 'registered' | 'draining';

interface GroupState {
  /** '' while unknown (a create whose answer was cut off). */
  arn: string;
  delay: string;
  tags: Record<string, string>;
  targets: Record<string, TargetMark>;
}

/** Target groups by name. */
type State = Map<string, GroupState>;

interface Change {
  readonly kind: 'create' | 'register' | 'deregister' | 'modify' | 'tag' | 'untag' | 'delete';
  readonly describe: string;
  send(client: ElasticLoadBalancingV2Client): Promise<{ arn?: string }>;
  /** The state once this change is committed. */
  apply(state: State, arn?: string): State;
  /** The state if the change was committed but its answer cut off by the kill (default: `apply`). */
  applyCutOff?(state: State): State;
}

function clone(state: State): State {
  return new Map([...state].map(([name, g]) => [name, { arn: g.arn, delay: g.delay, tags: { ...g.tags }, targets: { ...g.targets } }]));
}

function edit(state: State, name: string, fn: (g: GroupState) => void): State {
  const next = clone(state);
  const g = next.get(name);
  if (g !== undefined) fn(g);
  return next;
}

/** Differences between what the model expects and what ebb serves (empty when they agree). */
function differences(expected: State, actual: State): string[] {
  const out: string[] = [];
  for (const name of new Set([...expected.keys(), ...actual.keys()])) {
    const e = expected.get(name);
    const a = actual.get(name);
    if (e === undefined) {
      out.push(`${name}: present, but never created or deleted (acknowledged)`);
      continue;
    }
    if (a === undefined) {
      out.push(`${name}: missing`);
      continue;
    }
    if (e.arn !== '' && e.arn !== a.arn) out.push(`${name}: ARN ${a.arn}, expected ${e.arn}`);
    if (e.delay !== a.delay) out.push(`${name}: ${DELAY_KEY} ${a.delay}, expected ${e.delay}`);
    if (JSON.stringify(sorted(e.tags)) !== JSON.stringify(sorted(a.tags))) out.push(`${name}: tags ${JSON.stringify(sorted(a.tags))}, expected ${JSON.stringify(sorted(e.tags))}`);
    for (const t of new Set([...Object.keys(e.targets), ...Object.keys(a.targets)])) {
      const et = e.targets[t];
      const at = a.targets[t];
      const ok = et === undefined ? at === undefined : et === 'registered' ? at === 'registered' : at !== 'registered';
      if (!ok) out.push(`${name}: target ${t} is ${at ?? 'absent'}, expected ${et ?? 'absent'}`);
    }
  }
  return out;
}

function sorted(r: Record<string, string>): Array<[string, string]> {
  return Object.entries(r).sort(([a], [b]) => a.localeCompare(b));
}

/** Everything ebb serves about its target groups, read through the API. */
async function readState(client: ElasticLoadBalancingV2Client): Promise<State> {
  const groups: Array<{ name: string; arn: string }> = [];
  let marker: string | undefined;
  for (let page = 0; page < 20; page++) {
    const r = await client.send(new DescribeTargetGroupsCommand(marker === undefined ? {} : { Marker: marker }));
    for (const g of r.TargetGroups ?? []) groups.push({ name: g.TargetGroupName ?? '', arn: g.TargetGroupArn ?? '' });
    marker = r.NextMarker;
    if (marker === undefined || marker === '') break;
  }
  const state: State = new Map();
  const tagsByArn = new Map<string, Record<string, string>>();
  for (let i = 0; i < groups.length; i += 20) {
    const r = await client.send(new DescribeTagsCommand({ ResourceArns: groups.slice(i, i + 20).map((g) => g.arn) }));
    for (const d of r.TagDescriptions ?? []) tagsByArn.set(d.ResourceArn ?? '', Object.fromEntries((d.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])));
  }
  for (const g of groups) {
    const attrs = await client.send(new DescribeTargetGroupAttributesCommand({ TargetGroupArn: g.arn }));
    const health = await client.send(new DescribeTargetHealthCommand({ TargetGroupArn: g.arn }));
    const targets: Record<string, TargetMark> = {};
    for (const d of health.TargetHealthDescriptions ?? []) {
      targets[`${d.Target?.Id ?? ''}:${String(d.Target?.Port)}`] = d.TargetHealth?.State === 'draining' ? 'draining' : 'registered';
    }
    state.set(g.name, {
      arn: g.arn,
      delay: attrs.Attributes?.find((a) => a.Key === DELAY_KEY)?.Value ?? '(none)',
      tags: tagsByArn.get(g.arn) ?? {},
      targets,
    });
  }
  return state;
}

// ------------------------------------------------------------------ the changes

/** Picks the next change for the acknowledged state `model` (only groups whose ARN is known are touched). */
function nextChange(model: State, round: number, seq: number, rand: () => number): Change {
  const known = [...model].filter(([, g]) => g.arn !== '');
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  let r = rand();
  if (known.length < 2) r = 0;
  else if (known.length >= MAX_GROUPS && r < 0.18) r = 0.95;
  if (r < 0.18) {
    const name = `crash-r${round}-s${seq}`;
    return {
      kind: 'create',
      describe: `CreateTargetGroup ${name}`,
      send: async (c) => {
        const out = await c.send(
          new CreateTargetGroupCommand({ Name: name, Protocol: 'HTTP', Port: 80, TargetType: 'ip', HealthCheckEnabled: false, Tags: [{ Key: 'round', Value: String(round) }] }),
        );
        return { arn: out.TargetGroups?.[0]?.TargetGroupArn ?? '' };
      },
      apply: (s, arn) => {
        const next = clone(s);
        next.set(name, { arn: arn ?? '', delay: '300', tags: { round: String(round) }, targets: {} });
        return next;
      },
    };
  }
  const [name, g] = pick(known);
  const registered = Object.keys(g.targets).filter((t) => g.targets[t] === 'registered');
  if (r < 0.4 || (r >= 0.76 && r < 0.86 && registered.length === 0)) {
    const id = `10.${round}.${(seq >> 8) & 255}.${seq & 255}`;
    return {
      kind: 'register',
      describe: `RegisterTargets ${name} ${id}:80,81`,
      send: async (c) => {
        await c.send(new RegisterTargetsCommand({ TargetGroupArn: g.arn, Targets: [{ Id: id, Port: 80 }, { Id: id, Port: 81 }] }));
        return {};
      },
      apply: (s) => edit(s, name, (x) => Object.assign(x.targets, { [`${id}:80`]: 'registered', [`${id}:81`]: 'registered' })),
    };
  }
  if (r < 0.58) {
    const delay = String((round * 100 + seq) % 3601);
    return {
      kind: 'modify',
      describe: `ModifyTargetGroupAttributes ${name} ${DELAY_KEY}=${delay}`,
      send: async (c) => {
        await c.send(new ModifyTargetGroupAttributesCommand({ TargetGroupArn: g.arn, Attributes: [{ Key: DELAY_KEY, Value: delay }] }));
        return {};
      },
      apply: (s) => edit(s, name, (x) => (x.delay = delay)),
    };
  }
  if (r < 0.76) {
    const key = `k${seq % 5}`;
    const value = `r${round}-s${seq}`;
    return {
      kind: 'tag',
      describe: `AddTags ${name} ${key}=${value}`,
      send: async (c) => {
        await c.send(new AddTagsCommand({ ResourceArns: [g.arn], Tags: [{ Key: key, Value: value }] }));
        return {};
      },
      apply: (s) => edit(s, name, (x) => (x.tags[key] = value)),
    };
  }
  if (r < 0.86) {
    const target = pick(registered);
    const [id = '', port = ''] = target.split(':');
    return {
      kind: 'deregister',
      describe: `DeregisterTargets ${name} ${target}`,
      send: async (c) => {
        await c.send(new DeregisterTargetsCommand({ TargetGroupArn: g.arn, Targets: [{ Id: id, Port: Number(port) }] }));
        return {};
      },
      // Not behind a listener, the target has nothing in flight: acknowledged means gone.
      apply: (s) => edit(s, name, (x) => delete x.targets[target]),
      // Cut off between "draining" and "gone", it is restored as a drain that runs to its deadline.
      applyCutOff: (s) => edit(s, name, (x) => (x.targets[target] = 'draining')),
    };
  }
  if (r < 0.9) {
    const keys = Object.keys(g.tags).filter((k) => k !== 'round');
    const key = keys.length > 0 ? pick(keys) : 'k0';
    return {
      kind: 'untag',
      describe: `RemoveTags ${name} ${key}`,
      send: async (c) => {
        await c.send(new RemoveTagsCommand({ ResourceArns: [g.arn], TagKeys: [key] }));
        return {};
      },
      apply: (s) => edit(s, name, (x) => delete x.tags[key]),
    };
  }
  // Delete the oldest known group.
  const [oldName, old] = known[0] as [string, GroupState];
  return {
    kind: 'delete',
    describe: `DeleteTargetGroup ${oldName}`,
    send: async (c) => {
      await c.send(new DeleteTargetGroupCommand({ TargetGroupArn: old.arn }));
      return { arn: old.arn };
    },
    apply: (s) => {
      const next = clone(s);
      next.delete(oldName);
      return next;
    },
  };
}

// ------------------------------------------------------------------ the test

test(`crash loop: ${ROUNDS} rounds of SIGKILL while an SDK client changes target groups; every acknowledged change survives`, { timeout: 150_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const stateDir = join(await tempDir(c), 'state');
  const rand = prng(SEED);
  const t0 = Date.now();

  let model: State = new Map();
  let pending: Change | null = null;
  let seq = 0;
  const acked = new Map<Change['kind'], number>();
  let ackedTotal = 0;
  let ackedUnverified = 0;
  let verified = 0;
  const losses: string[] = [];
  let cutApplied = 0;
  let cutNotApplied = 0;
  let deletedLastRound: string[] = [];
  const startups: number[] = [];
  const killAfter: number[] = [];
  const exits: string[] = [];

  /** Starts ebb, checks it started cleanly, and checks its state against the model. */
  const startAndVerify = async (round: number): Promise<Awaited<ReturnType<typeof serve>>> => {
    const s = await serve(c, stateDir);
    startups.push(s.startupMs);
    const actual = await readState(s.client);
    const notApplied = differences(model, actual);
    let resolved = notApplied.length === 0;
    if (pending !== null) {
      if (resolved) cutNotApplied++;
      else if (differences((pending.applyCutOff ?? pending.apply)(model), actual).length === 0) {
        resolved = true;
        cutApplied++;
      }
    }
    if (resolved) verified += ackedUnverified;
    else losses.push(`round ${round} (after ${pending === null ? 'no cut-off change' : `cut-off ${pending.describe}`}): ${notApplied.join('; ')}`);
    ackedUnverified = 0;
    // Acknowledged deletes are gone by ARN as well as from the listing.
    for (const arn of deletedLastRound) {
      const err = await s.client.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [arn] })).then(
        () => null,
        (e: unknown) => e as { name: string },
      );
      if (err?.name !== 'TargetGroupNotFoundException') losses.push(`round ${round}: deleted ${arn} is still there (${err?.name ?? 'found'})`);
    }
    // Adopt what ebb serves (ARNs of cut-off creates, drains that ended) as the model from here.
    model = actual;
    pending = null;
    const problems = s.proc.problems();
    assert.deepEqual(problems, [], `round ${round}: ebb logged errors at start`);
    assert.equal(s.proc.stderr(), '', `round ${round}: ebb wrote to stderr`);
    return s;
  };

  for (let round = 1; round <= ROUNDS; round++) {
    const s = await startAndVerify(round);
    assert.deepEqual(losses, [], 'acknowledged changes were lost');
    const killMs = 50 + Math.floor(rand() * 350);
    killAfter.push(killMs);
    deletedLastRound = [];
    let killed = false;
    const failure: { error: Error | null } = { error: null };
    const client = (async (): Promise<void> => {
      for (let i = 0; i < 10_000 && !killed; i++) {
        const change = nextChange(model, round, ++seq, rand);
        pending = change;
        let out: { arn?: string };
        try {
          out = await change.send(s.client);
        } catch (error) {
          if (killed) return; // cut off by the kill: stays pending
          throw new Error(`${change.describe} failed while ebb was running: ${(error as Error).message}`, { cause: error });
        }
        // Acknowledged: the answer arrived (even if the kill has been sent since).
        model = change.apply(model, out.arn);
        pending = null;
        ackedTotal++;
        ackedUnverified++;
        acked.set(change.kind, (acked.get(change.kind) ?? 0) + 1);
        if (change.kind === 'delete' && out.arn !== undefined) deletedLastRound.push(out.arn);
      }
    })().catch((error: unknown) => {
      failure.error ??= error as Error;
    });
    await sleep(killMs);
    killed = true;
    const how = await kill(s.proc, 'SIGKILL');
    exits.push(String(how));
    await client;
    s.client.destroy();
    if (failure.error !== null) throw failure.error;
    assert.equal(how, 'SIGKILL', `round ${round}: ebb should have been killed, not exited on its own (${s.proc.stderr()})`);
  }

  // One last start: the state of the last round is verified too, then ebb stops gracefully.
  const last = await startAndVerify(ROUNDS + 1);
  const code = await kill(last.proc, 'SIGTERM');
  const elapsed = Date.now() - t0;
  const avg = (xs: number[]): number => Math.round(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length));
  t.diagnostic(
    `seed ${SEED}; ${ROUNDS} rounds killed with SIGKILL after ${Math.min(...killAfter)}-${Math.max(...killAfter)} ms (avg ${avg(killAfter)}); ` +
      `${ackedTotal} changes acknowledged (${[...acked].map(([k, v]) => `${k} ${v}`).join(', ')}), ${verified} verified after a restart, ` +
      `${losses.length} lost; changes cut off by the kill: ${cutApplied} found committed, ${cutNotApplied} not; ` +
      `startup ${Math.min(...startups)}-${Math.max(...startups)} ms (avg ${avg(startups)}); ${model.size} target groups at the end; total ${elapsed} ms`,
  );
  assert.deepEqual(losses, [], 'acknowledged changes were lost');
  assert.equal(verified, ackedTotal, 'every acknowledged change was checked after a restart');
  assert.ok(ackedTotal >= ROUNDS, `the client should get changes acknowledged in most rounds (${ackedTotal})`);
  assert.equal(code, 0, `ebb should stop cleanly on SIGTERM: ${last.proc.stderr()}`);
});
