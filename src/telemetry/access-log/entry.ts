import type { RequestEndMessage } from '../../dataplane/channels.ts';
import { errorReasonCode, refusedBeforeRouting } from './error-reasons.ts';

/**
 * One access-log entry: the fields of an ALB access-log line, in AWS's order, as values. `null` is
 * what ALB writes as `-`. Field meanings are AWS's ("Access log entries" in "Access logs for your
 * Application Load Balancer"); where ebb has nothing to put (tracing, redirects) the field is null,
 * as ALB leaves it for a request that did not use the feature, and so are the TLS fields of a
 * request that did not come over TLS.
 */
export interface AccessLogEntry {
  /**
   * ALB's request types: `http`, `https` (HTTP over TLS), `h2` (HTTP/2), `ws` and `wss` (a request
   * upgraded to a WebSocket, over TLS for `wss`); and ebb's own for a flow of a TCP or TLS listener,
   * which ALB does not have: `tcp`, `tls` (./flow-entry.ts).
   */
  readonly type: 'http' | 'https' | 'h2' | 'ws' | 'wss' | 'tcp' | 'tls';
  /** Wall ms at which the response to the client ended (ALB: "the time when the load balancer generated a response"). */
  readonly time: number;
  /** The load balancer's resource id: `app/NAME/ID`, or a Classic load balancer's name. */
  readonly elb: string;
  readonly clientIp: string;
  readonly clientPort: number;
  /** The target the request was sent to; null when none was picked. */
  readonly targetIp: string | null;
  readonly targetPort: number | null;
  /** Seconds; -1 when the request was not sent to a target. */
  readonly requestProcessingTime: number;
  /** Seconds; -1 when the target sent no response head. */
  readonly targetProcessingTime: number;
  /** Seconds; -1 when no target response was relayed. */
  readonly responseProcessingTime: number;
  /** The status the client got; null when it got none (cut before any). */
  readonly elbStatusCode: number | null;
  readonly targetStatusCode: number | null;
  readonly receivedBytes: number;
  readonly sentBytes: number;
  /** The three parts of `"request"`; all null when the request line could not be read (`"- - - "`). */
  readonly requestVerb: string | null;
  readonly requestUrl: string | null;
  readonly requestProto: string | null;
  readonly userAgent: string | null;
  readonly sslCipher: string | null;
  readonly sslProtocol: string | null;
  readonly targetGroupArn: string | null;
  readonly traceId: string | null;
  readonly domainName: string | null;
  readonly chosenCertArn: string | null;
  /** 0 for a listener's default rule (ebb's listeners have only that); null when no rule was evaluated. */
  readonly matchedRulePriority: number | null;
  /** Wall ms at which the request head was whole. */
  readonly requestCreationTime: number;
  readonly actionsExecuted: string | null;
  readonly redirectUrl: string | null;
  readonly errorReason: string | null;
  readonly targetPortList: string | null;
  readonly targetStatusCodeList: string | null;
  /** The desync classification; null (`-`) for a Compliant request, as ALB writes it. */
  readonly classification: string | null;
  readonly classificationReason: string | null;
  readonly connTraceId: string | null;
}

/** What the access log knows of the load balancer a request came through. */
export interface LoadBalancerFacts {
  /** `app/NAME/ID`, or the Classic load balancer's name. */
  readonly elb: string;
  /** The address written as the host of `"request"` when the client sent no Host (ALB writes its node's address there). */
  readonly nodeAddress: string;
}

/** ALB truncates a User-Agent longer than 8 KB ("user_agent" in "Access log entries"). */
export const MAX_USER_AGENT = 8 * 1024;

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) as `10.0.0.1`, as ALB writes IPv4 clients. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** `host:port` with the IPv6 host in brackets → its parts, the host without brackets (ALB writes IPv6 bare). */
export function splitHostPort(hostPort: string): { host: string; port: number } | null {
  const colon = hostPort.lastIndexOf(':');
  if (colon <= 0) return null;
  const port = Number(hostPort.slice(colon + 1));
  if (!Number.isInteger(port)) return null;
  let host = hostPort.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host: plainAddress(host), port };
}

