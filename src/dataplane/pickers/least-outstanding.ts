import type { RoutableTarget } from '../../domain/routing-snapshot.ts';
import type { RotationState } from './round-robin.ts';

/**
 * `least_outstanding_requests`: the target with the fewest requests in flight (from this data plane).
 * Ties go round-robin, starting after the last pick, so equal targets share the load evenly.
 */
export function pickLeastOutstanding(
  targets: readonly RoutableTarget[],
  outstanding: (key: string) => number,
  state: RotationState,
): RoutableTarget | null {
  const n = targets.length;
  if (n === 0) return null;
  const start = state.next % n;
  let best = -1;
  let bestCount = Infinity;
  for (let j = 0; j < n; j++) {
    const i = (start + j) % n;
    const c = outstanding((targets[i] as RoutableTarget).key);
    if (c < bestCount) {
      bestCount = c;
      best = i;
      if (c === 0) break;
    }
  }
  state.next = best + 1;
  return targets[best] as RoutableTarget;
}
