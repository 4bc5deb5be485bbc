import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { athenaParse } from '../../../test/fixtures/athena-alb-regex.ts';
import type { RequestEndMessage } from '../../dataplane/channels.ts';
import { entryFromRequestEnd, MAX_USER_AGENT } from './entry.ts';
import { allErrorReasonCodes, errorReasonCode, PROXY_ERROR_REASONS } from './error-reasons.ts';
import { escapeQuoted, formatAlbLine, formatClassicLine, formatJsonLine, isoMicros } from './format.ts';

const TG = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef';
const LISTENER = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/89abcdef01234567/fedcba9876543210';
const LB = { elb: 'app/web/89abcdef01234567', nodeAddress: '10.0.0.5' };
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function message(over: Partial<RequestEndMessage> = {}): RequestEndMessage {
  return {
    dataPlaneId: 'dp-1',
    listenerArn: LISTENER,
    listenerPort: 8080,
    targetGroupArn: TG,
    targetKey: `${TG}|127.0.0.1|9001`,
    target: '127.0.0.1:9001',
    clientAddress: '127.0.0.1',
    clientPort: 50123,
    method: 'GET',
    url: '/hello?x=1',
    version: 'HTTP/1.1',
    host: 'example.com:8080',
    userAgent: 'curl/8.5.0',
    status: 200,
    targetStatus: 200,
    fromTarget: true,
    requestTime: T0,
    durationMs: 12.5,
    requestProcessingMs: 0.4,
    targetResponseMs: 10.2,
    responseProcessingMs: 0,
    receivedBytes: 80,
    sentBytes: 150,
    classification: 'Compliant',
    classificationReason: 'Compliant',
    errorReason: null,
    tls: null,
    ...over,
  };
}

function albRow(m: RequestEndMessage) {
  const line = formatAlbLine(entryFromRequestEnd(m, LB));
  const row = athenaParse(line);
  assert.ok(row !== null, `Athena's expression does not read: ${line}`);
  return { line, row };
}

test('a relayed request: every field of the ALB line, as Athena reads it', () => {
  const { row } = albRow(message());
  assert.deepEqual(row, {
    type: 'http',
    time: '2026-01-02T03:04:05.690500Z',
    elb: 'app/web/89abcdef01234567',
    client_ip: '127.0.0.1',
    client_port: '50123',
    target_ip: '127.0.0.1',
    target_port: '9001',
    request_processing_time: '0.000',
    target_processing_time: '0.010',
    response_processing_time: '0.000',
    elb_status_code: '200',
    target_status_code: '200',
    received_bytes: '80',
    sent_bytes: '150',
    request_verb: 'GET',
    request_url: 'http://example.com:8080/hello?x=1',
    request_proto: 'HTTP/1.1',
    user_agent: 'curl/8.5.0',
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
    target_port_list: '127.0.0.1:9001',
    target_status_code_list: '200',
    classification: '-',
    classification_reason: '-',
    conn_trace_id: '-',
  });
});

test('a 503 ebb answers (no target): target fields -, times -1, ebb error_reason, the rule and action still recorded', () => {
  const { row } = albRow(
    message({ targetKey: null, target: null, status: 503, targetStatus: null, fromTarget: false, requestProcessingMs: -1, targetResponseMs: -1, responseProcessingMs: -1, errorReason: 'no-target' }),
  );
  assert.equal(row.target_ip, '');
  assert.equal(row.target_port, '');
  assert.match(formatAlbLine(entryFromRequestEnd(message({ target: null, targetKey: null }), LB)).split(' ')[4] ?? '', /^-$/);
  assert.deepEqual(
    [row.request_processing_time, row.target_processing_time, row.response_processing_time, row.elb_status_code, row.target_status_code],
    ['-1', '-1', '-1', '503', '-'],
  );
  assert.equal(row.lambda_error_reason, 'NoRoutableTarget');
  assert.equal(row.target_port_list, '-');
  assert.equal(row.target_status_code_list, '-');
  assert.equal(row.matched_rule_priority, '0');
  assert.equal(row.actions_executed, 'forward');
  assert.equal(row.target_group_arn, TG);
});

