import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * The data plane's diagnostics channels. The data plane only publishes; metrics and access logs
 * subscribe. Publishing is skipped entirely (no message object is built) while a channel has no
 * subscriber, so these cost nothing when unused. Two are not the data plane's, and ebb's own process
 * publishes them: `connectionLost`, when a data-plane process is gone (a process cannot say so itself),
 * and `requestDigest`, a worker's request ends folded into one message (request-digest.ts).
 */
export const CHANNEL_NAMES = {
  requestEnd: 'ebb:request:end',
  upstreamError: 'ebb:upstream:error',
  tunnelOpen: 'ebb:tunnel:open',
  tunnelClose: 'ebb:tunnel:close',
  clientError: 'ebb:client:error',
  flowOpen: 'ebb:flow:open',
  flowEnd: 'ebb:flow:end',
  tlsError: 'ebb:tls:error',
  http2SessionEnd: 'ebb:http2:session:end',
  connectionOpen: 'ebb:connection:open',
  connectionClose: 'ebb:connection:close',
  connectionRefused: 'ebb:connection:refused',
  connectionCount: 'ebb:connection:count',
  connectionLost: 'ebb:connection:lost',
  requestDigest: 'ebb:request:digest',
} as const;

/** The channels a data plane publishes on, which a worker forwards to ebb's process: all but `connectionLost` and `requestDigest`. */
export const FORWARDED_CHANNEL_NAMES: readonly string[] = Object.values(CHANNEL_NAMES).filter(
  (name) => name !== CHANNEL_NAMES.connectionLost && name !== CHANNEL_NAMES.requestDigest,
);

/** What a TLS handshake settled (ALB's ssl_cipher, ssl_protocol, domain_name, chosen_cert_arn). */
export interface TlsFacts {
  /** OpenSSL's name (`ECDHE-RSA-AES128-GCM-SHA256`, `TLS_AES_128_GCM_SHA256`). */
  readonly cipher: string;
  /** `TLSv1.2`, `TLSv1.3`. */
  readonly protocol: string;
  /** The SNI the client sent, or null. */
  readonly serverName: string | null;
  /** The ARN of the certificate that was presented. */
  readonly certificateArn: string;
}

/**
 * Published once per request, when it ends: relayed, answered by ebb (400, 408, 431, 503, ...),
 * failed (502, 504) or cut. It carries what an ALB access-log line and ELB's metrics need.
 */
export interface RequestEndMessage {
  readonly dataPlaneId: string;
  readonly listenerArn: string;
  /** The port the listener is bound on. */
  readonly listenerPort: number;
  readonly targetGroupArn: string | null;
  /** `RoutableTarget.key`, or null when no target was picked. */
  readonly targetKey: string | null;
  /** The target's address as `host:port` (IPv6 in brackets), or null when none was picked. */
  readonly target: string | null;
  readonly clientAddress: string;
  readonly clientPort: number;
  /** `-` when the request head could not be read. */
  readonly method: string;
  /** The request target as the client sent it; `-` when the head could not be read. */
  readonly url: string;
  /** The version on the client's request line (`HTTP/1.1`, `HTTP/1.0`, `-` for none). */
  readonly version: string;
  readonly host: string | null;
  readonly userAgent: string | null;
  /** The status the client got (ELB's `elb_status_code`); 0 when the connection was cut before any. */
  readonly status: number;
  /** The target's status, or null when no target answered. */
  readonly targetStatus: number | null;
  /** Whether the status was the target's (false: ebb answered, e.g. 502/503/504). */
  readonly fromTarget: boolean;
  /** Wall-clock ms since the epoch at which the request head was whole (ALB's `request_creation_time`). */
  readonly requestTime: number;
  /** From the head whole to the end. */
  readonly durationMs: number;
  /** From the head whole to the request sent to the target; -1 if it was not sent. */
  readonly requestProcessingMs: number;
  /** Target response time: from the request sent to the response head received; -1 if none. */
  readonly targetResponseMs: number;
  /** From the target's response head to its start towards the client; -1 if none. */
  readonly responseProcessingMs: number;
  /** Bytes read from the client for this request (head and body). */
  readonly receivedBytes: number;
  /** Bytes written to the client for this request (head and body). */
  readonly sentBytes: number;
  /** The desync classification (null when the head could not be read). */
  readonly classification: 'Compliant' | 'Acceptable' | 'Ambiguous' | 'Severe' | null;
  readonly classificationReason: string | null;
  /** `ProxyError.reason` or ebb's refusal reason, or null on success. */
  readonly errorReason: string | null;
  /** HTTPS listeners: the connection's TLS; null on HTTP listeners. */
  readonly tls: TlsFacts | null;
}

