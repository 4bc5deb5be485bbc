import type { ListenerRecord, LoadBalancerRecord, TargetGroupRecord } from '../domain/resources.ts';
import type { TargetHealthView } from '../domain/target-health.ts';
import type { DrainSample } from './drain-series.ts';

/** What the control plane's commands and queries answer with (their inputs are in inputs.ts). */

export interface LoadBalancerStack {
  readonly loadBalancer: LoadBalancerRecord;
  readonly targetGroups: readonly TargetGroupRecord[];
  readonly listeners: readonly ListenerRecord[];
}

/** One certificate of an HTTPS or TLS listener, as DescribeListenerCertificates lists it. */
export interface ListenerCertificateView {
  readonly certificateArn: string;
  /** The listener's default certificate (served without SNI, or when no other matches). */
  readonly isDefault: boolean;
}

export interface TargetHealthDescription {
  readonly id: string;
  readonly port: number;
  readonly healthCheckPort: string;
  readonly health: TargetHealthView;
  /** Present while the target drains. */
  readonly drain?: DrainProgress;
}

export interface DrainProgress {
  readonly startedAt: number;
  readonly deadline: number;
  readonly requestsInFlight: number;
  readonly tunnelsOpen: number;
  /** The drain's work so far, sampled (drain-series.ts). */
  readonly series: readonly DrainSample[];
}

/** The record of a finished drain. */
export interface DrainRecord {
  readonly id: string;
  readonly targetGroupArn: string;
  readonly targetGroupName: string;
  readonly targetId: string;
  readonly port: number;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly timeoutSeconds: number;
  /** idle: nothing left in flight; deadline: the delay ran out; cancelled: re-registered or the group was deleted. */
  readonly outcome: 'idle' | 'deadline' | 'cancelled';
  readonly requestsCompleted: number;
  readonly requestsCut: number;
  readonly tunnelsClosed: number;
  readonly connectionsClosed: number;
  /**
   * A TCP group's drain that reached its deadline without connection termination: the flows left open
   * (they live on until they close, as on NLB). Absent otherwise.
   */
  readonly flowsLeftOpen?: number;
  /**
   * Requests in flight and tunnels open over the drain, at most 120 samples, the last at its end
   * (drain-series.ts). Absent from records kept before ebb sampled drains.
   */
  readonly series?: readonly DrainSample[];
}
