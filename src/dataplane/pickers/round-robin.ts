import type { RoutableTarget } from '../../domain/routing-snapshot.ts';
import { slowStartWeight } from './weighted-random.ts';

/** Per-group rotation state, kept by the data plane across snapshots. */
export interface RotationState {
  next: number;
  /** Smooth weighted round robin's running scores by target key; only used while a target is in slow start. */
  scores?: Map<string, number>;
}

/** `round_robin`: each target in turn. Pure apart from advancing `state`; null when `targets` is empty. */
export function pickRoundRobin(targets: readonly RoutableTarget[], state: RotationState): RoutableTarget | null {
  const n = targets.length;
  if (n === 0) return null;
  const i = state.next % n;
  state.next = i + 1;
  return targets[i] as RoutableTarget;
}

/**
 * `round_robin` with slow start: while a target ramps up (its weight rising linearly from 10 % to
 * 100 % over `slowStartMs` after it became healthy), targets are taken in smooth weighted round-robin
 * order (each pick adds every target's weight to its score, takes the highest, and subtracts the
 * total from it), so a new target's share grows evenly rather than in bursts. Once no target ramps,
 * this is plain round robin.
 */
export function pickRoundRobinSlowStart(
  targets: readonly RoutableTarget[],
  state: RotationState,
  slowStartMs: number,
  now: number,
): RoutableTarget | null {
  const n = targets.length;
  if (n === 0) return null;
  let ramping = false;
  for (let i = 0; i < n; i++) {
    if (slowStartWeight(targets[i] as RoutableTarget, slowStartMs, now) < 1) {
      ramping = true;
      break;
    }
  }
  if (!ramping) {
    if (state.scores !== undefined) delete state.scores;
    return pickRoundRobin(targets, state);
  }
  const scores = (state.scores ??= new Map());
  if (scores.size > n * 2) {
    // Forget targets that left the group (bounded by the group's size).
    const keep = new Set(targets.map((t) => t.key));
    for (const k of scores.keys()) if (!keep.has(k)) scores.delete(k);
  }
  let total = 0;
  let best: RoutableTarget | null = null;
  let bestScore = -Infinity;
  for (let i = 0; i < n; i++) {
    const t = targets[i] as RoutableTarget;
    const w = slowStartWeight(t, slowStartMs, now);
    total += w;
    const score = (scores.get(t.key) ?? 0) + w;
    scores.set(t.key, score);
    if (score > bestScore) {
      bestScore = score;
      best = t;
    }
  }
  if (best !== null) scores.set(best.key, bestScore - total);
  return best;
}
