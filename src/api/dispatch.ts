import { ebbError } from '../shared/errors.ts';
import { autoscalingHandler } from './autoscaling/actions.ts';
import { classicActions } from './classic/actions.ts';
import { EC2_ACTION_NAMES, ec2Handler } from './ec2/actions.ts';
import { elbv2Actions } from './elbv2/index.ts';
import type { ActionHandler, ActionTable, ApiContext } from './handler.ts';
import type { QueryParams } from './query-parser.ts';
import { type ServiceId, successXml } from './xml.ts';

/**
 * Dispatch by Version (the `apiVersion` of each service's botocore model): ELBv2 and Classic share action names, so Action alone is
 * ambiguous. `2015-12-01` ELBv2, `2012-06-01` Classic ELB, `2011-01-01` Auto Scaling, `2016-11-15` EC2 (launch templates and
 * DescribeInstances only).
 *
 * Version and Action come from the request, so they are looked up in Maps, never as properties of a
 * plain object: `Version=__proto__` or `Action=toString` would otherwise find Object.prototype's members.
 */
const VERSIONS: ReadonlyMap<string, ServiceId> = new Map([
  ['2015-12-01', 'elbv2'],
  ['2012-06-01', 'classic'],
  ['2011-01-01', 'autoscaling'],
  ['2016-11-15', 'ec2'],
]);

/** The Versions ebb serves, as the errors about a missing or unknown one list them. */
const VERSION_LIST = '2015-12-01 (ELBv2), 2012-06-01 (Classic ELB), 2011-01-01 (Auto Scaling) or 2016-11-15 (EC2)';

/** The service a Version names, or undefined when ebb serves no such Version. */
export function serviceForVersion(version: string | undefined): ServiceId | undefined {
  return version === undefined ? undefined : VERSIONS.get(version);
}

/** The SigV4 signing name (credential scope service) of each service (the `signingName` in its botocore model's metadata). */
export const SIGNING_NAMES: Readonly<Record<ServiceId, string>> = {
  elbv2: 'elasticloadbalancing',
  classic: 'elasticloadbalancing',
  autoscaling: 'autoscaling',
  ec2: 'ec2',
};

/** The service a request is for, as far as it can be told (for the error envelope's namespace). */
export function serviceOf(params: QueryParams): ServiceId {
  return serviceForVersion(params.str('Version')) ?? 'elbv2';
}

/** An action table as a Map of its own entries, so only the actions written in it can be found. */
function actionMap(table: ActionTable): ReadonlyMap<string, ActionHandler> {
  return new Map(Object.entries(table));
}

const ELBV2_ACTIONS = actionMap(elbv2Actions);
const CLASSIC_ACTIONS = actionMap(classicActions);

export function findHandler(service: ServiceId, action: string): ActionHandler | undefined {
  switch (service) {
    case 'elbv2':
      return ELBV2_ACTIONS.get(action);
    case 'classic':
      return CLASSIC_ACTIONS.get(action);
    case 'autoscaling':
      return autoscalingHandler(action);
    case 'ec2':
      return ec2Handler(action);
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
    throw ebbError('MissingParameter', `The request must contain the parameter Version: ${VERSION_LIST}`);
  }
  const service = serviceForVersion(version);
  if (service === undefined) {
    throw ebbError('InvalidAction', `Version '${version}' is not one ebb serves: use ${VERSION_LIST}`);
  }
  const handler = findHandler(service, action);
  if (handler === undefined && service === 'ec2') {
    throw ebbError(
      'InvalidAction',
      `The action ${action} is not one ebb's EC2 API serves: it serves launch templates and DescribeInstances only (${EC2_ACTION_NAMES.join(', ')}). ` +
        'Instances are launched and stopped by Auto Scaling groups (aws autoscaling …)',
    );
  }
  if (handler === undefined) {
    throw ebbError('InvalidAction', `The action ${action} is not valid for this web service (version ${version})`);
  }
  const result = await handler(params, ctx);
  return { service, action, xml: successXml(service, action, result, ctx.requestId) };
}