/** The Host header without its port: `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`. */
function hostName(host: string): string {
  const h = host.trim();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

const ABSOLUTE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/**
 * The URL of `"request"`: `protocol://host:port/uri`, `https` on a TLS connection, the host from the
 * Host header (HTTP/2's `:authority`) and the port the listener's ("HTTP method +
 * protocol://host:port/uri + HTTP version"); an absolute-form request target is kept as the client
 * sent it, as ALB "preserves the URL sent by the client, as is".
 */
export function requestUrl(url: string, host: string | null, listenerPort: number, nodeAddress: string, tls = false): string {
  if (ABSOLUTE.test(url)) return url;
  const name = host === null || host.trim() === '' ? nodeAddress : hostName(host);
  const authority = name.includes(':') && !name.startsWith('[') ? `[${name}]` : name;
  return `${tls ? 'https' : 'http'}://${authority}:${listenerPort}${url}`;
}

/** ALB's `type` of a request: its version, its upgrade, whether it came over TLS. */
function requestType(m: RequestEndMessage): AccessLogEntry['type'] {
  if (m.status === 101) return m.tls === null ? 'ws' : 'wss';
  if (m.version === 'HTTP/2.0') return 'h2';
  return m.tls === null ? 'http' : 'https';
}

/** Seconds with ALB's millisecond precision, from ms; -1 stays -1. */
function seconds(ms: number): number {
  if (ms < 0) return -1;
  return Math.round(ms) / 1000;
}

/** Builds the entry for one `ebb:request:end` message. */
export function entryFromRequestEnd(m: RequestEndMessage, lb: LoadBalancerFacts): AccessLogEntry {
  const refused = refusedBeforeRouting(m);
  const target = m.target === null ? null : splitHostPort(m.target);
  const headRead = m.method !== '-';
  const targetStatus = m.targetStatus === null || m.targetStatus === 0 ? null : m.targetStatus;
  const tier = m.classification;
  const classified = tier !== null && tier !== 'Compliant';
  const tls = m.tls;
  return {
    type: requestType(m),
    time: m.requestTime + Math.max(0, m.durationMs),
    elb: lb.elb,
    clientIp: plainAddress(m.clientAddress),
    clientPort: m.clientPort,
    targetIp: target?.host ?? null,
    targetPort: target?.port ?? null,
    requestProcessingTime: seconds(m.requestProcessingMs),
    targetProcessingTime: seconds(m.targetResponseMs),
    responseProcessingTime: seconds(m.responseProcessingMs),
    elbStatusCode: m.status === 0 ? null : m.status,
    targetStatusCode: targetStatus,
    receivedBytes: m.receivedBytes,
    sentBytes: m.sentBytes,
    requestVerb: headRead ? m.method : null,
    requestUrl: headRead ? requestUrl(m.url, m.host, m.listenerPort, lb.nodeAddress, tls !== null) : null,
    requestProto: headRead && m.version !== '-' ? m.version : null,
    userAgent: m.userAgent === null ? null : m.userAgent.slice(0, MAX_USER_AGENT),
    sslCipher: tls === null ? null : tls.cipher,
    sslProtocol: tls === null ? null : tls.protocol,
    targetGroupArn: refused ? null : m.targetGroupArn,
    traceId: null,
    domainName: tls === null ? null : tls.serverName,
    chosenCertArn: tls === null ? null : tls.certificateArn,
    matchedRulePriority: refused ? null : 0,
    requestCreationTime: m.requestTime,
    actionsExecuted: refused || m.targetGroupArn === null ? null : 'forward',
    redirectUrl: null,
    errorReason: errorReasonCode(m),
    targetPortList: target === null ? null : targetText(target.host, target.port),
    targetStatusCodeList: targetStatus === null ? null : String(targetStatus),
    classification: classified ? tier : null,
    classificationReason: classified ? m.classificationReason : null,
    connTraceId: null,
  };
}

/** `ip:port` as ALB writes a target (IPv6 without brackets). */
export function targetText(host: string, port: number): string {
  return `${host}:${port}`;
}
