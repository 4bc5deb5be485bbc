import type { HealthCheckConfig } from '../domain/health-check.ts';
import type { ListenerProtocol, LoadBalancerType, TargetGroupProtocol } from '../domain/resources.ts';

/**
 * What a configuration file declares, by name (the file never sees ARNs). It is applied as a three-way
 * merge (declared-plan.ts): what changed since the file last applied is applied; what the API changed
 * since, and what the file did not touch, stays as it is.
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
  /**
   * HTTPS and TLS listeners: the ARNs of its certificates, the default first, then those chosen by
   * SNI (a certificate the file reads from PEM files goes by the ARN ebb gives it).
   */
  readonly certificateArns?: readonly string[];
  /** HTTPS and TLS listeners: the security policy; ebb's default when left out. */
  readonly sslPolicy?: string;
  /** Listener attributes the file sets (`tcp.idle_timeout.seconds`). */
  readonly attributes?: Readonly<Record<string, string>>;
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

/** The `meta` record that keeps the file as it was last applied, the base of the next three-way merge. */
export const LAST_APPLIED_KEY = 'config.lastApplied';

/** The stored form of a declaration (the store adds the record's format version itself). */
export function storedDeclaration(declared: DeclaredState): { declared: DeclaredState } {
  return { declared };
}

/** The declaration kept in the store, or null when there is none (then the file wins for what it declares, as on a first start). */
export function restoreDeclaration(value: unknown): DeclaredState | null {
  if (value === null || typeof value !== 'object') return null;
  const declared = (value as { declared?: Partial<DeclaredState> | null }).declared;
  if (declared === undefined || declared === null) return null;
  if (!Array.isArray(declared.loadBalancers) || !Array.isArray(declared.targetGroups) || !Array.isArray(declared.instances)) return null;
  return declared as DeclaredState;
}

/** `attributes` with `change` made: a string sets a key, null unsets it (it reads as its default again). */
export function withChanges(attributes: Readonly<Record<string, string>>, change: Readonly<Record<string, string | null>>): Record<string, string> {
  const out: Record<string, string> = { ...attributes };
  for (const [key, value] of Object.entries(change)) {
    if (value === null) delete out[key];
    else out[key] = value;
  }
  return out;
}
