/**
 * What ebb tells of a request it refuses itself on an HTTP/1.1 connection, before any target is
 * picked: the log line, the client-error channel and the request's end.
 */
import { clientErrorChannel, requestEndChannel, type ClientErrorMessage } from './channels.ts';
import type { ClientSide } from './client-side.ts';
import type { DesyncVerdict } from './desync/classify.ts';
import { publishRefusal, type ListenerContext, type ProxyHost } from './http-proxy.ts';

/** The client-error channel's message (metrics count refusals by status and reason). */
export function publishClientError(host: ProxyHost, ctx: ListenerContext, status: number, reason: string): void {
  if (clientErrorChannel.hasSubscribers) {
    clientErrorChannel.publish({ dataPlaneId: host.id, listenerArn: ctx.route.arn, status, reason } satisfies ClientErrorMessage);
  }
}

export interface Refused {
  readonly status: number;
  readonly reason: string;
  /** Undefined while the head was never whole. */
  readonly method: string | undefined;
  readonly uri: string | undefined;
  readonly version: string | undefined;
  readonly verdict: DesyncVerdict | null;
  /** Bytes read and held when it was refused. */
  readonly heldBytes: number;
  readonly sentBytes: number;
}

type RefusingClient = Pick<ClientSide, 'clientAddress' | 'clientPort' | 'tls'> & { readonly requestTime: number; readonly requestStartedAt: number; readonly receivedBytes: number };

/** Logs and publishes a refusal. A head that was never whole counts from its first byte; its bytes are those held. */
export function tellRefusal(host: ProxyHost, ctx: ListenerContext, client: RefusingClient, r: Refused): void {
  host.log({ level: 'info', msg: 'request refused', dataPlane: host.id, listener: ctx.route.arn, status: r.status, reason: r.reason, method: r.method, url: r.uri });
  publishClientError(host, ctx, r.status, r.reason);
  if (!requestEndChannel.hasSubscribers) return;
  const whole = r.method !== undefined;
  publishRefusal(host, ctx, client, {
    method: r.method ?? '-',
    url: r.uri ?? '-',
    version: r.version ?? '-',
    status: r.status,
    reason: r.reason,
    verdict: r.verdict,
    requestTime: whole ? client.requestTime : Date.now(),
    durationMs: whole ? performance.now() - client.requestStartedAt : 0,
    receivedBytes: whole ? client.receivedBytes : r.heldBytes,
    sentBytes: r.sentBytes,
  });
}
