import { Counter, Gauge, type Registry } from 'prom-client';
import type { AutoScalingApi } from '../../autoscaling/autoscaling-api.ts';
import type { AutoScalingInstanceRecord } from '../../autoscaling/records.ts';

/**
 * Auto Scaling's metrics, under the names of CloudWatch's group metrics (GroupDesiredCapacity,
 * GroupInServiceInstances, …) in Prometheus form, labelled as CloudWatch's AutoScalingGroupName
 * dimension is; and ebb's own count of finished scaling activities by status. The gauges are read when
 * Prometheus scrapes; a deleted group's series are not written (and its activity counts removed).
 */
const GROUP = ['auto_scaling_group_name'] as const;
const FINAL = ['Successful', 'Failed', 'Cancelled'] as const;

const COUNTS: ReadonlyArray<readonly [string, string, (i: AutoScalingInstanceRecord) => boolean]> = [
  ['ebb_group_in_service_instances', 'GroupInServiceInstances: instances in InService', (i) => i.lifecycleState === 'InService'],
  ['ebb_group_pending_instances', 'GroupPendingInstances: instances launching (Pending, Pending:Wait, Pending:Proceed)', (i) => i.lifecycleState.startsWith('Pending')],
  ['ebb_group_standby_instances', 'GroupStandbyInstances: instances in Standby (or entering it)', (i) => i.lifecycleState === 'Standby' || i.lifecycleState === 'EnteringStandby'],
  ['ebb_group_terminating_instances', 'GroupTerminatingInstances: instances leaving (draining, held by a hook, or stopping)', (i) => i.lifecycleState.startsWith('Terminating')],
  ['ebb_group_total_instances', 'GroupTotalInstances: every instance of the group that is not yet terminated', (i) => i.lifecycleState !== 'Terminated'],
];

/** Registers the gauges and the activity counter; returns the unsubscribe from Auto Scaling's events. */
export function registerAutoScalingMetrics(registry: Registry, autoscaling: AutoScalingApi): () => void {
  const registers = [registry];
  const groups = () => autoscaling.describeAutoScalingGroups();
  const setting = (name: string, help: string, read: (g: ReturnType<typeof groups>[number]['group']) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: GROUP,
      registers,
      collect() {
        this.reset();
        for (const { group } of groups()) this.labels({ auto_scaling_group_name: group.name }).set(read(group));
      },
    });
  };
  setting('ebb_group_desired_capacity', 'GroupDesiredCapacity: the number of instances the group works to keep', (g) => g.desiredCapacity);
  setting('ebb_group_min_size', 'GroupMinSize', (g) => g.minSize);
  setting('ebb_group_max_size', 'GroupMaxSize', (g) => g.maxSize);
  for (const [name, help, counts] of COUNTS) {
    new Gauge({
      name,
      help,
      labelNames: GROUP,
      registers,
      collect() {
        this.reset();
        for (const { group, instances } of groups()) this.labels({ auto_scaling_group_name: group.name }).set(instances.filter(counts).length);
      },
    });
  }
  /** Groups whose series exist (written by an activity or a scrape), and those whose zeroes are written. */
  const seen = new Set<string>();
  const zeroed = new Set<string>();
  const activities = new Counter({
    name: 'ebb_autoscaling_activities_total',
    help: "Scaling activities that ended, by status (Successful, Failed, Cancelled): ebb's own",
    labelNames: [...GROUP, 'status'] as const,
    registers,
    collect() {
      const live = new Set(groups().map((g) => g.group.name));
      for (const name of seen) {
        if (live.has(name)) continue;
        for (const status of FINAL) this.remove({ auto_scaling_group_name: name, status });
        seen.delete(name);
        zeroed.delete(name);
      }
      // Every status of every group is written, 0 until it happens, so rate() works from the first scrape.
      for (const name of live) {
        if (zeroed.has(name)) continue;
        for (const status of FINAL) this.labels({ auto_scaling_group_name: name, status }).inc(0);
        zeroed.add(name);
        seen.add(name);
      }
    },
  });
  return autoscaling.events.on('autoscaling:activity', (a) => {
    if (a.endTime === undefined || !(FINAL as readonly string[]).includes(a.statusCode)) return;
    seen.add(a.group);
    activities.labels({ auto_scaling_group_name: a.group, status: a.statusCode }).inc();
  });
}
