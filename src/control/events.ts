import type { TargetHealthView } from '../domain/target-health.ts';
import type { DrainRecord } from './outputs.ts';

/** Events the control plane publishes. Every target state change is one, with its time. */
export interface ControlEvents {
  'target:state': TargetStateEvent;
  'drain:start': DrainStartEvent;
  'drain:end': DrainRecord;
}

export interface TargetStateEvent {
  readonly targetGroupArn: string;
  readonly targetId: string;
  readonly port: number;
  readonly from: TargetHealthView;
  readonly to: TargetHealthView;
  /** Wall-clock ms. */
  readonly at: number;
}

export interface DrainStartEvent {
  readonly targetGroupArn: string;
  readonly targetId: string;
  readonly port: number;
  readonly startedAt: number;
  readonly deadline: number;
  readonly timeoutSeconds: number;
}
