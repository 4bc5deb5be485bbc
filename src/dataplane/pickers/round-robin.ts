import type { RoutableTarget } from '../../domain/routing-snapshot.ts';

/** Per-group rotating cursor, kept by the data plane across snapshots. */
export interface RotationState {
  next: number;
}

/** `round_robin`: each target in turn. Pure apart from advancing `state`; null when `targets` is empty. */
export function pickRoundRobin(targets: readonly RoutableTarget[], state: RotationState): RoutableTarget | null {
  const n = targets.length;
  if (n === 0) return null;
  const i = state.next % n;
  state.next = i + 1;
  return targets[i] as RoutableTarget;
}