test('a 502 for a refused connection keeps the target it was sent to, as ALB does', () => {
  const { row } = albRow(
    message({ status: 502, targetStatus: null, fromTarget: false, requestProcessingMs: -1, targetResponseMs: -1, responseProcessingMs: -1, errorReason: 'connect-refused:ECONNREFUSED' }),
  );
  assert.deepEqual([row.target_ip, row.target_port, row.target_status_code, row.lambda_error_reason], ['127.0.0.1', '9001', '-', 'TargetConnectionError']);
});

test('a request refused while its head was read: no rule, no group, no action; the desync classification is recorded', () => {
  const { row } = albRow(
    message({
      targetGroupArn: TG,
      targetKey: null,
      target: null,
      status: 400,
      targetStatus: null,
      fromTarget: false,
      requestProcessingMs: -1,
      targetResponseMs: -1,
      responseProcessingMs: -1,
      userAgent: null,
      host: null,
      classification: 'Severe',
      classificationReason: 'UndefinedContentLengthSemantics',
      errorReason: 'desync-severe:UndefinedContentLengthSemantics',
    }),
  );
  assert.deepEqual(
    [row.target_group_arn, row.matched_rule_priority, row.actions_executed, row.classification, row.classification_reason, row.lambda_error_reason, row.user_agent],
    ['-', '-', '-', 'Severe', 'UndefinedContentLengthSemantics', 'DesyncMitigationSevere', '-'],
  );
  // No Host: the node's address stands for the host, as ALB writes its own.
  assert.equal(row.request_url, 'http://10.0.0.5:8080/hello?x=1');
});

test('a request line never read is "- - - ", as ALB writes it, and still parses', () => {
  const { line, row } = albRow(
    message({ method: '-', url: '-', version: '-', host: null, userAgent: null, status: 408, targetStatus: null, target: null, targetKey: null, classification: null, classificationReason: null, errorReason: 'header-timeout', requestProcessingMs: -1, targetResponseMs: -1, responseProcessingMs: -1 }),
  );
  assert.ok(line.includes(' "- - - " "-" '), line);
  assert.equal(row.request_verb, '-');
  assert.equal(row.lambda_error_reason, 'ClientHeaderTimeout');
  assert.equal(row.elb_status_code, '408');
});

test('a connection cut before any status: elb_status_code -', () => {
  const { row } = albRow(message({ status: 0, targetStatus: null, errorReason: 'client-aborted' }));
  assert.equal(row.elb_status_code, '-');
  assert.equal(row.lambda_error_reason, 'ClientClosedConnection');
});

test('quoting: the client cannot end a field early, and JSON carries its bytes as sent', () => {
  const ua = 'evil" "x\\y\ttab\u00e9\u0001';
  const url = '/a b"c';
  const m = message({ userAgent: ua, url, host: 'h"st' });
  const { line, row } = albRow(m);
  assert.equal(row.user_agent, 'evil\\x22 \\x22x\\x5cy\\x09tab\\xe9\\x01');
  assert.equal(row.request_url, 'http://h\\x22st:8080/a\\x20b\\x22c');
  assert.equal(row.request_proto, 'HTTP/1.1');
  assert.equal(row.target_group_arn, TG, line);
  const json = JSON.parse(formatJsonLine(entryFromRequestEnd(m, LB))) as Record<string, unknown>;
  assert.equal(json['user_agent'], ua);
  assert.equal(json['request_url'], 'http://h"st:8080/a b"c');
});

test('escapeQuoted: printable ASCII stays, characters above 0xff become their UTF-8 bytes', () => {
  assert.equal(escapeQuoted('plain text/1.0'), 'plain text/1.0');
  assert.equal(escapeQuoted('a b', true), 'a\\x20b');
  assert.equal(escapeQuoted('\u20ac'), '\\xe2\\x82\\xac');
  assert.equal(escapeQuoted('x\u{1f600}y'), 'x\\xf0\\x9f\\x98\\x80y');
});

test('a User-Agent longer than 8 KB is cut at 8 KB, as ALB cuts it', () => {
  const { row } = albRow(message({ userAgent: 'a'.repeat(MAX_USER_AGENT + 100) }));
  assert.equal(row.user_agent.length, MAX_USER_AGENT);
});

