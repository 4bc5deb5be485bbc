import { EbbRefusal, type AdminClient } from './admin-client.ts';
import { CliError, EXIT, type ExitCode } from './exit-codes.ts';
import { printJson, type CliIo } from './output.ts';

interface Members<T> {
  readonly member?: readonly T[];
}

/**
 * `ebb standby INSTANCE-ID` / `ebb unstandby INSTANCE-ID`: the Auto Scaling API's EnterStandby and
 * ExitStandby, as `aws autoscaling enter-standby` sends them. The group is `--group`, else the one
 * DescribeAutoScalingInstances names for the instance.
 */
export async function standby(
  client: AdminClient,
  io: CliIo,
  o: { enter: boolean; instanceId: string; group: string | undefined; decrement: boolean; json: boolean },
): Promise<ExitCode> {
  const action = o.enter ? 'EnterStandby' : 'ExitStandby';
  try {
    let group = o.group;
    if (group === undefined) {
      const found = await client.action('autoscaling', 'DescribeAutoScalingInstances', { 'InstanceIds.member.1': o.instanceId });
      const instances = (found['AutoScalingInstances'] as Members<{ AutoScalingGroupName?: string }> | undefined)?.member ?? [];
      group = instances[0]?.AutoScalingGroupName;
    }
    const params: Record<string, string> = { 'InstanceIds.member.1': o.instanceId };
    // Without a group the request is still sent: an ebb with Auto Scaling groups answers that the
    // instance is in none (the group is required), and one without them says that plainly.
    if (group !== undefined) params['AutoScalingGroupName'] = group;
    if (o.enter) params['ShouldDecrementDesiredCapacity'] = String(o.decrement);
    const result = await client.action('autoscaling', action, params);
    const activities = (result['Activities'] as Members<{ Description?: string; StatusCode?: string }> | undefined)?.member ?? [];
    if (o.json) printJson(io, { action, autoScalingGroupName: group, instanceId: o.instanceId, activities });
    else for (const a of activities) io.stdout.write(`${a.StatusCode ?? ''} ${a.Description ?? ''}\n`.trimStart());
    return EXIT.ok;
  } catch (error) {
    if (error instanceof EbbRefusal && error.code === 'InvalidAction') {
      throw new CliError(
        EXIT.unavailable,
        'AutoScalingUnavailable',
        `This ebb has no Auto Scaling groups yet, so '${o.enter ? 'standby' : 'unstandby'}' cannot move ${o.instanceId}. ` +
          `ebb said: ${error.message}. Until then, take a target out of service with: ebb deregister GROUP ${o.instanceId}:PORT --wait`,
      );
    }
    if (error instanceof EbbRefusal && o.group === undefined && /AutoScalingGroupName/.test(error.message)) {
      throw new CliError(EXIT.refused, error.code, `${o.instanceId} is in no Auto Scaling group of this ebb. Name the group with --group NAME, or check the instance id.`);
    }
    throw error;
  }
}
