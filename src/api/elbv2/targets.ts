import type { TargetInput } from '../../control/inputs.ts';
import { ebbError } from '../../shared/errors.ts';
import type { ActionTable } from '../handler.ts';
import type { QueryParams } from '../query-parser.ts';
import { targetHealthXml } from './shapes.ts';

/** ELBv2 target registration and health actions. */

function readTargets(list: readonly QueryParams[]): TargetInput[] {
  return list.map((t) => {
    const id = t.requiredStr('Id', { maxLength: 256 });
    const port = t.int('Port', { min: 1, max: 65535 });
    const az = t.str('AvailabilityZone');
    if (az !== undefined && az !== 'all') {
      // ebb has no zones; 'all' is what AWS accepts for targets outside the VPC.
      throw ebbError('ValidationError', `Targets AvailabilityZone '${az}' is not supported by ebb; leave it out`);
    }
    return port === undefined ? { id } : { id, port };
  });
}

export const targetActions: ActionTable = {
  async RegisterTargets(p, { control }) {
    const arn = p.requiredStr('TargetGroupArn');
    await control.registerTargets(arn, readTargets(p.requiredStructList('Targets')));
    return {};
  },

  async DeregisterTargets(p, { control }) {
    const arn = p.requiredStr('TargetGroupArn');
    await control.deregisterTargets(arn, readTargets(p.requiredStructList('Targets')));
    return {};
  },

  async DescribeTargetHealth(p, { control }) {
    const arn = p.requiredStr('TargetGroupArn');
    const list = p.structList('Targets');
    const include = p.list('Include');
    for (const v of include ?? []) {
      if (v !== 'AnomalyDetection' && v !== 'All') throw ebbError('ValidationError', `Include '${v}' is not valid: use AnomalyDetection or All`);
    }
    const targets = list === undefined || list.length === 0 ? undefined : readTargets(list);
    const descriptions = control.describeTargetHealth(arn, targets);
    return { TargetHealthDescriptions: descriptions.map(targetHealthXml) };
  },
};
