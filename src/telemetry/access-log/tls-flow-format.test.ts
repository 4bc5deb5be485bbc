/**
 * The access log's TLS fields, HTTP/2's request line, and the lines of TCP and TLS flows: ebb's own
 * `tcp`/`tls` lines in ALB's layout, read by Athena's ALB expression, and NLB's own format for a
 * Network Load Balancer's files, read by Athena's NLB expression.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { athenaParse, type AthenaAlbRow } from '../../../test/fixtures/athena-alb-regex.ts';
import type { FlowEndMessage, FlowEndReason, RequestEndMessage, TlsFacts } from '../../dataplane/channels.ts';
import { entryFromRequestEnd } from './entry.ts';
import { entryFromFlowEnd, FLOW_END_REASONS, flowErrorReason, flowErrorReasonCodes } from './flow-entry.ts';
import { formatAlbLine, formatClassicLine, formatJsonLine } from './format.ts';
import { formatNlbLine, nlbProtocol, nlbTime } from './nlb-format.ts';

const P = 'arn:aws:elasticloadbalancing:us-east-1:123456789012';
const TG = `${P}:targetgroup/web/0123456789abcdef`;
const CERT = 'arn:aws:acm:us-east-1:123456789012:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99';
const LB = { elb: 'app/web/89abcdef01234567', nodeAddress: '10.0.0.5' };
const NLB = { elb: 'net/tcp/1111222233334444', nodeAddress: '10.0.0.5' };
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const TLS: TlsFacts = { cipher: 'ECDHE-RSA-AES128-GCM-SHA256', protocol: 'TLSv1.2', serverName: 'www.example.com', certificateArn: CERT };

function request(over: Partial<RequestEndMessage> = {}): RequestEndMessage {
  return {
    dataPlaneId: 'dp-1',
    listenerArn: `${P}:listener/app/web/89abcdef01234567/fedcba9876543210`,
    listenerPort: 443,
    targetGroupArn: TG,
    targetKey: `${TG}|127.0.0.1|9001`,
    target: '127.0.0.1:9001',
    clientAddress: '192.0.2.7',
    clientPort: 50123,
    method: 'GET',
    url: '/hello',
    version: 'HTTP/1.1',
    host: 'www.example.com',
    userAgent: 'curl/8.5.0',
    status: 200,
    targetStatus: 200,
    fromTarget: true,
    requestTime: T0,
    durationMs: 12,
    requestProcessingMs: 0.4,
    targetResponseMs: 10.2,
    responseProcessingMs: 0,
    receivedBytes: 80,
    sentBytes: 150,
    classification: 'Compliant',
    classificationReason: null,
    errorReason: null,
    tls: TLS,
    ...over,
  };
}

function flow(over: Partial<FlowEndMessage> = {}): FlowEndMessage {
  return {
    dataPlaneId: 'dp-1',
    listenerArn: `${P}:listener/net/tcp/1111222233334444/g3d4b5e8bb8464cd`,
    listenerPort: 5432,
    protocol: 'tcp',
    targetGroupArn: TG,
    targetKey: `${TG}|10.0.0.9|5432`,
    target: '10.0.0.9:5432',
    clientAddress: '::ffff:192.0.2.7',
    clientPort: 51341,
    startTime: T0,
    durationMs: 61_500.4,
    connectMs: 1.6,
    receivedBytes: 98,
    sentBytes: 246,
    reason: 'closed',
    resetByEbb: false,
    tls: null,
    ...over,
  };
}

function albRow(line: string): AthenaAlbRow {
  const row = athenaParse(line);
  assert.ok(row !== null, `Athena's ALB expression does not read: ${line}`);
  return row;
}

test('HTTPS: type https, the URL in https, ssl_cipher, ssl_protocol, domain_name and chosen_cert_arn from the handshake', () => {
  const row = albRow(formatAlbLine(entryFromRequestEnd(request(), LB)));
  assert.deepEqual(
    [row.type, row.request_url, row.request_proto, row.ssl_cipher, row.ssl_protocol, row.domain_name, row.chosen_cert_arn],
    ['https', 'https://www.example.com:443/hello', 'HTTP/1.1', 'ECDHE-RSA-AES128-GCM-SHA256', 'TLSv1.2', 'www.example.com', CERT],
  );
  // No SNI: domain_name is -, the certificate presented still named.
  const noSni = albRow(formatAlbLine(entryFromRequestEnd(request({ tls: { ...TLS, serverName: null, protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256' } }), LB)));
  assert.deepEqual([noSni.domain_name, noSni.chosen_cert_arn, noSni.ssl_cipher, noSni.ssl_protocol], ['-', CERT, 'TLS_AES_128_GCM_SHA256', 'TLSv1.3']);
  // A WebSocket upgraded over TLS is wss; plain HTTP keeps its dashes.
  assert.equal(albRow(formatAlbLine(entryFromRequestEnd(request({ status: 101, targetStatus: 101 }), LB))).type, 'wss');
  const plain = albRow(formatAlbLine(entryFromRequestEnd(request({ tls: null, listenerPort: 80 }), LB)));
  assert.deepEqual([plain.type, plain.request_url, plain.ssl_cipher, plain.ssl_protocol, plain.domain_name, plain.chosen_cert_arn], ['http', 'http://www.example.com:80/hello', '-', '-', '-', '-']);
  // The same in JSON and in Classic's line.
  const json = JSON.parse(formatJsonLine(entryFromRequestEnd(request(), LB))) as Record<string, unknown>;
  assert.deepEqual([json['type'], json['ssl_protocol'], json['domain_name'], json['chosen_cert_arn']], ['https', 'TLSv1.2', 'www.example.com', CERT]);
  assert.match(formatClassicLine(entryFromRequestEnd(request(), { elb: 'classic', nodeAddress: '10.0.0.5' })), / ECDHE-RSA-AES128-GCM-SHA256 TLSv1\.2$/);
});

test('HTTP/2: type h2 and the request line with HTTP/2.0, as ALB writes them', () => {
  const line = formatAlbLine(entryFromRequestEnd(request({ version: 'HTTP/2.0', host: 'www.example.com' }), LB));
  assert.match(line, /^h2 /);
  assert.ok(line.includes(' "GET https://www.example.com:443/hello HTTP/2.0" '), line);
  const row = albRow(line);
  assert.deepEqual([row.type, row.request_verb, row.request_proto, row.ssl_protocol], ['h2', 'GET', 'HTTP/2.0', 'TLSv1.2']);
});

test("a TCP flow in ALB's layout: type tcp, the target, the connect time, bytes, - where a flow has nothing; Athena's ALB table reads it", () => {
  const line = formatAlbLine(entryFromFlowEnd(flow(), NLB));
  const row = albRow(line);
  assert.deepEqual(row, {
    type: 'tcp',
    time: '2026-01-02T03:05:07.178400Z',
    elb: 'net/tcp/1111222233334444',
    client_ip: '192.0.2.7',
    client_port: '51341',
    target_ip: '10.0.0.9',
    target_port: '5432',
    request_processing_time: '-1',
    target_processing_time: '0.002',
    response_processing_time: '-1',
    elb_status_code: '-',
    target_status_code: '-',
    received_bytes: '98',
    sent_bytes: '246',
    // `"- - - "`, ALB's own request field for no request, as Athena's expression splits it.
    request_verb: '-',
    request_url: '- -',
    request_proto: '',
    user_agent: '-',
    ssl_cipher: '-',
    ssl_protocol: '-',
    target_group_arn: TG,
    trace_id: '-',
    domain_name: '-',
    chosen_cert_arn: '-',
    matched_rule_priority: '0',
    request_creation_time: '2026-01-02T03:04:05.678000Z',
    actions_executed: 'forward',
    redirect_url: '-',
    lambda_error_reason: '-',
    target_port_list: '10.0.0.9:5432',
    target_status_code_list: '-',
    classification: '-',
    classification_reason: '-',
    conn_trace_id: '-',
  });
});

test('a TLS flow carries its handshake; flows ended otherwise carry ebb\'s code; one with no target has no target, rule or action', () => {
  const tls = albRow(formatAlbLine(entryFromFlowEnd(flow({ protocol: 'tls', tls: TLS, reason: 'idle_timeout', resetByEbb: true }), NLB)));
  assert.deepEqual(
    [tls.type, tls.ssl_cipher, tls.ssl_protocol, tls.domain_name, tls.chosen_cert_arn, tls.lambda_error_reason],
    ['tls', 'ECDHE-RSA-AES128-GCM-SHA256', 'TLSv1.2', 'www.example.com', CERT, 'FlowIdleTimeout'],
  );
  const none = albRow(formatAlbLine(entryFromFlowEnd(flow({ targetGroupArn: null, targetKey: null, target: null, connectMs: -1, reason: 'no_target', resetByEbb: true }), NLB)));
  assert.deepEqual(
    [none.target_ip, none.target_processing_time, none.target_group_arn, none.matched_rule_priority, none.actions_executed, none.lambda_error_reason, none.target_port_list],
    ['', '-1', '-', '-', '-', 'NoRoutableTarget', '-'],
  );
  for (const [reason, code] of Object.entries(FLOW_END_REASONS)) {
    const row = albRow(formatAlbLine(entryFromFlowEnd(flow({ reason: reason as FlowEndReason }), NLB)));
    assert.equal(row.lambda_error_reason, code ?? '-', reason);
    if (code !== null) assert.match(code, /^[A-Z][A-Za-z]+$/);
  }
  assert.equal(flowErrorReason('some new_reason'), 'SomeNewReason');
  const json = JSON.parse(formatJsonLine(entryFromFlowEnd(flow({ reason: 'target_reset' }), NLB))) as Record<string, unknown>;
  assert.deepEqual([json['type'], json['elb_status_code'], json['request_verb'], json['error_reason'], json['target_processing_time']], ['tcp', null, null, 'TargetConnectionReset', 0.002]);
});

/**
 * Athena's expression for NLB access logs, from the CREATE TABLE of "Querying Network Load Balancer
 * logs" (docs.aws.amazon.com/athena/latest/ug/networkloadbalancer-classic-logs.html; the version with
 * the alpn and tls_connection_creation_time columns), anchored as the RegexSerDe matches whole lines.
 */
