import type { ListenerProtocol } from './resources.ts';

/**
 * What a data plane needs to route, as one immutable value. The control plane builds a new snapshot on
 * every change and hands it to each data plane, which swaps its reference; the request path only ever
 * reads the snapshot it has and never waits on the control plane.
 */
export interface RoutingSnapshot {
  readonly version: number;
  readonly listeners: readonly ListenerRoute[];
  /** By target-group ARN. */
  readonly targetGroups: ReadonlyMap<string, TargetGroupRoute>;
}

export interface ListenerRoute {
  readonly arn: string;
  readonly protocol: ListenerProtocol;
  readonly address: string;
  readonly port: number;
  /** The forward action's group; null answers 503. */
  readonly targetGroupArn: string | null;
  readonly settings: ListenerSettings;
}

/** Timeouts and limits for one listener's connections (from its load balancer's attributes). */
export interface ListenerSettings {
  /** Client and target connections idle longer than this are closed (`idle_timeout.timeout_seconds`). */
  readonly idleTimeoutMs: number;
  /** Time allowed for a client to send a complete request head. */
  readonly clientHeaderTimeoutMs: number;
  readonly targetConnectTimeoutMs: number;
  /** Time allowed for a target to begin its response; 504 after it. */
  readonly targetResponseTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly maxHeadersCount: number;
  readonly xffMode: 'append' | 'preserve' | 'remove';
  /**
   * `routing.http.desync_mitigation_mode`: what is done with a request by its desync classification
   * (forward, forward then close both connections, or refuse), as ALB does.
   */
  readonly desyncMode: 'monitor' | 'defensive' | 'strictest';
}

export interface TargetGroupRoute {
  readonly arn: string;
  readonly name: string;
  readonly algorithm: 'round_robin' | 'least_outstanding_requests' | 'weighted_random';
  /** Targets that may receive new work, in a stable order. Never contains a draining target. */
  readonly targets: readonly RoutableTarget[];
  /** True when no target is healthy and the group routes to every registered, non-draining target. */
  readonly failOpen: boolean;
  /** `slow_start.duration_seconds` in ms; 0 is off. */
  readonly slowStartMs: number;
}

export interface RoutableTarget {
  /** Opaque, stable key of this registration (group + id + port); the data plane reports activity by it. */
  readonly key: string;
  readonly host: string;
  readonly port: number;
  /**
   * How long the target had been healthy when the snapshot was built (for slow start); null if not
   * healthy. A duration, not an instant: a data plane in another process or on another node adds the
   * time since it received the snapshot on its own clock, so no two processes' clocks are compared.
   */
  readonly healthyForMs: number | null;
}
