/**
 * Getting instances started: the Pending record and its activity committed first (so a crash never
 * loses a process it started), then the process; a launch that fails pauses the group's next ones
 * (launch-backoff.ts) and says why in its activity.
 */
import { randomBytes } from 'node:crypto';
import type { InstanceRunner } from '../domain/instance-runner.ts';
import type { Clock } from '../shared/clock.ts';
import { describeError } from '../shared/errors.ts';
import type { TypedEmitter } from '../shared/typed-emitter.ts';
import { causes, causeTime, newActivity } from './activities.ts';
import type { AutoScalingEvents } from './events.ts';
import type { LaunchBackoff } from './launch-backoff.ts';
import type { LaunchTemplateCatalog } from './launch-templates.ts';
import type { AutoScalingGroupRecord, AutoScalingInstanceRecord, ResolvedTemplate } from './records.ts';
import { del, put, type AutoScalingState } from './state.ts';
import type { Transitions } from './transitions.ts';

export interface LauncherDeps {
  readonly state: AutoScalingState;
  readonly runner: InstanceRunner;
  readonly templates: LaunchTemplateCatalog;
  readonly clock: Clock;
  readonly events: TypedEmitter<AutoScalingEvents>;
  readonly log: (entry: Record<string, unknown>) => void;
  readonly transitions: Transitions;
  readonly backoff: LaunchBackoff;
  /** `what` after the sentence that says why the group's capacity changed, when it just did. */
  readonly withCause: (group: AutoScalingGroupRecord | undefined, what: string) => string;
  /** The template an active instance refresh launches from, if one runs. */
  readonly templateFor: (group: AutoScalingGroupRecord) => ResolvedTemplate | undefined;
}

export function newInstanceId(): string {
  return `i-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

export class Launcher {
  readonly #d: LauncherDeps;

  constructor(deps: LauncherDeps) {
    this.#d = deps;
  }

  async start(i: AutoScalingInstanceRecord, group: AutoScalingGroupRecord | undefined): Promise<void> {
    const d = this.#d;
    const adopted = d.runner.adopt(i.instanceId);
    let started = adopted;
    if (started === null) {
      try {
        if (i.launchTemplate === undefined) throw new Error('the instance names no launch template');
        const resolved = d.templates.resolve({ id: i.launchTemplate.id, version: String(i.launchTemplate.version) });
        const data = resolved.data;
        const run = data.command !== undefined && data.command.length > 0 ? { argv: data.command } : { script: Buffer.from(data.userData ?? '', 'base64').toString('utf8') };
        started = await d.runner.launch({
          instanceId: i.instanceId,
          group: i.group ?? '',
          run,
          environment: data.environment ?? {},
          ...(data.workingDirectory === undefined ? {} : { workingDirectory: data.workingDirectory }),
        });
      } catch (error) {
        const message = group === undefined ? describeError(error) : this.failed(group.name, `Instance ${i.instanceId} could not be started: ${describeError(error)}`, false);
        await d.transitions.endEntry(i, 'Failed', message);
        await d.state.commit([del('autoScalingInstance', i.instanceId)], () => d.state.instances.delete(i.instanceId));
        d.transitions.lifecycle(i, 'Terminated');
        return;
      }
    }
    d.log({ event: 'autoscaling:launched', instance: i.instanceId, group: i.group, pid: started.pid, port: started.port, adopted: adopted !== null, log: started.logFile });
    await d.transitions.update(i, {
      port: started.port,
      launchedAt: started.launchedAt,
      process: { pid: started.pid, startTime: started.startTime, logFile: started.logFile },
    });
  }

  async launch(group: AutoScalingGroupRecord, from: number, to: number, forRefresh: boolean): Promise<void> {
    const d = this.#d;
    const now = d.clock.wallTime();
    let resolved;
    try {
      resolved = d.templateFor(group) ?? d.templates.resolve(group.launchTemplate);
    } catch (error) {
      this.failed(group.name, describeError(error));
      return;
    }
    const instanceId = newInstanceId();
    const refresh = d.state.activeRefresh(group.name);
    const cause = forRefresh && refresh !== undefined ? causes.refreshLaunch(now, refresh.id) : d.withCause(group, causes.launched(now, from, to));
    const activity = newActivity({ group: group.name, description: `Launching a new EC2 instance: ${instanceId}`, cause, at: now, details: { InstanceId: instanceId } });
    const instance: AutoScalingInstanceRecord = {
      instanceId,
      group: group.name,
      lifecycleState: 'Pending',
      healthStatus: 'Healthy',
      protectedFromScaleIn: group.newInstancesProtectedFromScaleIn,
      launchTemplate: { id: resolved.id, name: resolved.name, version: resolved.version },
      origin: 'launched',
      entry: 'launch',
      entryActivityId: activity.activityId,
      address: '127.0.0.1',
      port: 0,
      launchedAt: now,
      stateChangedAt: now,
      tags: [...(resolved.data.instanceTags ?? []), ...group.tags, { key: 'aws:autoscaling:groupName', value: group.name }],
    };
    const trimmed = d.state.trimActivities(group.name, 1);
    await d.state.commit([put('autoScalingInstance', instanceId, instance), put('scalingActivity', activity.activityId, activity), ...trimmed.map((id) => del('scalingActivity', id))], () => {
      for (const id of trimmed) d.state.activities.delete(id);
      d.state.instances.set(instanceId, instance);
      d.state.activities.set(activity.activityId, activity);
    });
    d.events.emit('autoscaling:activity', activity);
    d.transitions.lifecycle(instance, 'Pending', null);
    await this.start(instance, group);
  }

  /**
   * Counts a failed launch and pauses the group's launches, doubling the pause with each failure in a
   * row. Failures seen together (several instances of one round) count once. Returns what the
   * activity says; `activity` false when the caller ends the launch's own activity with it.
   */
  failed(group: string, reason: string, activity = true): string {
    const d = this.#d;
    const now = d.clock.wallTime();
    const { failures, pauseMs: pause } = d.backoff.failed(group, now);
    d.log({ event: 'autoscaling:launch-failed', level: 'warn', group, failures, pauseMs: pause, reason });
    const message = `${reason}. ebb waits ${Math.round(pause / 1000)} s before the next launch (failure ${failures} in a row); fix the launch template, then update the group or create a new version.`;
    if (activity) {
      const at = d.clock.wallTime();
      const cause = d.withCause(d.state.groups.get(group), `At ${causeTime(at)} an instance was started in response to a difference between desired and actual capacity.`);
      void d.transitions.failedLaunch(group, cause, message).catch(() => undefined);
    }
    return message;
  }

}
