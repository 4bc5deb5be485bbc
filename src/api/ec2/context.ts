import type { AutoScalingApi } from '../../autoscaling/autoscaling-api.ts';
import { ebbError } from '../../shared/errors.ts';
import type { ApiContext } from '../handler.ts';
import type { Ec2Params } from './ec2-params.ts';

/** Auto Scaling's facade, which every EC2 action needs; an ebb running without it says so. */
export function autoscalingOf(ctx: ApiContext): AutoScalingApi {
  if (ctx.autoscaling === undefined) {
    throw ebbError(
      'InvalidAction',
      "Auto Scaling is not running in this ebb, and ebb's EC2 API (launch templates and DescribeInstances) is part of it: " +
        'use an ebb started with ebb serve, whose Auto Scaling serves these actions',
    );
  }
  return ctx.autoscaling;
}

/**
 * DryRun=true asks EC2 to check permissions and change nothing. ebb has no permissions to check,
 * and running the action would change what the caller meant to leave alone, so it is refused.
 */
export function refuseDryRun(p: Ec2Params): void {
  if (p.bool('DryRun') === true) {
    throw ebbError('InvalidParameterValue', 'ebb does not support DryRun: it has no permissions to check. Send the request without --dry-run');
  }
}
