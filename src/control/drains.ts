import { randomUUID } from 'node:crypto';
import type { Clock } from '../shared/clock.ts';
import { describeError, ebbError } from '../shared/errors.ts';
import type { TypedEmitter } from '../shared/typed-emitter.ts';
import { attributeNumber, targetGroupAttributesWithDefaults } from '../domain/attributes.ts';
import type { DataPlane, TerminateResult } from '../domain/data-plane-port.ts';
import { targetKey, type TargetGroupRecord, type TargetRegistration } from '../domain/resources.ts';
import type { StoreOp } from '../domain/store-port.ts';
import type { DrainRecordLog } from './drain-records.ts';
import { DrainSampler } from './drain-series.ts';
import type { ControlEvents } from './events.ts';
import type { DeregisterOptions, TargetInput } from './inputs.ts';
import { validatePort } from './names.ts';
import type { DrainProgress, DrainRecord } from './outputs.ts';
import { UnhealthyFlows } from './unhealthy-flows.ts';
import { storedTarget, type DrainState, type HandedOverDrain, type RegisteredTarget, type StoredTarget, type TargetRegistry } from './registered-targets.ts';
import { del, put, type StoreTransaction } from './store-transaction.ts';

export interface DrainsOptions {
  readonly clock: Clock;
  readonly dataPlanes: readonly DataPlane[];
  readonly targets: TargetRegistry;
  readonly records: DrainRecordLog;
  readonly transaction: StoreTransaction;
  readonly events: TypedEmitter<ControlEvents>;
  readonly log: (entry: Record<string, unknown>) => void;
  /** Runs work nobody awaits (timers, data-plane callbacks) in the command queue, retrying it if it fails. */
  readonly inBackground: (what: string, task: () => Promise<void>) => void;
  /** A group by ARN (its name for drain records, its attributes at a deadline); undefined once it is gone. */
  readonly targetGroup: (arn: string) => TargetGroupRecord | undefined;
  /** Publishes a new snapshot (a target's view changed outside a transaction). */
  readonly publish: () => void;
  /**
   * Resolves once the data planes route by the health observed so far: its publication made (health
   * publications may wait their turn) and answered by every data plane.
   */
  readonly routed: () => Promise<void>;
}

/**
 * Registering and deregistering targets, and the drain between: deregistration starts a drain (no new
 * work from that instant); the drain ends when every data plane reports the target idle, or at its
 * deadline (`deregistration_delay.timeout_seconds`), when what remains is cut; registering the target
 * again cancels it; a restart resumes it with the time it had left. Registration lives here because
 * registering a draining target is how a drain is cancelled. Every method that changes state runs
 * inside the command queue; the callbacks (`onIdle`, deadline timers) enter it through `inBackground`.
 * See https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay.
 */
export class Drains {
  readonly #clock: Clock;
  readonly #dataPlanes: readonly DataPlane[];
  readonly #targets: TargetRegistry;
  readonly #records: DrainRecordLog;
  readonly #transaction: StoreTransaction;
  readonly #events: TypedEmitter<ControlEvents>;
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #inBackground: (what: string, task: () => Promise<void>) => void;
  readonly #targetGroup: (arn: string) => TargetGroupRecord | undefined;
  /** What a TCP group's target that fails its checks does to its flows. */
  readonly unhealthyFlows: UnhealthyFlows;
  /** Each drain's work over time, kept in its record (the dashboard's drain charts). */
  readonly #sampler: DrainSampler;

  constructor(options: DrainsOptions) {
    this.#clock = options.clock;
    this.#dataPlanes = options.dataPlanes;
    this.#targets = options.targets;
    this.#records = options.records;
    this.#transaction = options.transaction;
    this.#events = options.events;
    this.#log = options.log;
    this.#inBackground = options.inBackground;
    this.#targetGroup = options.targetGroup;
    this.#sampler = new DrainSampler(options.clock);
    this.unhealthyFlows = new UnhealthyFlows(options);
  }

