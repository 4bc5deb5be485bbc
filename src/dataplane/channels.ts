import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * The data plane's diagnostics channels. The data plane only publishes; metrics and access logs
 * subscribe. Publishing is skipped entirely (no message object is built) while a channel has no
 * subscriber, so these cost nothing when unused.
 */
export const CHANNEL_NAMES = {
  requestEnd: 'ebb:request:end',
  upstreamError: 'ebb:upstream:error',
  tunnelOpen: 'ebb:tunnel:open',
  tunnelClose: 'ebb:tunnel:close',
  clientError: 'ebb:client:error',
} as const;

/** Published once per proxied request, when it ends (answered, failed or cut). */
export interface RequestEndMessage {
  readonly dataPlaneId: string;
  readonly listenerArn: string;
  readonly targetGroupArn: string | null;
  /** `RoutableTarget.key`, or null when no target was picked. */
  readonly targetKey: string | null;
  readonly method: string;
  readonly status: number;
  /** Whether the status was the target's (false: ebb answered, e.g. 502/503/504). */
  readonly fromTarget: boolean;
  readonly durationMs: number;
  /** Target response time: from the request sent to the response head received; -1 if none. */
  readonly targetResponseMs: number;
  /** `ProxyError.reason`, or null on success. */
  readonly errorReason: string | null;
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
