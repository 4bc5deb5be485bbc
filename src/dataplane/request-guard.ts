import type { ListenerSettings } from '../domain/routing-snapshot.ts';
import { classifyRequest } from './desync/classify.ts';
import { isLookAlikeFramingName } from './desync/field-syntax.ts';
import { bodyFraming } from './desync/framing.ts';
import type { DesyncVerdict } from './desync/classify.ts';
import { connectionNamedHeaders, isHopByHop } from './hop-by-hop.ts';
import type { RequestHead } from './request-head.ts';

/**
 * What is done with a client's request, and the head the target gets.
 *
 * Each request is classified as ALB classifies it (http_desync_guardian: Compliant, Acceptable,
 * Ambiguous, Severe, with a reason), and the load balancer's `routing.http.desync_mitigation_mode`
 * decides, by ALB's table
 * (docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#desync-mitigation-mode):
 *
 * | tier       | monitor | defensive (default)      | strictest |
 * |------------|---------|--------------------------|-----------|
 * | Compliant  | forward | forward                  | forward   |
 * | Acceptable | forward | forward                  | refuse    |
 * | Ambiguous  | forward | forward, then close both | refuse    |
 * | Severe     | forward | refuse                   | refuse    |
 *
 * Whatever the mode, the target only ever sees a head ebb wrote itself: the request line in origin
 * form at HTTP/1.1, the body framed by one Content-Length or by chunked (never both), header lines
 * whose names are tokens and whose values hold no control bytes (others are dropped), look-alike
 * framing names (`Transfer_Encoding`) dropped, spaces and control bytes in the target escaped. So a
 * request no reader could frame one way (lengths that disagree, a transfer coding that does not end
 * in chunked) is refused even in `monitor`, as are an HTTP version other than 1.x (505), a second
 * Host and an over-long header list.
 */

/** How the request body reaches the target. */
export const enum BodyMode {
  None = 0,
  ContentLength = 1,
  Chunked = 2,
}

export interface RequestRejection {
  readonly status: 400 | 431 | 501 | 505;
  readonly reason: string;
  /** The classification, when the refusal is the desync mode's. */
  readonly verdict?: DesyncVerdict;
}

/** What `planRequest` decided: the head to send to the target and how the rest goes. */
export interface RequestPlan {
  /** Request line and headers up to, not including, the blank line; latin1. */
  head: string;
  method: string;
  /** The request target as the client sent it (for logs). */
  url: string;
  bodyMode: BodyMode;
  contentLength: number;
  /** No Host came: the request path appends `Host: <target>` to `head` once it has picked. */
  addHost: boolean;
  /** The classification (for the access log's `classification` and `classification_reason`). */
  verdict: DesyncVerdict;
  /** Close the client connection, and the target connection, after this exchange (Ambiguous in defensive mode). */
  closeAfter: boolean;
  /** The client asked to keep the connection (HTTP/1.1 without `close`, or HTTP/1.0 with `keep-alive`). */
  keepAlive: boolean;
  /** The client speaks HTTP/1.0 (or older): no chunked response to it. */
  http10: boolean;
  /** The protocol of an upgrade request (`Upgrade:` with `Connection: upgrade`); null otherwise. */
  upgrade: string | null;
  /** `Expect: 100-continue`: ebb answers 100 itself when it starts reading the body. */
  expectContinue: boolean;
  /** The version on the request line, as sent (`-` for none), and the Host and User-Agent, for logs. */
  version: string;
  host: string | null;
  userAgent: string | null;
}