const ATHENA_NLB_REGEX = new RegExp(
  '^' +
    String.raw`([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*):([0-9]*) ([^ ]*):([0-9]*) ([-.0-9]*) ([-.0-9]*) ([-0-9]*) ([-0-9]*) ([-0-9]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ?([^ ]*)?( .*)?` +
    '$',
);
const ATHENA_NLB_COLUMNS = [
  'type', 'version', 'time', 'elb', 'listener_id', 'client_ip', 'client_port', 'target_ip', 'target_port', 'tcp_connection_time_ms', 'tls_handshake_time_ms',
  'received_bytes', 'sent_bytes', 'incoming_tls_alert', 'cert_arn', 'certificate_serial', 'tls_cipher_suite', 'tls_protocol_version', 'tls_named_group',
  'domain_name', 'alpn_fe_protocol', 'alpn_be_protocol', 'alpn_client_preference_list', 'tls_connection_creation_time',
] as const;

function nlbRow(line: string): Record<string, string> {
  const m = ATHENA_NLB_REGEX.exec(line);
  assert.ok(m !== null, `Athena's NLB expression does not read: ${line}`);
  assert.equal(m[25], undefined, 'no field beyond the 24 columns');
  return Object.fromEntries(ATHENA_NLB_COLUMNS.map((c, i) => [c, m[i + 1] ?? '']));
}

