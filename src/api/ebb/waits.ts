import type { ControlApi } from '../../control/control-api.ts';
import type { DrainRecord } from '../../control/outputs.ts';
import type { RoutingWatch } from '../../control/routing-watch.ts';
import { targetKey, type TargetGroupRecord } from '../../domain/resources.ts';
import type { Clock } from '../../shared/clock.ts';
import { ebbError } from '../../shared/errors.ts';
import { drainRecordJson, targetJson, type DrainRecordJson, type TargetJson } from './views.ts';
import type { TargetInput } from '../../control/inputs.ts';

/**
 * The barriers behind `GET /ebb/v1/wait`: what a deploy script or a Kubernetes preStop hook waits on
 * instead of a `sleep`. Each answers once, saying which happened: the condition, or the timeout.
 *
 * - `not-routed`: no data plane will route a new request to the target (RoutingWatch.untilNotRouted).
 * - `drained`: its drain has ended. A target that is not registered has nothing left to drain and is
 *   answered at once, with the record of its last drain if ebb keeps one; a target that is registered
 *   and not draining is answered at once as `not-draining` (there is no drain to wait for).
 */
export interface WaitAnswer {
  readonly for: 'not-routed' | 'drained';
  readonly outcome: 'not-routed' | 'drained' | 'timeout' | 'not-draining';
  /** Whether the condition holds (outcome not-routed or drained). */
  readonly reached: boolean;
  readonly waitedMs: number;
  /** The target as it is when the answer is sent. */
  readonly target: TargetJson;
  /** for=not-routed: the routing snapshot versions, newest published and oldest applied by any data plane. */
  readonly snapshot: { readonly latestVersion: number; readonly appliedVersion: number };
  /** for=drained: the record of the drain that ended (or the last one kept for a target no longer registered); else null. */
  readonly drain: DrainRecordJson | null;
}

export interface WaitContext {
  readonly control: ControlApi;
  readonly watch: RoutingWatch;
  readonly clock: Clock;
  /** Aborted when the caller goes away or ebb stops. */
  readonly signal: AbortSignal;
}

function describe(ctx: WaitContext, tg: TargetGroupRecord, t: TargetInput): TargetJson {
  const d = ctx.control.describeTargetHealth(tg.arn, [t])[0];
  if (d === undefined) throw ebbError('InvalidTarget', `Target '${t.id}' is not valid for target group '${tg.name}'`);
  return targetJson(tg, d, ctx.watch, ctx.clock.wallTime());
}

function answer(ctx: WaitContext, tg: TargetGroupRecord, t: TargetInput, fields: Pick<WaitAnswer, 'for' | 'outcome' | 'drain'>, started: number): WaitAnswer {
  return {
    ...fields,
    reached: fields.outcome === 'not-routed' || fields.outcome === 'drained',
    waitedMs: Math.round(ctx.clock.now() - started),
    target: describe(ctx, tg, t),
    snapshot: { latestVersion: ctx.watch.latestVersion, appliedVersion: ctx.watch.appliedVersion },
  };
}

export async function waitNotRouted(ctx: WaitContext, tg: TargetGroupRecord, t: TargetInput, timeoutMs: number): Promise<WaitAnswer> {
  const started = ctx.clock.now();
  const port = t.port ?? tg.port;
  const r = await ctx.watch.untilNotRouted(targetKey(tg.arn, t.id, port), { timeoutMs, signal: ctx.signal });
  return answer(ctx, tg, { id: t.id, port }, { for: 'not-routed', outcome: r.outcome, drain: null }, started);
}

export async function waitDrained(ctx: WaitContext, tg: TargetGroupRecord, t: TargetInput, timeoutMs: number): Promise<WaitAnswer> {
  const started = ctx.clock.now();
  const target: TargetInput = { id: t.id, port: t.port ?? tg.port };
  const now = describe(ctx, tg, target);
  const mine = (r: DrainRecord): boolean => r.targetGroupArn === tg.arn && r.targetId === target.id && r.port === target.port;
  if (now.reason === 'Target.NotRegistered') {
    const last = ctx.control.drainRecords(Number.MAX_SAFE_INTEGER).filter(mine).at(-1);
    return answer(ctx, tg, target, { for: 'drained', outcome: 'drained', drain: last === undefined ? null : drainRecordJson(last) }, started);
  }
  if (now.drain === null) return answer(ctx, tg, target, { for: 'drained', outcome: 'not-draining', drain: null }, started);
  // Subscribed in the same turn as the check above, so a drain that ends now cannot be missed.
  const ended = await new Promise<DrainRecord | null>((resolve, reject) => {
    const stop = (): void => {
      timer.cancel();
      unsubscribe();
      ctx.signal.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      stop();
      reject(ebbError('ServiceUnavailable', 'The wait was abandoned: the caller went away or ebb is stopping'));
    };
    const unsubscribe = ctx.control.events.on('drain:end', (r) => {
      if (!mine(r)) return;
      stop();
      resolve(r);
    });
    const timer = ctx.clock.setTimer(timeoutMs, () => {
      stop();
      resolve(null);
    });
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    if (ctx.signal.aborted) onAbort();
  });
  return answer(
    ctx,
    tg,
    target,
    ended === null ? { for: 'drained', outcome: 'timeout', drain: null } : { for: 'drained', outcome: 'drained', drain: drainRecordJson(ended) },
    started,
  );
}
