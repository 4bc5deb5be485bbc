import type { AccessLogEntry } from './entry.ts';

/**
 * Access-log lines: ALB's format, Classic ELB's format, and JSON lines.
 *
 * The ALB line is the one documented in "Access logs for your Application Load Balancer" (Access log
 * entries, Syntax), field for field and in that order:
 *
 *   type time elb client:port target:port request_processing_time target_processing_time
 *   response_processing_time elb_status_code target_status_code received_bytes sent_bytes "request"
 *   "user_agent" ssl_cipher ssl_protocol target_group_arn "trace_id" "domain_name" "chosen_cert_arn"
 *   matched_rule_priority request_creation_time "actions_executed" "redirect_url" "error_reason"
 *   "target:port_list" "target_status_code_list" "classification" "classification_reason" conn_trace_id
 *
 * so that the regular expression of Athena's CREATE TABLE for ALB access logs ("Querying Application
 * Load Balancer logs", docs.aws.amazon.com/athena/latest/ug/create-alb-access-logs-table.html) reads
 * every line. That expression delimits a quoted field by `"` and an unquoted one by a space, so the
 * client's bytes never carry either: inside quotes, `"`, `\`, control bytes and bytes above 0x7e are
 * written as `\xHH` (the escape ALB's own logs show for such bytes), and in the three parts of
 * `"request"` a space is escaped too, since the expression splits that field at spaces.
 */

const HEX = '0123456789abcdef';

function hexByte(b: number): string {
  return `\\x${HEX[b >> 4]}${HEX[b & 15]}`;
}

/** Anything but printable ASCII other than `"` and `\`; and the same with the space. */
const NEEDS_ESCAPE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;
const NEEDS_ESCAPE_OR_SPACE = /[^\x21\x23-\x5b\x5d-\x7e]/;

/** Escapes a client-supplied value for a quoted field; `space` also escapes spaces. Characters above 0xff (none come from a latin1 head) are written as their UTF-8 bytes. */
export function escapeQuoted(value: string, space = false): string {
  if (!(space ? NEEDS_ESCAPE_OR_SPACE : NEEDS_ESCAPE).test(value)) return value;
  let out = '';
  let from = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const plain = c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c && !(space && c === 0x20);
    if (plain) continue;
    out += value.slice(from, i);
    from = i + 1;
    if (c <= 0xff) {
      out += hexByte(c);
    } else {
      const cp = value.codePointAt(i) ?? c;
      if (cp > 0xffff) {
        i++;
        from = i + 1;
      }
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) out += hexByte(b);
    }
  }
  return from === 0 ? value : out + value.slice(from);
}