const TOO_MANY_HEADERS: RequestRejection = { status: 431, reason: 'too-many-headers' };
const DUPLICATE_HOST: RequestRejection = { status: 400, reason: 'duplicate-host' };
const OTHER_VERSION: RequestRejection = { status: 505, reason: 'http-version-not-supported' };
const BAD_METHOD: RequestRejection = { status: 400, reason: 'bad-method' };
const BAD_TARGET: RequestRejection = { status: 400, reason: 'bad-request-target' };
const UNFRAMEABLE: RequestRejection = { status: 400, reason: 'unframeable-body' };
const CONNECT: RequestRejection = { status: 501, reason: 'connect-not-supported' };
const UPGRADE_WITH_BODY: RequestRejection = { status: 400, reason: 'upgrade-with-body' };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A field value ebb will write: visible ASCII, obs-text, SP and HTAB (RFC 9110 §5.5). */
const CLEAN_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const OTHER_HTTP_VERSION = /^HTTP\/[2-9]\.[0-9]$/;
/** Bytes escaped in the request target: controls, space, DEL and non-ASCII. */
const URI_ESCAPE = /[\x00-\x20\x7f-\xff]/g;
/** `h2c` among the protocols of an Upgrade value. */
const H2C = /(?:^|[\s,])h2c(?:[\s,]|$)/i;
/** `http://authority/rest` or `https://…`; the authority without userinfo. */
const ABSOLUTE_FORM = /^https?:\/\/([A-Za-z0-9.-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?)([/?][^#]*)?$/i;

/** The action for a tier in a mode (the table above). */
export function desyncAction(tier: DesyncVerdict['tier'], mode: ListenerSettings['desyncMode']): 'forward' | 'close' | 'refuse' {
  if (tier === 'Compliant' || mode === 'monitor') return 'forward';
  if (mode === 'strictest') return 'refuse';
  return tier === 'Acceptable' ? 'forward' : tier === 'Ambiguous' ? 'close' : 'refuse';
}

/**
 * Classifies `head`, decides by the listener's desync mode, and builds the target's head into a plan.
 * Returns a rejection (answer it with its status and close the connection) or the plan.
 */
export function planRequest(
  head: RequestHead,
  settings: ListenerSettings,
  clientAddress: string,
  listenerPort: number,
  /** X-Forwarded-Proto: `https` on an HTTPS listener. */
  forwardedProto: 'http' | 'https' = 'http',
): RequestPlan | RequestRejection {
  if (head.headers.length > settings.maxHeadersCount) return TOO_MANY_HEADERS;
  if (OTHER_HTTP_VERSION.test(head.version)) return OTHER_VERSION;
  const verdict = classifyRequest(head);
  const action = desyncAction(verdict.tier, settings.desyncMode);
  if (action === 'refuse') return { status: 400, reason: `desync-${verdict.tier.toLowerCase()}:${verdict.reason}`, verdict };

  const method = head.method;
  if (!TOKEN.test(method)) return BAD_METHOD;
  if (method === 'CONNECT') return CONNECT;
  // HTTP/1.1 and later 1.x keep the connection by default; HTTP/1.0 only when it asks; HTTP/0.9 and a
  // version no reader agrees on never do (RFC 9112 §9.3). All are forwarded as HTTP/1.1.
  const version = head.version.trim();
  const http10 = !(version.length === 8 && version.startsWith('HTTP/1.') && version.charCodeAt(7) >= 49 && version.charCodeAt(7) <= 57);
  const persistentUnlessClose = !http10;
  const keepAliveAllowed = persistentUnlessClose || version === 'HTTP/1.0';

  const framing = bodyFraming(head);
  if (framing.kind === 'unframeable') return UNFRAMEABLE;

  // An absolute-form target (`GET http://host/path`) is forwarded in origin form, with its authority as Host.
  let target = head.uri;
  let authority: string | null = null;
  if (target === '') target = '/';
  else if (target.charCodeAt(0) !== 47 /* / */ && target !== '*') {
    const abs = ABSOLUTE_FORM.exec(target);
    if (abs === null) {
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) target = `/${target}`;
      else return BAD_TARGET;
    } else {
      authority = abs[1] as string;
      target = abs[2] === undefined || abs[2] === '' ? '/' : (abs[2] as string);
      if (target.charCodeAt(0) === 63 /* ? */) target = `/${target}`;
    }
  }
  // The asterisk form is OPTIONS's alone (RFC 9112 §3.2.4).
  if (target === '*' && method !== 'OPTIONS') return BAD_TARGET;
  URI_ESCAPE.lastIndex = 0;
  if (URI_ESCAPE.test(target)) target = target.replace(URI_ESCAPE, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);

  let hosts = 0;
  let xff: string | null = null;
  let named: Set<string> | null = null;
  let connectionClose = false;
  let connectionKeepAlive = false;
  let connectionUpgrade = false;
  let upgrade: string | null = null;
  let expectContinue = false;
  let host: string | null = null;
  let userAgent: string | null = null;
  let headers = '';
  const xffMode = settings.xffMode;

  for (const h of head.headers) {
    const name = h.name;
    const value = h.value;
    if (!TOKEN.test(name) || !CLEAN_VALUE.test(value)) continue; // dropped: no target may read it otherwise
    const lower = name.toLowerCase();
    switch (lower) {
      case 'host':
        if (++hosts > 1) return DUPLICATE_HOST;
        host = authority ?? value;
        if (authority !== null) {
          // Absolute-form request target: its authority is the host (RFC 9112 §3.2.2); send one Host only.
          headers += `Host: ${authority}\r\n`;
          continue;
        }
        break;
      case 'content-length':
      case 'transfer-encoding':
        continue; // ebb writes the framing itself
      case 'connection': {
        for (const part of value.toLowerCase().split(',')) {
          const opt = part.trim();
          if (opt === 'close') connectionClose = true;
          else if (opt === 'keep-alive') connectionKeepAlive = true;
          else if (opt === 'upgrade') connectionUpgrade = true;
        }
        const more = connectionNamedHeaders(value);
        if (more !== null) {
          named ??= new Set();
          for (const m of more) named.add(m);
        }
        continue;
      }
      case 'upgrade':
        upgrade = value;
        continue;
      case 'x-forwarded-for':
        if (xffMode !== 'remove') xff = xff === null ? value : `${xff}, ${value}`;
        continue;
      case 'expect':
        // ebb answers `100 Continue` itself once it reads the body (RFC 9110 §10.1.1).
        if (value.toLowerCase() === '100-continue') expectContinue = true;
        continue;
      case 'x-forwarded-proto':
      case 'x-forwarded-port':
        continue;
      case 'user-agent':
        userAgent = value;
        break;
      default:
        if (isHopByHop(lower)) continue;
        // One rule with the classifier for what resembles a framing header.
        if (isLookAlikeFramingName(name)) continue;
    }
    headers += `${name}: ${value}\r\n`;
  }

  let bodyMode = BodyMode.None;
  let contentLength = 0;
  if (framing.kind === 'chunked') bodyMode = BodyMode.Chunked;
  else if (framing.kind === 'length' && framing.length > 0) {
    bodyMode = BodyMode.ContentLength;
    contentLength = framing.length;
  }
  // No h2c, as on ALB: a request asking for it goes on as a plain one, so no target can turn the
  // connection into HTTP/2 frames that ebb would tunnel past its parsing, logs and routing.
  const isUpgrade = connectionUpgrade && upgrade !== null && upgrade !== '' && !http10 && !H2C.test(upgrade);
  if (isUpgrade && bodyMode !== BodyMode.None) return UPGRADE_WITH_BODY;

  if (named !== null) headers = dropNamed(headers, named);
  if (xffMode === 'append') xff = xff === null ? clientAddress : `${xff}, ${clientAddress}`;
  if (xff !== null) headers += `X-Forwarded-For: ${xff}\r\n`;
  headers += `X-Forwarded-Proto: ${forwardedProto}\r\nX-Forwarded-Port: ${listenerPort}\r\n`;
  // A body coded before chunked (`gzip, chunked`) keeps its codings: ebb re-frames the chunks, not the bytes.
  if (bodyMode === BodyMode.Chunked) headers += framing.kind === 'chunked' && framing.codings !== '' ? `Transfer-Encoding: ${framing.codings}, chunked\r\n` : 'Transfer-Encoding: chunked\r\n';
  else if (bodyMode === BodyMode.ContentLength) headers += `Content-Length: ${contentLength}\r\n`;
  else if (framing.kind === 'length' && method !== 'GET' && method !== 'HEAD') headers += 'Content-Length: 0\r\n';
  if (authority !== null && hosts === 0) headers += `Host: ${authority}\r\n`;
  if (isUpgrade) headers += `Connection: Upgrade\r\nUpgrade: ${upgrade as string}\r\n`;

  return {
    head: `${method} ${target} HTTP/1.1\r\n${headers}`,
    method,
    url: head.uri,
    bodyMode,
    contentLength,
    addHost: hosts === 0 && authority === null,
    verdict,
    closeAfter: action === 'close',
    keepAlive: persistentUnlessClose ? !connectionClose : keepAliveAllowed && connectionKeepAlive && !connectionClose,
    http10,
    upgrade: isUpgrade ? upgrade : null,
    expectContinue: expectContinue && bodyMode !== BodyMode.None && !http10,
    version: head.noVersion ? '-' : head.version,
    host: host ?? authority,
    userAgent,
  };
}

export function isRejection(p: RequestPlan | RequestRejection): p is RequestRejection {
  return (p as RequestRejection).status !== undefined;
}

/** The Host header value for a request that came without one: the target's address. */
export function targetHostHeader(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Removes the header lines that `Connection` named (rare; the slow path). */
function dropNamed(headers: string, named: Set<string>): string {
  let out = '';
  for (const line of headers.split('\r\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    const lower = line.slice(0, colon).toLowerCase();
    if (named.has(lower) && lower !== 'host') continue;
    out += `${line}\r\n`;
  }
  return out;
}

/** The client's address as written into X-Forwarded-For (IPv4-mapped IPv6 shown as IPv4). */
export function clientAddressOf(remote: string | undefined): string {
  if (remote === undefined) return 'unknown';
  return remote.startsWith('::ffff:') ? remote.slice(7) : remote;
}