test('IPv6 client and target are written without brackets; an IPv4 client on a dual-stack socket as IPv4', () => {
  const { row } = albRow(message({ clientAddress: '::1', target: '[::1]:9001', host: '[::1]:8080' }));
  assert.deepEqual([row.client_ip, row.client_port, row.target_ip, row.target_port, row.request_url], ['::1', '50123', '::1', '9001', 'http://[::1]:8080/hello?x=1']);
  assert.equal(albRow(message({ clientAddress: '::ffff:10.1.2.3' })).row.client_ip, '10.1.2.3');
});

test('an absolute-form request target is kept as the client sent it; an upgrade is type ws', () => {
  assert.equal(albRow(message({ url: 'http://other.example/x' })).row.request_url, 'http://other.example/x');
  assert.equal(albRow(message({ status: 101, targetStatus: 101 })).row.type, 'ws');
});

test('times: ISO 8601 with microseconds; processing times in seconds with millisecond precision', () => {
  assert.equal(isoMicros(Date.UTC(2018, 6, 2, 22, 23, 0, 186) + 0.641), '2018-07-02T22:23:00.186641Z');
  assert.equal(isoMicros(Date.UTC(2026, 0, 1)), '2026-01-01T00:00:00.000000Z');
  const { row } = albRow(message({ requestProcessingMs: 1.6, targetResponseMs: 1234.4, responseProcessingMs: 0 }));
  assert.deepEqual([row.request_processing_time, row.target_processing_time, row.response_processing_time], ['0.002', '1.234', '0.000']);
});

test('JSON lines: the same fields under the Athena column names, - as null, numbers as numbers', () => {
  const e = entryFromRequestEnd(message({ status: 504, targetStatus: null, targetResponseMs: -1, responseProcessingMs: -1, errorReason: 'response-timeout' }), LB);
  const json = JSON.parse(formatJsonLine(e)) as Record<string, unknown>;
  assert.equal(Object.keys(json).length, 34);
  assert.deepEqual(
    [json['elb_status_code'], json['target_status_code'], json['target_processing_time'], json['error_reason'], json['ssl_cipher'], json['time']],
    [504, null, -1, 'TargetResponseTimeout', null, '2026-01-02T03:04:05.690500Z'],
  );
});

test('Classic lines: the Classic ELB format, 15 fields', () => {
  const line = formatClassicLine(entryFromRequestEnd(message(), { elb: 'my-classic', nodeAddress: '10.0.0.5' }));
  assert.equal(
    line,
    '2026-01-02T03:04:05.690500Z my-classic 127.0.0.1:50123 127.0.0.1:9001 0.000 0.010 0.000 200 200 80 150 "GET http://example.com:8080/hello?x=1 HTTP/1.1" "curl/8.5.0" - -',
  );
});

test('error_reason: one token for every ProxyError kind and refusal; unknown reasons still one token', () => {
  for (const [kind, code] of Object.entries(PROXY_ERROR_REASONS)) {
    assert.equal(errorReasonCode({ errorReason: `${kind}:detail`, status: 502, targetKey: 'k' }), code);
    assert.match(code, /^[A-Z][A-Za-z]+$/);
  }
  assert.equal(errorReasonCode({ errorReason: 'terminated', status: 502, targetKey: 'k' }), 'DeregistrationDelayExpired');
  assert.equal(errorReasonCode({ errorReason: 'idle-timeout', status: 408, targetKey: null }), 'ClientIdleTimeout');
  assert.equal(errorReasonCode({ errorReason: 'idle-timeout:target', status: 504, targetKey: 'k' }), 'TargetIdleTimeout');
  assert.equal(errorReasonCode({ errorReason: 'desync-ambiguous:DuplicateContentLength', status: 400, targetKey: null }), 'DesyncMitigationAmbiguous');
  assert.equal(errorReasonCode({ errorReason: 'some-new reason:x', status: 500, targetKey: null }), 'SomeNewReason');
  assert.equal(errorReasonCode({ errorReason: null, status: 200, targetKey: 'k' }), null);
});

test('docs/access-logs.md lists every error_reason code ebb writes', () => {
  const doc = readFileSync(new URL('../../../docs/access-logs.md', import.meta.url), 'utf8');
  const missing = allErrorReasonCodes().filter((c) => !doc.includes(`\`${c}\``));
  assert.deepEqual(missing, []);
});
