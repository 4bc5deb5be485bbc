/**
 * Auto Scaling on the event stream (`GET /ebb/v1/events`): each scaling activity as it begins,
 * progresses and ends, and each instance's lifecycle transition, with the lifecycle actions (hook and
 * token, as the hook's notification carries them) when an instance enters Pending:Wait or
 * Terminating:Wait, so a handler on the stream can call CompleteLifecycleAction by token.
 */
import type { AutoScalingApi } from '../../autoscaling/autoscaling-api.ts';
import type { EventStream } from './event-stream.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

/** Publishes Auto Scaling's events on the stream; returns the unsubscribe. */
export function subscribeAutoScalingEvents(autoscaling: AutoScalingApi, stream: EventStream): () => void {
  const offs = [
    autoscaling.events.on('autoscaling:activity', (a) =>
      stream.publish('autoscaling:activity', {
        at: iso(a.endTime ?? a.startTime),
        activityId: a.activityId,
        autoScalingGroupName: a.group,
        description: a.description,
        cause: a.cause,
        statusCode: a.statusCode,
        statusMessage: a.statusMessage ?? null,
        progress: a.progress,
        startTime: iso(a.startTime),
        endTime: a.endTime === undefined ? null : iso(a.endTime),
      }),
    ),
    autoscaling.events.on('autoscaling:lifecycle', (e) =>
      stream.publish('autoscaling:lifecycle', {
        at: iso(e.at),
        autoScalingGroupName: e.group,
        instanceId: e.instanceId,
        from: e.from,
        to: e.to,
        lifecycleActions: (e.actions ?? []).map((a) => ({
          lifecycleHookName: a.hookName,
          lifecycleActionToken: a.token,
          lifecycleTransition: a.transition,
          heartbeatDeadline: iso(Math.min(a.heartbeatDeadline, a.globalDeadline)),
        })),
      }),
    ),
  ];
  return () => {
    for (const off of offs) off();
  };
}
