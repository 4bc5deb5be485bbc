import type { HealthCheckConfig } from './health-check.ts';

/**
 * The resources, shaped after their AWS counterparts. These are plain records: what is stored, what
 * the API describes. Runtime state (health, drains) lives in the control plane.
 * Times are wall-clock milliseconds since the epoch.
 */
export type ListenerProtocol = 'HTTP' | 'HTTPS' | 'TCP';
export type TargetGroupProtocol = 'HTTP' | 'HTTPS' | 'TCP';
export type LoadBalancerType = 'application' | 'network' | 'classic';

export interface Tag {
  readonly key: string;
  readonly value: string;
}

export interface LoadBalancerRecord {
  readonly arn: string;
  readonly name: string;
  readonly type: LoadBalancerType;
  readonly scheme: 'internet-facing' | 'internal';
  readonly createdAt: number;
  /** Only the attributes that were set; defaults are filled in when read. */
  readonly attributes: Readonly<Record<string, string>>;
  readonly tags: readonly Tag[];
  /** Where the resource came from: the config file owns what it declares. */
  readonly source: 'api' | 'config';
  /** A Classic load balancer's own settings; present when `type` is `classic`. */
  readonly classic?: ClassicSettings;
}

/**
 * What a Classic load balancer has that the ELBv2 model does not. ConnectionDraining's Enabled is not
 * here: it is its target groups' `deregistration_delay.timeout_seconds` (0: off), the one source of
 * truth for how its instances drain.
 */
export interface ClassicSettings {
  /** ConnectionDraining.Timeout (1-3600), kept while draining is off so that turning it on restores it. */
  readonly drainingTimeoutSeconds: number;
  /** CrossZoneLoadBalancing.Enabled, kept and described; ebb has no zones, so it changes no routing. */
  readonly crossZone: boolean;
}

/** AWS's defaults for a new Classic load balancer created through the API. */
export const DEFAULT_CLASSIC_SETTINGS: ClassicSettings = { drainingTimeoutSeconds: 300, crossZone: false };

export interface ForwardAction {
  readonly type: 'forward';
  readonly targetGroupArn: string;
}

export interface ListenerRecord {
  readonly arn: string;
  readonly loadBalancerArn: string;
  readonly protocol: ListenerProtocol;
  readonly port: number;
  /** Address to bind; `0.0.0.0` unless the operator says otherwise. */
  readonly address: string;
  readonly defaultActions: readonly ForwardAction[];
  readonly tags: readonly Tag[];
  readonly source: 'api' | 'config';
}

export interface TargetGroupRecord {
  readonly arn: string;
  readonly name: string;
  readonly protocol: TargetGroupProtocol;
  readonly port: number;
  readonly targetType: 'instance' | 'ip';
  readonly healthCheck: HealthCheckConfig;
  readonly attributes: Readonly<Record<string, string>>;
  readonly tags: readonly Tag[];
  readonly createdAt: number;
  readonly source: 'api' | 'config';
}

/** One registration of a target (id + port) in a target group. */
export interface TargetRegistration {
  readonly targetGroupArn: string;
  /** An IP address, or an instance id resolved through the instance directory. */
  readonly id: string;
  readonly port: number;
  readonly source: 'api' | 'config';
}

/** A named instance (Classic ELB, Auto Scaling) and the address it is reached at. */
export interface InstanceRecord {
  readonly id: string;
  readonly address: string;
}

export function targetKey(targetGroupArn: string, id: string, port: number): string {
  return `${targetGroupArn}|${id}|${port}`;
}
