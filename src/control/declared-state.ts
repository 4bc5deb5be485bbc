import type { HealthCheckConfig } from '../domain/health-check.ts';
import type { ListenerProtocol, LoadBalancerType, TargetGroupProtocol } from '../domain/resources.ts';

/**
 * What a configuration file declares, by name (the file never sees ARNs). The control plane applies it
 * as a difference against what the file declared before: resources the file owns are created, changed
 * or removed to match; resources created through the API are left alone.
 */
export interface DeclaredState {
  readonly loadBalancers: readonly DeclaredLoadBalancer[];
  readonly targetGroups: readonly DeclaredTargetGroup[];
  readonly instances: ReadonlyArray<{ readonly id: string; readonly address: string }>;
}

export interface DeclaredLoadBalancer {
  readonly name: string;
  readonly type: LoadBalancerType;
  readonly attributes: Readonly<Record<string, string>>;
  readonly listeners: readonly DeclaredListener[];
}

export interface DeclaredListener {
  readonly protocol: ListenerProtocol;
  readonly port: number;
  readonly address?: string;
  /** Name of the target group of the listener's forward action. */
  readonly targetGroup: string;
}

export interface DeclaredTargetGroup {
  readonly name: string;
  readonly protocol: TargetGroupProtocol;
  readonly port: number;
  readonly targetType: 'instance' | 'ip';
  readonly healthCheck: Partial<HealthCheckConfig>;
  readonly attributes: Readonly<Record<string, string>>;
  readonly targets: ReadonlyArray<{ readonly id: string; readonly port?: number }>;
}
