import type { HealthCheckConfig } from '../domain/health-check.ts';
import type { ForwardAction, ListenerProtocol, LoadBalancerType, Tag, TargetGroupProtocol } from '../domain/resources.ts';
import type { ListenerTlsInput } from './listener-rules.ts';

/** Inputs of the control plane's commands and queries (what the API and config translate into); their results are in outputs.ts. */

export interface CreateLoadBalancerInput {
  readonly name: string;
  readonly type?: LoadBalancerType;
  readonly scheme?: 'internet-facing' | 'internal';
  readonly attributes?: Readonly<Record<string, string>>;
  readonly tags?: readonly Tag[];
  /** Who owns the resource; `config` for what the configuration file declares. Default `api`. */
  readonly source?: 'api' | 'config';
}

/** HTTPS and TLS listeners: `certificateArns` (exactly one, the default), `sslPolicy`, `alpnPolicy` (listener-rules.ts). */
export interface CreateListenerInput extends ListenerTlsInput {
  readonly loadBalancerArn: string;
  readonly protocol: ListenerProtocol;
  readonly port: number;
  readonly address?: string;
  readonly defaultActions: readonly ForwardAction[];
  readonly tags?: readonly Tag[];
  /** Who owns the resource; `config` for what the configuration file declares. Default `api`. */
  readonly source?: 'api' | 'config';
  /** Listener attributes (`tcp.idle_timeout.seconds`); the file sets them at creation, the API with ModifyListenerAttributes. */
  readonly attributes?: Readonly<Record<string, string>>;
}

/** What is left out is kept; `certificateArns` (one) replaces the default certificate. */
export interface ModifyListenerInput extends ListenerTlsInput {
  readonly port?: number;
  readonly protocol?: ListenerProtocol;
  readonly defaultActions?: readonly ForwardAction[];
  /** The configuration file's: the listener's whole attribute set, replacing it (the API uses ModifyListenerAttributes). */
  readonly attributes?: Readonly<Record<string, string>>;
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
  readonly listeners: ReadonlyArray<ListenerTlsInput & {
    readonly protocol: ListenerProtocol;
    readonly port: number;
    readonly address?: string;
    /** Name of one of `targetGroups`, which the listener forwards to. */
    readonly targetGroupName: string;
  }>;
}

/** A change to a Classic load balancer's attributes (ModifyLoadBalancerAttributes); what is left out stays. */
export interface ClassicAttributesChange {
  /** Load balancer attributes in their ELBv2 names (ConnectionSettings.IdleTimeout, desync mitigation). */
  readonly attributes?: Readonly<Record<string, string>>;
  readonly crossZone?: boolean;
  /** Enabled sets each of its groups' deregistration delay to the timeout (given, else the one kept), or to 0. */
  readonly connectionDraining?: { readonly enabled: boolean; readonly timeoutSeconds?: number };
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

// A result, not an input: re-exported so that importers outside src/control/ that still name this
// file keep compiling. New code imports it from outputs.ts.
export type { TargetHealthDescription } from './outputs.ts';
