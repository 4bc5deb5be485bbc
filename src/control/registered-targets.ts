import type { Clock, TimerHandle } from '../shared/clock.ts';
import { ebbError } from '../shared/errors.ts';
import type { TypedEmitter } from '../shared/typed-emitter.ts';
import type { HealthObservation } from '../domain/health-port.ts';
import { targetKey, type TargetGroupRecord, type TargetRegistration } from '../domain/resources.ts';
import type { TargetHealthView } from '../domain/target-health.ts';
import { sameView, TargetLifecycle } from '../domain/target-lifecycle.ts';
import type { ControlEvents } from './events.ts';
import type { TargetInput } from './inputs.ts';
import type { DrainProgress, TargetHealthDescription } from './outputs.ts';
import { healthCheckPort } from './routing-publication.ts';

/** A drain in progress: from deregistration until the target is idle everywhere or its deadline passes. */
export interface DrainState {
  /** Wall-clock ms. */
  readonly startedAt: number;
  /** Wall-clock ms. */
  readonly deadline: number;
  readonly timeoutSeconds: number;
  /**
   * Per data plane, its completed-request counter when the drain began there (for a data plane in
   * another process, set again once it has applied the drain's snapshot: `completedWhenApplied`).
   */
  readonly completedAtStart: Map<string, number>;
  /**
   * Restored after a restart: the process that sent this target its in-flight work is gone, so
   * nobody can tell when that work ends; such a drain runs to its deadline.
   */
  readonly restored: boolean;
  timer: TimerHandle | null;
}

/**
 * A drain handed over at a hot restart: its target's key, and each data plane's completed count (by
 * data-plane id) when it began, so the requests it completed are counted across both processes.
 */
export interface HandedOverDrain {
  readonly key: string;
  readonly completedAtStart: ReadonlyArray<readonly [string, number]>;
}

/** One registration the control plane holds: what was registered, its lifecycle, and its drain while it drains. */
export interface RegisteredTarget {
  readonly reg: TargetRegistration;
  /** `targetKey(group, id, port)`: the key data planes and the health checker know it by. */
  readonly key: string;
  readonly life: TargetLifecycle;
  drain: DrainState | null;
  /** The view last reported in a `target:state` event. */
  lastView: TargetHealthView;
}

/** A registration as stored (kind `target`), with its drain's times while it drains. */
export interface StoredTarget {
  readonly reg: TargetRegistration;
  readonly drain?: StoredDrain;
}

export interface StoredDrain {
  readonly startedAt: number;
  readonly deadline: number;
  readonly timeoutSeconds: number;
}

const STORED_TARGET_VERSION = 1;

/** The stored form of a registration, versioned so a later layout can tell old rows apart. */
export function storedTarget(reg: TargetRegistration, drain: StoredDrain | null): StoredTarget & { v: number } {
  return drain === null ? { v: STORED_TARGET_VERSION, reg } : { v: STORED_TARGET_VERSION, reg, drain };
}

/**
 * Every registration in every target group, by key, in registration order (the order snapshots and
 * DescribeTargetHealth list them in). Reports each change of a target's view as a `target:state` event.
 */
export class TargetRegistry {
  readonly #byKey = new Map<string, RegisteredTarget>();
  readonly #events: TypedEmitter<ControlEvents>;
  readonly #clock: Clock;

  constructor(events: TypedEmitter<ControlEvents>, clock: Clock) {
    this.#events = events;
    this.#clock = clock;
  }

  get(key: string): RegisteredTarget | undefined {
    return this.#byKey.get(key);
  }

  /** How many registrations there are. */
  get size(): number {
    return this.#byKey.size;
  }

  all(): IterableIterator<RegisteredTarget> {
    return this.#byKey.values();
  }

  /** The registrations of one group, in registration order. */
  of(targetGroupArn: string): RegisteredTarget[] {
    const out: RegisteredTarget[] = [];
    for (const t of this.#byKey.values()) if (t.reg.targetGroupArn === targetGroupArn) out.push(t);
    return out;
  }

  /** Adds a registration of `tg` (initial, or unavailable when the group's checks are off). Reports nothing. */
  add(reg: TargetRegistration, tg: TargetGroupRecord): RegisteredTarget {
    const life = new TargetLifecycle(tg.healthCheck.enabled);
    const target: RegisteredTarget = { reg, key: targetKey(reg.targetGroupArn, reg.id, reg.port), life, drain: null, lastView: life.view() };
    this.#byKey.set(target.key, target);
    return target;
  }

  delete(key: string): void {
    this.#byKey.delete(key);
  }

  /** A group's health check was switched on or off: its targets start their health over. */
  setChecksEnabled(targetGroupArn: string, enabled: boolean): void {
    for (const t of this.of(targetGroupArn)) t.life.setChecksEnabled(enabled);
  }

  /**
   * Applies one health-check result with the group's thresholds. True when what is published may have
   * changed (the health flipped, or the view moved, say from RegistrationInProgress to InitialHealthChecking).
   */
  observe(target: RegisteredTarget, tg: TargetGroupRecord, observation: HealthObservation): boolean {
    const transition = target.life.observe(
      observation,
      { healthy: tg.healthCheck.healthyThresholdCount, unhealthy: tg.healthCheck.unhealthyThresholdCount },
      this.#clock.now(),
    );
    return transition === 'Changed' || !sameView(target.lastView, target.life.view());
  }

  /**
   * DescribeTargetHealth for `tg`: every registration, draining ones too, when `inputs` names none;
   * else each named target, an unregistered one as unused (Target.NotRegistered).
   */
  describe(tg: TargetGroupRecord, inputs: readonly TargetInput[] | undefined, progress: (t: RegisteredTarget) => DrainProgress | undefined): TargetHealthDescription[] {
    const describe = (target: RegisteredTarget): TargetHealthDescription => {
      const base = {
        id: target.reg.id,
        port: target.reg.port,
        healthCheckPort: String(healthCheckPort(tg, target.reg.port)),
        health: target.life.view(),
      };
      const drain = progress(target);
      return drain === undefined ? base : { ...base, drain };
    };
    if (inputs === undefined || inputs.length === 0) return this.of(tg.arn).map(describe);
    return inputs.map((t) => {
      if (t.id.length === 0) throw ebbError('InvalidTarget', 'A target needs an Id');
      const port = t.port ?? tg.port;
      const target = this.#byKey.get(targetKey(tg.arn, t.id, port));
      if (target !== undefined) return describe(target);
      return {
        id: t.id,
        port,
        healthCheckPort: String(healthCheckPort(tg, port)),
        health: { state: 'unused', reason: 'Target.NotRegistered', description: 'Target is not registered to the target group' },
      };
    });
  }

  /** Reports a new registration: from not registered to the view it starts with. */
  reportRegistered(target: RegisteredTarget): void {
    this.#emit(target, { state: 'unused', reason: 'Target.NotRegistered' }, target.lastView);
  }

  /** Reports the target's view if it differs from the one last reported. */
  reportChange(target: RegisteredTarget): void {
    const view = target.life.view();
    if (sameView(view, target.lastView)) return;
    this.#emit(target, target.lastView, view);
    target.lastView = view;
  }

  #emit(target: RegisteredTarget, from: TargetHealthView, to: TargetHealthView): void {
    const { targetGroupArn, id, port } = target.reg;
    this.#events.emit('target:state', { targetGroupArn, targetId: id, port, from, to, at: this.#clock.wallTime() });
  }
}
