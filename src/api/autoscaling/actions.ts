import { ebbError } from '../../shared/errors.ts';
import type { ActionHandler } from '../handler.ts';
import { AUTOSCALING_ACTIONS } from './autoscaling-model.ts';

/** The generated model's own entries as a Map: the Action is user input and must not reach Object.prototype. */
const ACTIONS = new Map(Object.entries(AUTOSCALING_ACTIONS));

/**
 * Auto Scaling (2011-01-01) for now: every action of the model is recognised. Describe* actions
 * answer empty lists in the model's shape (there are no groups yet), so tools that look before they
 * act keep working; the others say plainly that groups come in a later release.
 */
export function autoscalingHandler(action: string): ActionHandler | undefined {
  const entry = ACTIONS.get(action);
  if (entry === undefined) return undefined;
  if (entry.empty !== undefined) {
    const empty = entry.empty;
    return async () => ({ ...empty });
  }
  return async () => {
    throw ebbError(
      'InvalidAction',
      `The Auto Scaling action ${action} is recognised but not available yet: Auto Scaling groups come in a later release of ebb. ` +
        'Register targets with ELBv2 RegisterTargets or Classic RegisterInstancesWithLoadBalancer meanwhile.',
    );
  };
}