test("a TLS flow in NLB's own format, as Athena's NLB table reads it; a TCP flow the same with type tcp and - for TLS", () => {
  const facts = { elb: 'net/tcp/1111222233334444', listenerId: 'g3d4b5e8bb8464cd', listenerAddress: '172.100.100.185' };
  const line = formatNlbLine(flow({ protocol: 'tls', listenerPort: 443, tls: { ...TLS, serverName: 'my-nlb.example.com' } }), facts);
  assert.equal(
    line,
    `tls 2.0 2026-01-02T03:05:07 net/tcp/1111222233334444 g3d4b5e8bb8464cd 192.0.2.7:51341 172.100.100.185:443 61500 - 98 246 - ${CERT} - ECDHE-RSA-AES128-GCM-SHA256 tlsv12 - my-nlb.example.com - - - 2026-01-02T03:04:05`,
  );
  const row = nlbRow(line);
  assert.deepEqual(
    [row.type, row.version, row.client_ip, row.target_ip, row.target_port, row.tcp_connection_time_ms, row.cert_arn, row.tls_protocol_version, row.domain_name, row.tls_connection_creation_time],
    ['tls', '2.0', '192.0.2.7', '172.100.100.185', '443', '61500', CERT, 'tlsv12', 'my-nlb.example.com', '2026-01-02T03:04:05'],
  );
  const tcp = nlbRow(formatNlbLine(flow({ clientAddress: '2001:db8::7' }), { ...facts, listenerAddress: '::1' }));
  assert.deepEqual(
    [tcp.type, tcp.client_ip, tcp.client_port, tcp.target_ip, tcp.cert_arn, tcp.tls_cipher_suite, tcp.tls_protocol_version, tcp.domain_name],
    ['tcp', '2001:db8::7', '51341', '::1', '-', '-', '-', '-'],
  );
  // The server name is URL-encoded, as NLB writes it: a client's bytes cannot end the field.
  assert.equal(nlbRow(formatNlbLine(flow({ protocol: 'tls', tls: { ...TLS, serverName: 'a b"c' } }), facts)).domain_name, 'a%20b%22c');
  assert.equal(nlbProtocol('TLSv1.3'), 'tlsv13');
  assert.equal(nlbTime(Date.UTC(2018, 11, 20, 2, 59, 40, 999)), '2018-12-20T02:59:40');
});

test("docs/access-logs.md lists every error_reason code of a flow's line", () => {
  const doc = readFileSync(new URL('../../../docs/access-logs.md', import.meta.url), 'utf8');
  assert.deepEqual(
    flowErrorReasonCodes().filter((c) => !doc.includes(`\`${c}\``)),
    [],
  );
});
