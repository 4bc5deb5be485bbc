import { ebbError } from '../shared/errors.ts';
import { autoscalingHandler } from './autoscaling/actions.ts';
import { classicActions } from './classic/actions.ts';
import { elbv2Actions } from './elbv2/index.ts';
import type { ActionHandler, ApiContext } from './handler.ts';
import type { QueryParams } from './query-parser.ts';
import { type ServiceId, successXml } from './xml.ts';

/**
 * Dispatch by Version (aws-api.md §1): ELBv2 and Classic share action names, so Action alone is
 * ambiguous. `2015-12-01` ELBv2, `2012-06-01` Classic ELB, `2011-01-01` Auto Scaling.
 */
export const VERSIONS: Readonly<Record<string, ServiceId>> = {
  '2015-12-01': 'elbv2',
  '2012-06-01': 'classic',
  '2011-01-01': 'autoscaling',
};

/** The SigV4 signing name (credential scope service) of each service (aws-api.md §2). */
export const SIGNING_NAMES: Readonly<Record<ServiceId, string>> = {
  elbv2: 'elasticloadbalancing',
  classic: 'elasticloadbalancing',
  autoscaling: 'autoscaling',
};

/** The service a request is for, as far as it can be told (for the error envelope's namespace). */
export function serviceOf(params: QueryParams): ServiceId {
  return VERSIONS[params.str('Version') ?? ''] ?? 'elbv2';
}

export function findHandler(service: ServiceId, action: string): ActionHandler | undefined {
  switch (service) {
    case 'elbv2':
      return Object.hasOwn(elbv2Actions, action) ? elbv2Actions[action] : undefined;
    case 'classic':
      return Object.hasOwn(classicActions, action) ? classicActions[action] : undefined;
    case 'autoscaling':
      return autoscalingHandler(action);
    default: {
      const never: never = service;
      return never;
    }
  }
}

/** Runs one request's action and returns the success XML; rejects with the error to send. */
export async function dispatch(params: QueryParams, ctx: ApiContext): Promise<{ service: ServiceId; action: string; xml: string }> {
  const action = params.str('Action');
  if (action === undefined || action === '') {
    throw ebbError('MissingParameter', "The request must contain the parameter Action (e.g. Action=DescribeTargetGroups)");
  }
  const version = params.str('Version');
  if (version === undefined || version === '') {
    throw ebbError('MissingParameter', 'The request must contain the parameter Version: 2015-12-01 (ELBv2), 2012-06-01 (Classic ELB) or 2011-01-01 (Auto Scaling)');
  }
  const service = VERSIONS[version];
  if (service === undefined) {
    throw ebbError(
      'InvalidAction',
      `Version '${version}' is not one ebb serves: use 2015-12-01 (ELBv2), 2012-06-01 (Classic ELB) or 2011-01-01 (Auto Scaling)`,
    );
  }
  const handler = findHandler(service, action);
  if (handler === undefined) {
    throw ebbError('InvalidAction', `The action ${action} is not valid for this web service (version ${version})`);
  }
  const result = await handler(params, ctx);
  return { service, action, xml: successXml(service, action, result, ctx.requestId) };
}