/** A TCP or TLS flow given a target (NLB's NewFlowCount). */
export interface FlowOpenMessage {
  readonly dataPlaneId: string;
  readonly listenerArn: string;
  readonly targetGroupArn: string;
  readonly targetKey: string;
}

/** How a flow ended: who closed it, or what ebb did. */
export type FlowEndReason =
  /** The client closed (FIN) and the target's side then ended too. */
  | 'closed'
  /** The client reset the connection (TCP_Client_Reset_Count). */
  | 'client_reset'
  /** The target reset the connection (TCP_Target_Reset_Count). */
  | 'target_reset'
  /** No byte either way for the listener's `tcp.idle_timeout.seconds`. */
  | 'idle_timeout'
  /** Closed by ebb at a drain deadline with connection termination on, or because the target went unhealthy. */
  | 'terminated'
  /** ebb's own shutdown or the listener's removal closed it. */
  | 'shutdown'
  /** The target could not be reached (refused, timed out). */
  | 'connect_failed'
  /** The group had no target to give it. */
  | 'no_target';

/** Published once per TCP or TLS flow, when it ends: what the access log's `tcp`/`tls` entries and NLB's metrics need. */
export interface FlowEndMessage {
  readonly dataPlaneId: string;
  readonly listenerArn: string;
  readonly listenerPort: number;
  readonly protocol: 'tcp' | 'tls';
  readonly targetGroupArn: string | null;
  readonly targetKey: string | null;
  /** `host:port`, or null when none was picked. */
  readonly target: string | null;
  readonly clientAddress: string;
  readonly clientPort: number;
  /** Wall-clock ms since the epoch at which the flow was accepted. */
  readonly startTime: number;
  readonly durationMs: number;
  /** From accepting the flow to the target connection open; -1 if it never opened. */
  readonly connectMs: number;
  /** Bytes from the client (for `tls`: decrypted bytes). */
  readonly receivedBytes: number;
  /** Bytes to the client. */
  readonly sentBytes: number;
  readonly reason: FlowEndReason;
  /** Whether ebb sent the reset (TCP_ELB_Reset_Count): a terminated flow after its FIN went unanswered, an idle timeout. */
  readonly resetByEbb: boolean;
  readonly tls: TlsFacts | null;
}

/** A TLS handshake that failed (ELB's ClientTLSNegotiationErrorCount). */
export interface TlsErrorMessage {
  readonly dataPlaneId: string;
  readonly listenerArn: string;
  /**
   * `no_shared_cipher`, `unknown_server_name`, `not_tls` (e.g. plain HTTP on a TLS port), `protocol_version`, `timeout`,
   * `no_application_protocol`, `certificate_rejected`, `client_closed`, `other` (see tls/handshake-errors.ts, docs/tls.md).
   */
  readonly reason: string;
  readonly message: string;
}

/** Why an HTTP/2 client connection closed. */
export type Http2SessionEndReason =
  /** The client closed it (GOAWAY, or the connection ended). */
  | 'closed'
  /** No stream for the listener's idle timeout: ebb sent GOAWAY. */
  | 'idle_timeout'
  /** ebb's shutdown or the listener's removal: GOAWAY, then the streams in flight finished or were cut. */
  | 'shutdown'
  /** The client reset streams faster than the bound (CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM. */
  | 'rapid_reset'
  /** Node's HTTP/2 engine ended it for a protocol error or a limit (its GOAWAY carries the code). */
  | 'error'
  /**
   * ebb's PING unanswered and nothing read for the idle timeout: the client is gone, or Node's HTTP/2
   * engine had ended the connection for a protocol error without a word (client-session.ts `probeMsOf`).
   */
  | 'no_ping_answer';

/** Published once per HTTP/2 client connection (an `h2` session on an HTTPS listener), when it closes. */
export interface Http2SessionEndMessage {
  readonly dataPlaneId: string;
  readonly listenerArn: string;
  readonly clientAddress: string;
  readonly clientPort: number;
  /** Streams the client opened (each one request). */
  readonly streams: number;
  /** Streams the client reset before ebb was done with them (what the rapid-reset bound counts). */
  readonly clientResets: number;
  /** Streams still open when ebb cut the connection at a deadline (listener removal, shutdown). */
  readonly streamsCut: number;
  readonly reason: Http2SessionEndReason;
  readonly durationMs: number;
}