  /**
   * Restores the stored registrations at start; a drain resumes with the time it had left. Returns the
   * targets whose deadline passed while ebb was down, which the caller ends once it has published.
   */
  restore(stored: readonly StoredTarget[], groupOf: (arn: string) => TargetGroupRecord | undefined, handedOver: readonly HandedOverDrain[] = []): RegisteredTarget[] {
    const expired: RegisteredTarget[] = [];
    const handedOverByKey = new Map(handedOver.map((h) => [h.key, h]));
    const tracking: string[] = [];
    for (const s of stored) {
      const tg = groupOf(s.reg.targetGroupArn);
      if (tg === undefined) continue;
      const target = this.#targets.add(s.reg, tg);
      if (s.drain !== undefined) {
        target.life.deregister();
        const remaining = s.drain.deadline - this.#clock.wallTime();
        // A drain the ebb before this one handed over at a hot restart still knows its work: that ebb's
        // data plane reports it here, so the drain ends early as one begun here does.
        const tracked = handedOverByKey.get(target.key);
        target.drain = {
          startedAt: s.drain.startedAt,
          deadline: s.drain.deadline,
          timeoutSeconds: s.drain.timeoutSeconds,
          completedAtStart: new Map(tracked?.completedAtStart ?? []),
          restored: tracked === undefined,
          timer: null,
        };
        if (remaining <= 0 && tracked === undefined) expired.push(target);
        else {
          // A handed-over drain whose deadline passed during the handover is cut now, in every data plane
          // (the predecessor's, which holds its work, included), as it would have been at its deadline.
          target.drain.timer = this.#clock.setTimer(Math.max(0, remaining), () => this.#onDeadline(target.key));
          // Its series starts now: the samples of the process that began it are gone with it.
          this.#sample(target);
          if (tracked !== undefined) tracking.push(target.key);
        }
      }
      target.lastView = target.life.view();
    }
    // Each handed-over drain looks whether it is idle everywhere; until the predecessor has reported, it is
    // not, and the predecessor's data plane tells again once it has.
    for (const key of tracking) this.onIdle(key);
    return expired;
  }

  /**
   * The drains whose work this process knows (not restored after a crash), with each data plane's
   * completed count at their start: what a hot restart hands to the ebb that takes over.
   */
  handOver(): HandedOverDrain[] {
    const out: HandedOverDrain[] = [];
    for (const t of this.#targets.all()) {
      if (t.drain !== null && !t.drain.restored) out.push({ key: t.key, completedAtStart: [...t.drain.completedAtStart] });
    }
    return out;
  }

