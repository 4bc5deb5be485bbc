import type { ActionHandler, ActionTable } from '../handler.ts';
import { describeInstances } from './instances.ts';
import { launchTemplateActions } from './launch-templates.ts';

/**
 * The EC2 actions ebb serves (ec2 2016-11-15): the launch template actions and DescribeInstances,
 * all over Auto Scaling's facade. Every other EC2 action is InvalidAction (dispatch.ts says which
 * ones are served).
 */
export const ec2Actions: ActionTable = {
  ...launchTemplateActions,
  DescribeInstances: describeInstances,
};

/** The table's own entries as a Map: the Action is user input and must not reach Object.prototype. */
const ACTIONS = new Map(Object.entries(ec2Actions));

export function ec2Handler(action: string): ActionHandler | undefined {
  return ACTIONS.get(action);
}

/** The served actions, for the message an unserved one gets. */
export const EC2_ACTION_NAMES: readonly string[] = [...ACTIONS.keys()];