const UNSAFE_BARE = /[\s"]/;

/** An unquoted field: `-` for none; a space (which no ebb value holds) would end the field, so it is escaped. */
function bare(value: string | number | null): string {
  if (value === null) return '-';
  const s = String(value);
  if (s === '') return '-';
  return UNSAFE_BARE.test(s) ? s.replace(/[\s"]/g, (ch) => hexByte(ch.charCodeAt(0))) : s;
}

function quoted(value: string | null): string {
  return value === null || value === '' ? '"-"' : `"${escapeQuoted(value)}"`;
}

/** ISO 8601 in UTC with microseconds, as ALB writes `time` and `request_creation_time` (`2018-07-02T22:23:00.186641Z`). */
export function isoMicros(ms: number): string {
  const micros = Math.round(ms * 1000);
  const whole = Math.floor(micros / 1_000_000);
  const frac = micros - whole * 1_000_000;
  // Lines come in time order, many to a second: the date and time are formatted once per second.
  if (whole !== lastSecond) {
    lastSecond = whole;
    lastSecondText = new Date(whole * 1000).toISOString().slice(0, 19); // 2018-07-02T22:23:00
  }
  return `${lastSecondText}.${String(frac).padStart(6, '0')}Z`;
}
let lastSecond = Number.NaN;
let lastSecondText = '';

/** Seconds with millisecond precision (`0.001`), or `-1`. */
function secondsText(s: number): string {
  return s < 0 ? '-1' : s.toFixed(3);
}

function target(e: AccessLogEntry): string {
  return e.targetIp === null || e.targetPort === null ? '-' : `${e.targetIp}:${e.targetPort}`;
}

/** `"GET http://host:80/path HTTP/1.1"`, or `"- - - "` for a request line ebb could not read (as ALB writes it). */
function requestField(e: AccessLogEntry): string {
  if (e.requestVerb === null) return '"- - - "';
  const part = (v: string | null): string => (v === null || v === '' ? '-' : escapeQuoted(v, true));
  return `"${part(e.requestVerb)} ${part(e.requestUrl)} ${part(e.requestProto)}"`;
}

/** One line in ALB's access-log format, without the newline. */
export function formatAlbLine(e: AccessLogEntry): string {
  return [
    e.type,
    isoMicros(e.time),
    bare(e.elb),
    `${bare(e.clientIp)}:${e.clientPort}`,
    target(e),
    secondsText(e.requestProcessingTime),
    secondsText(e.targetProcessingTime),
    secondsText(e.responseProcessingTime),
    bare(e.elbStatusCode),
    bare(e.targetStatusCode),
    String(e.receivedBytes),
    String(e.sentBytes),
    requestField(e),
    quoted(e.userAgent),
    bare(e.sslCipher),
    bare(e.sslProtocol),
    bare(e.targetGroupArn),
    quoted(e.traceId),
    quoted(e.domainName),
    quoted(e.chosenCertArn),
    bare(e.matchedRulePriority),
    isoMicros(e.requestCreationTime),
    quoted(e.actionsExecuted),
    quoted(e.redirectUrl),
    quoted(e.errorReason),
    quoted(e.targetPortList),
    quoted(e.targetStatusCodeList),
    quoted(e.classification),
    quoted(e.classificationReason),
    bare(e.connTraceId),
  ].join(' ');
}

/**
 * One line in Classic ELB's format ("Access logs for your Classic Load Balancer", Access log entries):
 * `time elb client:port backend:port request_processing_time backend_processing_time
 * response_processing_time elb_status_code backend_status_code received_bytes sent_bytes "request"
 * "user_agent" ssl_cipher ssl_protocol`.
 */
export function formatClassicLine(e: AccessLogEntry): string {
  return [
    isoMicros(e.time),
    bare(e.elb),
    `${bare(e.clientIp)}:${e.clientPort}`,
    target(e),
    secondsText(e.requestProcessingTime),
    secondsText(e.targetProcessingTime),
    secondsText(e.responseProcessingTime),
    bare(e.elbStatusCode),
    bare(e.targetStatusCode),
    String(e.receivedBytes),
    String(e.sentBytes),
    requestField(e),
    quoted(e.userAgent),
    bare(e.sslCipher),
    bare(e.sslProtocol),
  ].join(' ');
}

/**
 * The same fields as one JSON object, named as the columns of Athena's ALB table (`client_ip` and
 * `client_port` apart, `request_verb`/`request_url`/`request_proto`); `-` is null, times and counts
 * are numbers, the two timestamps ISO strings as in the ALB line. Strings are the client's, unescaped
 * (JSON escapes what it must).
 */
export function formatJsonLine(e: AccessLogEntry): string {
  return JSON.stringify({
    type: e.type,
    time: isoMicros(e.time),
    elb: e.elb,
    client_ip: e.clientIp,
    client_port: e.clientPort,
    target_ip: e.targetIp,
    target_port: e.targetPort,
    request_processing_time: e.requestProcessingTime,
    target_processing_time: e.targetProcessingTime,
    response_processing_time: e.responseProcessingTime,
    elb_status_code: e.elbStatusCode,
    target_status_code: e.targetStatusCode,
    received_bytes: e.receivedBytes,
    sent_bytes: e.sentBytes,
    request_verb: e.requestVerb,
    request_url: e.requestUrl,
    request_proto: e.requestProto,
    user_agent: e.userAgent,
    ssl_cipher: e.sslCipher,
    ssl_protocol: e.sslProtocol,
    target_group_arn: e.targetGroupArn,
    trace_id: e.traceId,
    domain_name: e.domainName,
    chosen_cert_arn: e.chosenCertArn,
    matched_rule_priority: e.matchedRulePriority,
    request_creation_time: isoMicros(e.requestCreationTime),
    actions_executed: e.actionsExecuted,
    redirect_url: e.redirectUrl,
    error_reason: e.errorReason,
    target_port_list: e.targetPortList,
    target_status_code_list: e.targetStatusCodeList,
    classification: e.classification,
    classification_reason: e.classificationReason,
    conn_trace_id: e.connTraceId,
  });
}

export type LineFormat = 'alb' | 'json' | 'classic';

export function formatLine(format: LineFormat, e: AccessLogEntry): string {
  switch (format) {
    case 'alb':
      return formatAlbLine(e);
    case 'json':
      return formatJsonLine(e);
    case 'classic':
      return formatClassicLine(e);
  }
}