/**
 * A client connection a listener accepted (`ebb:connection:open`, once the connection limit let it in)
 * or one that closed (`ebb:connection:close`): ELB's NewConnectionCount and ActiveConnectionCount.
 * Published for listeners of every protocol; a Network Load Balancer's connections are counted as
 * flows, so its subscribers leave those out. Its close is published only for a connection whose open
 * was (the channel had a subscriber then). `ebb:connection:count` carries the same record with no
 * connection opening or closing: each listener's count, said when a process begins to report its
 * connections to another (a data-plane worker, the ebb retiring at a hot restart), so the connections
 * it already holds are counted there from the start.
 */
export interface ConnectionMessage {
  /**
   * The process holding the connection (a data-plane worker, the ebb retiring at a hot restart, or ebb
   * itself): its connections end when it does. Connections are counted per process, not per data plane,
   * because the connection limit that sees them is the process's (connection-limit.ts).
   */
  readonly pid: number;
  readonly listenerArn: string;
  readonly listenerPort: number;
  /**
   * The listener's client connections open in that process once this one opened or closed (of those
   * whose open was published). A state, not a step: a subscriber that missed a message, or began
   * after the process's first connections, is right again at the process's next message.
   */
  readonly open: number;
}

/**
 * A process that held client connections is gone (`ebb:connection:lost`): its connections went with
 * it, and it could not say so. Published in ebb's own process when the control side learns that a
 * data-plane worker, or the ebb retiring at a hot restart, is gone (src/workers/remote-data-plane.ts),
 * for each pid that worker's connection messages carried; never by a data plane, and never forwarded
 * by a worker (src/workers/telemetry-forwarder.ts leaves it out).
 */
export interface ConnectionLostMessage {
  readonly pid: number;
}

/** A client connection refused at the connection limit (ELB's RejectedConnectionCount), on a listener of any protocol. */
export interface ConnectionRefusedMessage {
  readonly pid: number;
  readonly listenerArn: string;
  /** 0 when Node did not say. */
  readonly listenerPort: number;
}

export interface UpstreamErrorMessage {
  readonly dataPlaneId: string;
  readonly targetKey: string;
  readonly reason: string;
}

export interface TunnelMessage {
  readonly dataPlaneId: string;
  readonly targetKey: string;
}

export interface ClientErrorMessage {
  readonly dataPlaneId: string;
  readonly listenerArn: string;
  readonly status: number;
  readonly reason: string;
}

export const requestEndChannel = diagnosticsChannel.channel(CHANNEL_NAMES.requestEnd);
export const upstreamErrorChannel = diagnosticsChannel.channel(CHANNEL_NAMES.upstreamError);
export const tunnelOpenChannel = diagnosticsChannel.channel(CHANNEL_NAMES.tunnelOpen);
export const tunnelCloseChannel = diagnosticsChannel.channel(CHANNEL_NAMES.tunnelClose);
export const clientErrorChannel = diagnosticsChannel.channel(CHANNEL_NAMES.clientError);
export const flowOpenChannel = diagnosticsChannel.channel(CHANNEL_NAMES.flowOpen);
export const flowEndChannel = diagnosticsChannel.channel(CHANNEL_NAMES.flowEnd);
export const tlsErrorChannel = diagnosticsChannel.channel(CHANNEL_NAMES.tlsError);
export const http2SessionEndChannel = diagnosticsChannel.channel(CHANNEL_NAMES.http2SessionEnd);
export const connectionOpenChannel = diagnosticsChannel.channel(CHANNEL_NAMES.connectionOpen);
export const connectionCloseChannel = diagnosticsChannel.channel(CHANNEL_NAMES.connectionClose);
export const connectionRefusedChannel = diagnosticsChannel.channel(CHANNEL_NAMES.connectionRefused);
export const connectionCountChannel = diagnosticsChannel.channel(CHANNEL_NAMES.connectionCount);
export const connectionLostChannel = diagnosticsChannel.channel(CHANNEL_NAMES.connectionLost);
export const requestDigestChannel = diagnosticsChannel.channel(CHANNEL_NAMES.requestDigest);
