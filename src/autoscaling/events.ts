import type { LifecycleActionRecord, LifecycleState, ScalingActivityRecord } from './records.ts';

/** What Auto Scaling tells as it happens (the event stream and the metrics listen). */
export interface AutoScalingEvents {
  /** An activity began, progressed or ended (the record as it is now). */
  'autoscaling:activity': ScalingActivityRecord;
  /** An instance moved from one lifecycle state to another. */
  'autoscaling:lifecycle': LifecycleEvent;
}

export interface LifecycleEvent {
  readonly group: string | null;
  readonly instanceId: string;
  readonly from: LifecycleState | null;
  readonly to: LifecycleState;
  /** The lifecycle actions holding it, when it enters Pending:Wait or Terminating:Wait. */
  readonly actions?: readonly LifecycleActionRecord[];
  /** Wall-clock ms. */
  readonly at: number;
}
