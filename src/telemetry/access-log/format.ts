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

/** A number, or `-` for none. */
function bareNumber(value: number | null): string {
  return value === null ? '-' : String(value);
}

function quoted(value: string | null): string {
  return value === null || value === '' ? '"-"' : `"${escapeQuoted(value)}"`;
}

/**
 * A field whose value ebb makes itself and that can hold neither a space nor a quote: a load balancer's
 * id and ARNs (names are checked when made), an address read from a socket, an OpenSSL cipher or
 * protocol name, `forward`, ebb's error codes, `ip:port`, a status. Written as is: the checks of
 * `bare` and `quoted` are for what a client sends, and cost more than the rest of a line's fields.
 */
function own(value: string | null): string {
  return value === null || value === '' ? '-' : value;
}

function ownQuoted(value: string | null): string {
  return value === null || value === '' ? '"-"' : `"${value}"`;
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

/**
 * Seconds with millisecond precision (`0.001`), or `-1`. The entry's seconds are whole milliseconds
 * (entry.ts), so this writes the milliseconds as integers: what `toFixed(3)` writes, at a third of its
 * cost, three times a line.
 */
export function secondsText(s: number): string {
  if (s < 0) return '-1';
  const ms = Math.round(s * 1000);
  if (ms === 0) return '0.000';
  const whole = Math.floor(ms / 1000);
  const frac = ms - whole * 1000;
  return `${whole}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

function target(e: AccessLogEntry): string {
  return e.targetIp === null || e.targetPort === null ? '-' : `${e.targetIp}:${e.targetPort}`;
}

/** A part of `"request"`: `-` for none, spaces escaped too (the Athena expression splits the field at spaces). */
function requestPart(v: string | null): string {
  return v === null || v === '' ? '-' : escapeQuoted(v, true);
}

/** `"GET http://host:80/path HTTP/1.1"`, or `"- - - "` for a request line ebb could not read (as ALB writes it). */
function requestField(e: AccessLogEntry): string {
  if (e.requestVerb === null) return '"- - - "';
  return `"${requestPart(e.requestVerb)} ${requestPart(e.requestUrl)} ${requestPart(e.requestProto)}"`;
}

/** One line in ALB's access-log format, without the newline. One template, no array: it runs once per request. */
export function formatAlbLine(e: AccessLogEntry): string {
  return (
    `${e.type} ${isoMicros(e.time)} ${own(e.elb)} ${own(e.clientIp)}:${e.clientPort} ${target(e)} ` +
    `${secondsText(e.requestProcessingTime)} ${secondsText(e.targetProcessingTime)} ${secondsText(e.responseProcessingTime)} ` +
    `${bareNumber(e.elbStatusCode)} ${bareNumber(e.targetStatusCode)} ${e.receivedBytes} ${e.sentBytes} ` +
    `${requestField(e)} ${quoted(e.userAgent)} ${own(e.sslCipher)} ${own(e.sslProtocol)} ${own(e.targetGroupArn)} ` +
    `${quoted(e.traceId)} ${quoted(e.domainName)} ${ownQuoted(e.chosenCertArn)} ${bareNumber(e.matchedRulePriority)} ` +
    `${isoMicros(e.requestCreationTime)} ${ownQuoted(e.actionsExecuted)} ${quoted(e.redirectUrl)} ${ownQuoted(e.errorReason)} ` +
    `${ownQuoted(e.targetPortList)} ${ownQuoted(e.targetStatusCodeList)} ${ownQuoted(e.classification)} ${quoted(e.classificationReason)} ` +
    `${own(e.connTraceId)}`
  );
}

/**
 * One line in Classic ELB's format ("Access logs for your Classic Load Balancer", Access log entries):
 * `time elb client:port backend:port request_processing_time backend_processing_time
 * response_processing_time elb_status_code backend_status_code received_bytes sent_bytes "request"
 * "user_agent" ssl_cipher ssl_protocol`.
 */
export function formatClassicLine(e: AccessLogEntry): string {
  return (
    `${isoMicros(e.time)} ${own(e.elb)} ${own(e.clientIp)}:${e.clientPort} ${target(e)} ` +
    `${secondsText(e.requestProcessingTime)} ${secondsText(e.targetProcessingTime)} ${secondsText(e.responseProcessingTime)} ` +
    `${bareNumber(e.elbStatusCode)} ${bareNumber(e.targetStatusCode)} ${e.receivedBytes} ${e.sentBytes} ` +
    `${requestField(e)} ${quoted(e.userAgent)} ${own(e.sslCipher)} ${own(e.sslProtocol)}`
  );
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
