import type { RoutableTarget } from '../../domain/routing-snapshot.ts';

/**
 * Weight of a target in slow start: rises linearly from 10 % to 100 % over `slowStartMs`. `now` is the
 * time since the snapshot arrived (its `healthyForMs` was measured then).
 */
export function slowStartWeight(target: RoutableTarget, slowStartMs: number, now: number): number {
  if (slowStartMs <= 0 || target.healthyForMs === null) return 1;
  const age = target.healthyForMs + now;
  if (age >= slowStartMs) return 1;
  return Math.max(0.1, age / slowStartMs);
}

/**
 * `weighted_random`: a random target, each weighted by its slow-start weight (all equal without slow
 * start). `random` returns [0, 1); `now` is the ms since the snapshot arrived.
 */
export function pickWeightedRandom(
  targets: readonly RoutableTarget[],
  random: () => number,
  slowStartMs: number,
  now: number,
): RoutableTarget | null {
  const n = targets.length;
  if (n === 0) return null;
  if (slowStartMs <= 0) return targets[Math.min(n - 1, Math.floor(random() * n))] as RoutableTarget;
  let total = 0;
  for (let i = 0; i < n; i++) total += slowStartWeight(targets[i] as RoutableTarget, slowStartMs, now);
  let r = random() * total;
  for (let i = 0; i < n; i++) {
    const t = targets[i] as RoutableTarget;
    r -= slowStartWeight(t, slowStartMs, now);
    if (r < 0) return t;
  }
  return targets[n - 1] as RoutableTarget;
}
