import type { FlowEndMessage } from '../../dataplane/channels.ts';
import { plainAddress } from './entry.ts';

/**
 * A Network Load Balancer's access-log line ("Access logs for your Network Load Balancer", Access log
 * entries), written to an NLB's S3-layout files as NLB writes them, so Athena's table for NLB logs
 * ("Querying Network Load Balancer logs") reads them:
 *
 *   type version time elb listener client:port destination:port connection_time tls_handshake_time
 *   received_bytes sent_bytes incoming_tls_alert chosen_cert_arn chosen_cert_serial tls_cipher
 *   tls_protocol_version tls_named_group domain_name alpn_fe_protocol alpn_be_protocol
 *   alpn_client_preference_list tls_connection_creation_time
 *
 * NLB logs only its TLS listeners' connections; ebb also writes its TCP listeners' flows here, with
 * the type `tcp` and `-` in every TLS field (ebb's own: a reader keeps to `tls` with `type = 'tls'`).
 * What ebb does not know is `-`, as NLB writes what it does not have: the handshake's time and the
 * client's TLS alert, the certificate's serial and named group (reserved by NLB), and ALPN (ebb's TLS
 * listeners negotiate none).
 */

/** What the line needs of the flow's listener and load balancer. */
export interface NlbListenerFacts {
  /** `net/NAME/ID`. */
  readonly elb: string;
  /** The listener's own id: the last part of its ARN (`g3d4b5e8bb8464cd` in NLB's example). */
  readonly listenerId: string;
  /** The address the listener is bound to (NLB's `destination` when a client connects to the load balancer directly). */
  readonly listenerAddress: string;
}

/** `2018-12-20T02:59:40`, UTC, to the second: NLB's `time` as its examples write it. */
export function nlbTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19);
}

/** `TLSv1.2` → `tlsv12`, NLB's spelling of `tls_protocol_version`. */
export function nlbProtocol(protocol: string): string {
  return protocol.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** `ip:port`, an IPv6 address without brackets, as NLB writes `client:port`. */
function endpoint(address: string, port: number): string {
  return `${plainAddress(address)}:${port}`;
}

function dash(value: string | null): string {
  return value === null || value === '' ? '-' : value;
}

/** The last part of a listener's ARN. */
export function listenerIdOf(listenerArn: string): string {
  return listenerArn.slice(listenerArn.lastIndexOf('/') + 1);
}

/** One NLB access-log line for a flow, without the newline. */
export function formatNlbLine(m: FlowEndMessage, l: NlbListenerFacts): string {
  const tls = m.tls;
  // URL-encoded, as NLB writes the server_name extension: a client's bytes cannot end the field.
  const domain = tls === null || tls.serverName === null ? '-' : encodeURIComponent(tls.serverName);
  return [
    m.protocol,
    '2.0',
    nlbTime(m.startTime + Math.max(0, m.durationMs)),
    l.elb,
    l.listenerId,
    endpoint(m.clientAddress, m.clientPort),
    endpoint(l.listenerAddress, m.listenerPort),
    String(Math.round(Math.max(0, m.durationMs))),
    '-',
    String(m.receivedBytes),
    String(m.sentBytes),
    '-',
    tls === null ? '-' : dash(tls.certificateArn),
    '-',
    tls === null ? '-' : dash(tls.cipher),
    tls === null ? '-' : nlbProtocol(tls.protocol),
    '-',
    domain,
    '-',
    '-',
    '-',
    nlbTime(m.startTime),
  ].join(' ');
}
