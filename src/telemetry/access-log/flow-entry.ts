import type { FlowEndMessage, FlowEndReason } from '../../dataplane/channels.ts';
import { plainAddress, splitHostPort, targetText, type AccessLogEntry, type LoadBalancerFacts } from './entry.ts';

/**
 * A TCP or TLS flow as an access-log entry. ALB has no such entry (its listeners are HTTP and HTTPS)
 * and NLB logs only TLS flows, in a format of its own (./nlb-format.ts, for a Network Load Balancer's
 * S3-layout files): this line is **ebb's own**, ALB's fields in ALB's order with the type `tcp` or
 * `tls`, so the node's log stays one format that Athena's ALB table reads whole. The fields a flow
 * has no value for (statuses, the request, the user agent) are `-`, as in ALB's line for a request
 * that never had one; the times follow Classic ELB's definitions for its TCP listeners ("Access logs
 * for your Classic Load Balancer"), the one ELB log that has TCP entries.
 */

/**
 * `error_reason` for a flow's end: ebb's codes, one CamelCase word as ALB's. Null (`-`) for a flow
 * both sides closed. Typed as a full record, so a new end reason fails the build here.
 */
export const FLOW_END_REASONS: { readonly [R in FlowEndReason]: string | null } = {
  closed: null,
  client_reset: 'ClientConnectionReset',
  target_reset: 'TargetConnectionReset',
  idle_timeout: 'FlowIdleTimeout',
  terminated: 'FlowTerminated',
  shutdown: 'LoadBalancerShutdown',
  connect_failed: 'TargetConnectionError',
  no_target: 'NoRoutableTarget',
};

/** The `error_reason` of a flow's end; a reason the data plane gains later is still one word (its words in CamelCase). */
export function flowErrorReason(reason: string): string | null {
  if (Object.hasOwn(FLOW_END_REASONS, reason)) return FLOW_END_REASONS[reason as FlowEndReason];
  const words = reason.split(/[^A-Za-z0-9]+/).filter((w) => w !== '');
  return words.length === 0 ? 'Unknown' : words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
}

/** Every code a flow's line can carry, for the documentation test. */
export function flowErrorReasonCodes(): string[] {
  return [...new Set(Object.values(FLOW_END_REASONS).filter((c): c is string => c !== null))].sort();
}

/** Seconds with millisecond precision, from ms; -1 stays -1. */
function seconds(ms: number): number {
  return ms < 0 ? -1 : Math.round(ms) / 1000;
}

/** Builds the ALB-layout entry for one `ebb:flow:end` message. */
export function entryFromFlowEnd(m: FlowEndMessage, lb: LoadBalancerFacts): AccessLogEntry {
  const target = m.target === null ? null : splitHostPort(m.target);
  const tls = m.tls;
  const routed = m.targetGroupArn !== null;
  return {
    type: m.protocol,
    // When both sides had closed; `request_creation_time` is when it was accepted.
    time: m.startTime + Math.max(0, m.durationMs),
    elb: lb.elb,
    clientIp: plainAddress(m.clientAddress),
    clientPort: m.clientPort,
    targetIp: target?.host ?? null,
    targetPort: target?.port ?? null,
    // Classic's TCP listener: no request to process, `backend_processing_time` the time to connect to the target.
    requestProcessingTime: -1,
    targetProcessingTime: seconds(m.connectMs),
    responseProcessingTime: -1,
    elbStatusCode: null,
    targetStatusCode: null,
    receivedBytes: m.receivedBytes,
    sentBytes: m.sentBytes,
    requestVerb: null,
    requestUrl: null,
    requestProto: null,
    userAgent: null,
    sslCipher: tls === null ? null : tls.cipher,
    sslProtocol: tls === null ? null : tls.protocol,
    targetGroupArn: m.targetGroupArn,
    traceId: null,
    domainName: tls === null ? null : tls.serverName,
    chosenCertArn: tls === null ? null : tls.certificateArn,
    matchedRulePriority: routed ? 0 : null,
    requestCreationTime: m.startTime,
    actionsExecuted: routed ? 'forward' : null,
    redirectUrl: null,
    errorReason: flowErrorReason(m.reason),
    targetPortList: target === null ? null : targetText(target.host, target.port),
    targetStatusCodeList: null,
    classification: null,
    classificationReason: null,
    connTraceId: null,
  };
}