  /**
   * Registers checked registrations in `tg`. One that exists is left as it is, except that a draining
   * one is registered again: its drain ends as cancelled and it keeps the health it has.
   */
  async register(tg: TargetGroupRecord, regs: readonly TargetRegistration[], source: 'api' | 'config'): Promise<void> {
    const ops: StoreOp[] = [];
    const cancelled: Array<{ target: RegisteredTarget; record: DrainRecord }> = [];
    const fresh: TargetRegistration[] = [];
    for (const reg of regs) {
      const key = targetKey(reg.targetGroupArn, reg.id, reg.port);
      const existing = this.#targets.get(key);
      if (existing === undefined) {
        if (!fresh.some((f) => f.id === reg.id && f.port === reg.port)) fresh.push({ ...reg, source });
      } else if (existing.drain !== null && !cancelled.some((c) => c.target === existing)) {
        // A target named twice in one call still has one drain to cancel: one record, one event.
        cancelled.push({ target: existing, record: this.#record(existing, 'cancelled', null) });
        ops.push(put('target', key, storedTarget(existing.reg, null)));
      }
    }
    for (const reg of fresh) ops.push(put('target', targetKey(reg.targetGroupArn, reg.id, reg.port), storedTarget(reg, null)));
    if (ops.length === 0) return;
    const records = cancelled.map((c) => c.record);
    ops.push(...this.#records.opsToAdd(records));
    await this.#transaction.transact(ops, () => {
      for (const reg of fresh) this.#targets.reportRegistered(this.#targets.add(reg, tg));
      for (const { target } of cancelled) {
        target.drain?.timer?.cancel();
        this.#sampler.stop(target.key);
        target.drain = null;
        target.life.reregister();
      }
      // A registration only adds to what is routed: the commands of one group commit share one publication.
    }, { publish: 'later' });
    this.#records.ended(records);
  }

  /**
   * Starts draining the named registrations of `tg` (unknown or already draining ones are skipped, as
   * AWS succeeds for them). The delay is the call's, else the group's attribute; 0 cuts at once.
   */
  async deregister(tg: TargetGroupRecord, inputs: readonly TargetInput[], options?: DeregisterOptions): Promise<void> {
    const timeoutSeconds =
      options?.timeoutSeconds ?? attributeNumber(targetGroupAttributesWithDefaults(tg.attributes, tg.protocol), 'deregistration_delay.timeout_seconds', 300);
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 0 || timeoutSeconds > 3600) {
      throw ebbError('ValidationError', `The deregistration delay must be an integer from 0 to 3600 seconds; got ${String(timeoutSeconds)}`);
    }
    const targets: RegisteredTarget[] = [];
    for (const t of inputs) {
      if (t.id.length === 0) throw ebbError('ValidationError', 'A target needs an Id');
      if (t.port !== undefined) validatePort(t.port, 'Target port');
      const target = this.#targets.get(targetKey(tg.arn, t.id, t.port ?? tg.port));
      if (target !== undefined && target.drain === null && !targets.includes(target)) targets.push(target);
    }
    if (targets.length === 0) return;
    const startedAt = this.#clock.wallTime();
    const deadline = startedAt + timeoutSeconds * 1000;
    const ops = targets.map((t) => put('target', t.key, storedTarget(t.reg, { startedAt, deadline, timeoutSeconds })));
    await this.#transaction.transact(ops, () => {
      for (const target of targets) {
        target.life.deregister();
        const completedAtStart = new Map(this.#dataPlanes.map((dp) => [dp.id, dp.activity(target.key).completed]));
        const drain: DrainState = { startedAt, deadline, timeoutSeconds, completedAtStart, restored: false, timer: null };
        target.drain = drain;
        // Asked before the snapshot that stops routing to the target is published (after this callback).
        for (const dp of this.#dataPlanes) {
          void dp.completedWhenApplied?.(target.key).then((n) => {
            if (target.drain === drain) completedAtStart.set(dp.id, n);
          });
        }
        this.#sample(target);
      }
    });
    // From here no data plane routes a new request to these targets.
    for (const target of targets) {
      const { id, port } = target.reg;
      this.#events.emit('drain:start', { targetGroupArn: tg.arn, targetId: id, port, startedAt, deadline, timeoutSeconds });
      this.#log({ event: 'drain:start', targetGroup: tg.name, target: `${id}:${port}`, timeoutSeconds });
    }
    // The deregistration is saved, so the call succeeds whatever follows. Each drain's end is its own:
    // every deadline is armed before anything that can fail, and an end that cannot be saved now is
    // retried in the background, so no target is left draining with nothing to end it.
    if (timeoutSeconds > 0) {
      for (const target of targets) {
        if (target.drain !== null) target.drain.timer = this.#clock.setTimer(timeoutSeconds * 1000, () => this.#onDeadline(target.key));
      }
    }
    for (const target of targets) {
      if (timeoutSeconds === 0) await this.#endNow(target, 'deadline');
      else if (this.#idleEverywhere(target.key)) await this.#endNow(target, 'idle');
    }
  }

