import type { RoutableTarget, TargetGroupRoute } from '../../domain/routing-snapshot.ts';
import { pickLeastOutstanding } from './least-outstanding.ts';
import type { RotationState } from './round-robin.ts';
import { pickRoundRobin, pickRoundRobinSlowStart } from './round-robin.ts';
import { pickWeightedRandom } from './weighted-random.ts';

export type { RotationState } from './round-robin.ts';

/** What a pick may consult besides the group: in-flight counts, randomness, and the time since the snapshot arrived. */
export interface PickInputs {
  readonly outstanding: (key: string) => number;
  readonly random: () => number;
  /** Ms since the current snapshot was applied, on this data plane's own monotonic clock. */
  readonly now: () => number;
}

/** Picks a target of `group` with its algorithm; null when the group has no target to use. */
export function pickTarget(group: TargetGroupRoute, state: RotationState, inputs: PickInputs): RoutableTarget | null {
  switch (group.algorithm) {
    case 'round_robin':
      return group.slowStartMs > 0
        ? pickRoundRobinSlowStart(group.targets, state, group.slowStartMs, inputs.now())
        : pickRoundRobin(group.targets, state);
    case 'least_outstanding_requests':
      return pickLeastOutstanding(group.targets, inputs.outstanding, state);
    case 'weighted_random':
      return pickWeightedRandom(group.targets, inputs.random, group.slowStartMs, group.slowStartMs > 0 ? inputs.now() : 0);
    default: {
      const never: never = group.algorithm;
      return never;
    }
  }
}
