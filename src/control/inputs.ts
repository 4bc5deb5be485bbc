import type { HealthCheckConfig } from '../domain/health-check.ts';
import type {
  ForwardAction,
  ListenerProtocol,
  ListenerRecord,
  LoadBalancerRecord,
  LoadBalancerType,
  Tag,
  TargetGroupProtocol,
  TargetGroupRecord,
} from '../domain/resources.ts';
import type { TargetHealthView } from '../domain/target-health.ts';

/** Inputs and outputs of the control plane's commands and queries (what the API and config translate into). */

export interface CreateLoadBalancerInput {
  readonly name: string;
  readonly type?: LoadBalancerType;
  readonly scheme?: 'internet-facing' | 'internal';
  readonly attributes?: Readonly<Record<string, string>>;
  readonly tags?: readonly Tag[];
  /** Who owns the resource; `config` for what the configuration file declares. Default `api`. */
  readonly source?: 'api' | 'config';
}

export interface CreateListenerInput {
  readonly loadBalancerArn: string;
  readonly protocol: ListenerProtocol;
  readonly port: number;
  readonly address?: string;
  readonly defaultActions: readonly ForwardAction[];
  readonly tags?: readonly Tag[];
  /** Who owns the resource; `config` for what the configuration file declares. Default `api`. */
  readonly source?: 'api' | 'config';
}

export interface ModifyListenerInput {
  readonly port?: number;
  readonly protocol?: ListenerProtocol;
  readonly defaultActions?: readonly ForwardAction[];
}

export interface CreateTargetGroupInput {
  readonly name: string;
  readonly protocol: TargetGroupProtocol;
  readonly port: number;
  readonly targetType?: 'instance' | 'ip';
  readonly healthCheck?: Partial<HealthCheckConfig>;
  readonly attributes?: Readonly<Record<string, string>>;
  readonly tags?: readonly Tag[];
  /** Who owns the resource; `config` for what the configuration file declares. Default `api`. */
  readonly source?: 'api' | 'config';
}

/** A load balancer with its target groups and listeners, created as one change. */
export interface CreateLoadBalancerStackInput {
  readonly loadBalancer: CreateLoadBalancerInput;
  readonly targetGroups: readonly CreateTargetGroupInput[];
  readonly listeners: ReadonlyArray<{
    readonly protocol: ListenerProtocol;
    readonly port: number;
    readonly address?: string;
    /** Name of one of `targetGroups`, which the listener forwards to. */
    readonly targetGroupName: string;
  }>;
}

export interface LoadBalancerStack {
  readonly loadBalancer: LoadBalancerRecord;
  readonly targetGroups: readonly TargetGroupRecord[];
  readonly listeners: readonly ListenerRecord[];
}

export interface TargetInput {
  readonly id: string;
  /** Defaults to the target group's port. */
  readonly port?: number;
}

export interface DeregisterOptions {
  /** A per-call deregistration delay, overriding the group's attribute (0-3600). */
  readonly timeoutSeconds?: number;
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
}