  /** Ends a drain inside the command that started it; if that fails, the end is retried in the background. */
  async #endNow(target: RegisteredTarget, outcome: 'idle' | 'deadline'): Promise<void> {
    let cut: TerminateResult | null = null;
    try {
      if (outcome === 'deadline') cut = await this.#cutAtDeadline(target);
      await this.finish(target, outcome, cut);
    } catch (error) {
      const { id, port, targetGroupArn } = target.reg;
      this.#log({
        event: 'drain:end-deferred',
        level: 'error',
        targetGroup: this.#targetGroup(targetGroupArn)?.name ?? '',
        target: `${id}:${port}`,
        outcome,
        error: describeError(error),
      });
      if (outcome === 'deadline') this.#onDeadline(target.key, cut);
      else this.onIdle(target.key);
    }
  }

  /** Ends a drain: the registration is gone, the record kept. Runs inside the queue. */
  async finish(target: RegisteredTarget, outcome: 'idle' | 'deadline', cut: TerminateResult | null): Promise<void> {
    if (target.drain === null || this.#targets.get(target.key) !== target) return;
    const record = this.#record(target, outcome, cut);
    await this.#transaction.transact([del('target', target.key), ...this.#records.opsToAdd([record])], () => {
      target.drain?.timer?.cancel();
      this.#sampler.stop(target.key);
      target.life.remove();
      this.#targets.delete(target.key);
      this.#targets.reportChange(target);
    });
    this.#records.ended([record]);
  }

  /**
   * What deleting groups does to their registrations, for the caller to commit with the groups' own
   * deletion: the registrations go (each reported as a `target:state` event), and drains in progress
   * end as cancelled. `apply` runs after the commit, `ended` after the publication.
   */
  groupDeletion(targetGroupArns: readonly string[]): { targetOps: StoreOp[]; recordOps: StoreOp[]; apply: () => void; ended: () => void } {
    const targets = targetGroupArns.flatMap((arn) => this.#targets.of(arn));
    const records = targets.filter((t) => t.drain !== null).map((t) => this.#record(t, 'cancelled', null));
    return {
      targetOps: targets.map((t) => del('target', t.key)),
      recordOps: this.#records.opsToAdd(records),
      apply: () => {
        for (const t of targets) {
          t.drain?.timer?.cancel();
          this.#sampler.stop(t.key);
          t.life.remove();
          this.#targets.delete(t.key);
          // Each target leaves as a drain that ends does: a target:state event to unused.
          this.#targets.reportChange(t);
        }
      },
      ended: () => this.#records.ended(records),
    };
  }

  /** A draining target's progress for DescribeTargetHealth; undefined when it does not drain. */
  progress(target: RegisteredTarget): DrainProgress | undefined {
    if (target.drain === null) return undefined;
    const activity = this.#activity(target.key);
    return {
      startedAt: target.drain.startedAt,
      deadline: target.drain.deadline,
      requestsInFlight: activity.requests,
      tunnelsOpen: activity.tunnels,
      series: this.#sampler.samples(target.key),
    };
  }

  /** Cancels every deadline timer (at close). */
  stopTimers(): void {
    this.unhealthyFlows.stopTimers();
    for (const target of this.#targets.all()) target.drain?.timer?.cancel();
    this.#sampler.stopAll();
  }

  /** Samples the drain of `target` until it ends (or the registration is replaced). */
  #sample(target: RegisteredTarget): void {
    if (target.drain === null) return;
    this.#sampler.start(target.key, target.drain.startedAt, () =>
      this.#targets.get(target.key) === target && target.drain !== null ? this.#activity(target.key) : null,
    );
  }

  /** A data plane reports a key that no longer receives new work as idle. */
  onIdle(key: string): void {
    const target = this.#targets.get(key);
    if (target?.drain == null || target.drain.restored) return;
    this.#inBackground(`end the drain of ${key}`, async () => {
      const current = this.#targets.get(key);
      if (current !== target || target.drain === null || !this.#idleEverywhere(key)) return;
      await this.finish(target, 'idle', null);
    });
  }

  /** Ends the drain at its deadline, in the background; `alreadyCut` is what an earlier attempt cut. */
  #onDeadline(key: string, alreadyCut: TerminateResult | null = null): void {
    // Kept across retries: what was cut is cut once, and counted once.
    let cut = alreadyCut;
    this.#inBackground(`end the drain of ${key} at its deadline`, async () => {
      const target = this.#targets.get(key);
      if (target === undefined || target.drain === null) return;
      cut ??= await this.#cutAtDeadline(target);
      await this.finish(target, 'deadline', cut);
    });
  }

  /**
   * What is cut at a drain's deadline: everything left, except the flows of a TCP group without
   * `deregistration_delay.connection_termination.enabled`, which NLB leaves open until they close
   * (the target is `unused` all the same; the record counts the flows left open).
   */
  async #cutAtDeadline(target: RegisteredTarget): Promise<TerminateResult> {
    if (!this.#keepsFlows(target.reg.targetGroupArn)) return this.#terminateEverywhere(target.key);
    const flows = this.#activity(target.key).tunnels;
    this.#log({ event: 'drain:flows-left-open', targetGroup: this.#targetGroup(target.reg.targetGroupArn)?.name ?? '', target: `${target.reg.id}:${target.reg.port}`, flows });
    return { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 };
  }

  /** A TCP group without connection termination: its flows outlive a drain's deadline. */
  #keepsFlows(groupArn: string): boolean {
    const tg = this.#targetGroup(groupArn);
    return tg?.protocol === 'TCP' && targetGroupAttributesWithDefaults(tg.attributes, tg.protocol)['deregistration_delay.connection_termination.enabled'] !== 'true';
  }

  async #terminateEverywhere(key: string): Promise<TerminateResult> {
    const results = await Promise.all(this.#dataPlanes.map((dp) => dp.terminate(key)));
    return results.reduce(
      (sum, r) => ({
        requestsCut: sum.requestsCut + r.requestsCut,
        tunnelsClosed: sum.tunnelsClosed + r.tunnelsClosed,
        connectionsClosed: sum.connectionsClosed + r.connectionsClosed,
      }),
      { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 },
    );
  }

  /** No work on the target in any data plane, each sure of its counts (see `TargetActivity.unsettled`). */
  #idleEverywhere(key: string): boolean {
    let work = 0;
    for (const dp of this.#dataPlanes) {
      const a = dp.activity(key);
      if (a.unsettled === true) return false;
      work += a.requests + a.tunnels;
    }
    return work === 0;
  }

  #activity(key: string): { requests: number; tunnels: number } {
    let requests = 0;
    let tunnels = 0;
    for (const dp of this.#dataPlanes) {
      const a = dp.activity(key);
      requests += a.requests;
      tunnels += a.tunnels;
    }
    return { requests, tunnels };
  }

  #record(target: RegisteredTarget, outcome: DrainRecord['outcome'], cut: TerminateResult | null): DrainRecord {
    const drain = target.drain;
    let completed = 0;
    if (drain !== null) {
      for (const dp of this.#dataPlanes) {
        const start = drain.completedAtStart.get(dp.id);
        if (start !== undefined) completed += dp.activity(target.key).completed - start;
      }
    }
    return {
      id: randomUUID(),
      targetGroupArn: target.reg.targetGroupArn,
      targetGroupName: this.#targetGroup(target.reg.targetGroupArn)?.name ?? '',
      targetId: target.reg.id,
      port: target.reg.port,
      startedAt: drain?.startedAt ?? this.#clock.wallTime(),
      endedAt: this.#clock.wallTime(),
      timeoutSeconds: drain?.timeoutSeconds ?? 0,
      outcome,
      requestsCompleted: Math.max(0, completed),
      requestsCut: cut?.requestsCut ?? 0,
      tunnelsClosed: cut?.tunnelsClosed ?? 0,
      connectionsClosed: cut?.connectionsClosed ?? 0,
      // Nothing was cut, so what is still open on the target is what the deadline left open.
      ...(outcome === 'deadline' && this.#keepsFlows(target.reg.targetGroupArn) ? { flowsLeftOpen: this.#activity(target.key).tunnels } : {}),
      series: this.#sampler.final(target.key, this.#activity(target.key)),
    };
  }
}
