import type { ListenerProtocol, TargetGroupProtocol } from './resources.ts';

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
  /** HTTPS and TLS listeners: what the handshake offers; null for HTTP and TCP. */
  readonly tls: ListenerTls | null;
}

/** A TLS listener's certificates and policy. */
export interface ListenerTls {
  /** The default certificate first (used when the client sends no SNI or one no certificate matches), then the others. */
  readonly certificates: readonly ListenerCertificate[];
  readonly policy: TlsPolicySettings;
}

export interface ListenerCertificate {
  readonly arn: string;
  /** Certificate then chain, PEM. */
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  /** DNS names it serves (lower case; `*.example.com` matches one label). */
  readonly names: readonly string[];
}

/** A security policy as Node's TLS settings (see `tls-policies.ts`). */
export interface TlsPolicySettings {
  readonly name: string;
  readonly minVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  readonly maxVersion: 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher list for TLS 1.2 and below (with `@SECLEVEL=0` where the policy allows TLS 1.0/1.1). */
  readonly ciphers: string;
  /** TLS 1.3 cipher suites, colon-separated; empty when the policy does not allow TLS 1.3. */
  readonly ciphersuites: string;
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
  /** `routing.http2.enabled`: HTTPS listeners offer `h2` by ALPN. */
  readonly http2: boolean;
  /** TCP and TLS listeners: a flow idle this long is closed (listener attribute `tcp.idle_timeout.seconds`). */
  readonly tcpIdleTimeoutMs: number;
  /**
   * TCP and TLS listeners: each connection starts with a PROXY protocol header (version 1 or 2) from a
   * load balancer in front of ebb, which names the client; a connection without one is refused.
   * Absent: false.
   */
  readonly acceptProxyProtocol?: boolean;
}

export interface TargetGroupRoute {
  readonly arn: string;
  readonly name: string;
  /** HTTP and HTTPS groups take requests (HTTPS over TLS to the target); TCP groups take flows. */
  readonly protocol: TargetGroupProtocol;
  /** HTTPS groups: how the target's TLS is checked; null for HTTP and TCP. */
  readonly targetTls: TargetTls | null;
  /** TCP groups: `proxy_protocol_v2.enabled`, each flow to a target starts with a PROXY v2 header. */
  readonly proxyProtocolV2: boolean;
  /**
   * TCP groups: `deregistration_delay.connection_termination.enabled`, the flows still open at a drain's
   * deadline are closed (false: they live on until they close, as NLB's default).
   */
  readonly connectionTermination: boolean;
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

/** TLS to an HTTPS group's targets. As ALB, the target's certificate is not verified unless a CA is given. */
export interface TargetTls {
  /**
   * PEM of the CA the target's certificate must chain to (the group's `ebb.target_tls.ca_file`); null:
   * not verified. Empty: the file could not be read, and nothing is trusted (fails closed).
   */
  readonly caPem: string | null;
}
