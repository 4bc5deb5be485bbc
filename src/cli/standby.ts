import { setTimeout as sleep } from 'node:timers/promises';
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
  o: {
    enter: boolean;
    instanceId: string;
    group: string | undefined;
    decrement: boolean;
    wait: boolean;
    timeoutSeconds: number | undefined;
    json: boolean;
    signal?: AbortSignal;
  },
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
    if (!o.wait) {
      if (o.json) printJson(io, { action, autoScalingGroupName: group, instanceId: o.instanceId, activities });
      else for (const a of activities) io.stdout.write(`${a.StatusCode ?? ''} ${a.Description ?? ''}\n`.trimStart());
      return EXIT.ok;
    }
    if (!o.json) for (const a of activities) io.stdout.write(`${a.StatusCode ?? ''} ${a.Description ?? ''}\n`.trimStart());
    const wanted = o.enter ? 'Standby' : 'InService';
    const reached = await waitForState(client, io, o.instanceId, wanted, o.timeoutSeconds, o.json, o.signal);
    if (o.json) printJson(io, { action, autoScalingGroupName: group, instanceId: o.instanceId, activities, waitedFor: wanted, ...reached });
    return reached.outcome === 'reached' ? EXIT.ok : reached.outcome === 'timeout' ? EXIT.timeout : EXIT.interrupted;
  } catch (error) {
    if (error instanceof EbbRefusal && error.code === 'InvalidAction') {
      throw new CliError(
        EXIT.unavailable,
        'AutoScalingUnavailable',
        `This ebb runs no Auto Scaling groups, so '${o.enter ? 'standby' : 'unstandby'}' cannot move ${o.instanceId}. ` +
          `ebb said: ${error.message}. Until then, take a target out of service with: ebb deregister GROUP ${o.instanceId}:PORT --wait`,
      );
    }
    if (error instanceof EbbRefusal && o.group === undefined && /autoScalingGroupName/i.test(error.message)) {
      throw new CliError(EXIT.refused, error.code, `${o.instanceId} is in no Auto Scaling group of this ebb. Name the group with --group NAME, or check the instance id.`);
    }
    throw error;
  }
}

/**
 * Polls DescribeAutoScalingInstances until the instance is in `wanted`: Standby once its drain has
 * ended, InService once it is registered again. Each state it passes through is printed once.
 */
async function waitForState(
  client: AdminClient,
  io: CliIo,
  instanceId: string,
  wanted: string,
  timeoutSeconds: number | undefined,
  json: boolean,
  signal: AbortSignal | undefined,
): Promise<{ outcome: 'reached' | 'timeout' | 'interrupted'; lifecycleState: string | null; waitedMs: number }> {
  const started = Date.now();
  let last: string | null = null;
  for (;;) {
    const found = await client.action('autoscaling', 'DescribeAutoScalingInstances', { 'InstanceIds.member.1': instanceId });
    const state = ((found['AutoScalingInstances'] as Members<{ LifecycleState?: string }> | undefined)?.member ?? [])[0]?.LifecycleState ?? null;
    if (state !== last && !json) io.stdout.write(`${instanceId} ${state ?? 'gone'}\n`);
    last = state;
    const waitedMs = Date.now() - started;
    if (state === wanted) return { outcome: 'reached', lifecycleState: state, waitedMs };
    if (state === null) throw new CliError(EXIT.refused, 'InstanceGone', `${instanceId} left its Auto Scaling group before it reached ${wanted}.`);
    if (timeoutSeconds !== undefined && waitedMs >= timeoutSeconds * 1000) {
      if (!json) io.stdout.write(`timeout ${instanceId}: still ${state} after ${(waitedMs / 1000).toFixed(1)} s\n`);
      return { outcome: 'timeout', lifecycleState: state, waitedMs };
    }
    if (signal?.aborted === true) return { outcome: 'interrupted', lifecycleState: state, waitedMs };
    await sleep(250, undefined, signal === undefined ? {} : { signal }).catch(() => undefined);
  }
}
