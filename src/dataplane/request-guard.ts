import type { IncomingMessage } from 'node:http';
import type { ListenerSettings } from '../domain/routing-snapshot.ts';
import { connectionNamedHeaders, isHopByHop } from './hop-by-hop.ts';

/**
 * The request rules that keep ebb and a target from reading one byte stream as different requests
 * (request smuggling), and the rewrite of the request head for the target. Node's parser (llhttp,
 * never in insecure mode) has already rejected most malformed framing; these rules add what it
 * lets through: a second Host, a truncated header list, Transfer-Encoding other than exactly
 * `chunked`, Transfer-Encoding on HTTP/1.0, and belt-and-braces checks of Content-Length.
 *
 * Versions: HTTP/1.1 and HTTP/1.0 are served (both are forwarded as HTTP/1.1). HTTP/0.9 (a request
 * line without a version) is refused with 400; any other version llhttp lets through (`HTTP/2.0`)
 * with 505. An HTTP/1.0 request without Host is forwarded with `Host: <target host>:<target port>`
 * (the address ebb connects to, as a proxy that was given no name would use); the target is only
 * known after the pick, so `plan.addHost` tells the request path to add it.
 *
 * The target only ever sees a head ebb serialised itself from validated values, with framing
 * (Content-Length or chunked) derived from the parser's view, never copied bytes.
 */

/** How the request body reaches the target. */
export const enum BodyMode {
  None = 0,
  ContentLength = 1,
  Chunked = 2,
}

export interface RequestRejection {
  readonly status: 400 | 431 | 505;
  readonly reason: string;
}

/** What `inspectRequest` found: the head to send to the target and the body framing. */
export interface RequestPlan {
  /** Request line and headers up to, not including, the blank line; latin1. */
  head: string;
  bodyMode: BodyMode;
  contentLength: number;
  /** HTTP/1.0 without Host: the request path appends `Host: <target>` to `head` once it has picked. */
  addHost: boolean;
}

const TOO_MANY_HEADERS: RequestRejection = { status: 431, reason: 'too-many-headers' };
const DUPLICATE_HOST: RequestRejection = { status: 400, reason: 'duplicate-host' };
const DUPLICATE_CL: RequestRejection = { status: 400, reason: 'duplicate-content-length' };
const BAD_CL: RequestRejection = { status: 400, reason: 'bad-content-length' };
const DUPLICATE_TE: RequestRejection = { status: 400, reason: 'duplicate-transfer-encoding' };
const BAD_TE: RequestRejection = { status: 400, reason: 'bad-transfer-encoding' };
const CL_AND_TE: RequestRejection = { status: 400, reason: 'content-length-and-transfer-encoding' };
const TE_ON_HTTP10: RequestRejection = { status: 400, reason: 'transfer-encoding-on-http-1.0' };
const MISSING_HOST: RequestRejection = { status: 400, reason: 'missing-host' };
const SUSPICIOUS_NAME: RequestRejection = { status: 400, reason: 'suspicious-header-name' };
const BAD_TARGET: RequestRejection = { status: 400, reason: 'bad-request-target' };
const HTTP_09: RequestRejection = { status: 400, reason: 'http-0.9' };
const BAD_VERSION: RequestRejection = { status: 505, reason: 'http-version-not-supported' };

const DIGITS = /^[0-9]{1,15}$/;
const OWS_EDGES = /^[ \t]+|[ \t]+$/g;
/** `http://authority/rest` or `https://…`; the authority without userinfo. */
const ABSOLUTE_FORM = /^https?:\/\/([A-Za-z0-9.-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?)([/?][^#]*)?$/i;

/**
 * Validates `req` and builds the head for the target into `plan`. Returns a rejection (answer it
 * with its status and close the connection) or null.
 *
 * `clientAddress` is the client's IP; `listenerPort` goes into X-Forwarded-Port.
 */
export function inspectRequest(
  req: IncomingMessage,
  settings: ListenerSettings,
  clientAddress: string,
  listenerPort: number,
  plan: RequestPlan,
): RequestRejection | null {
  const major = req.httpVersionMajor;
  const minor = req.httpVersionMinor;
  if (major !== 1 || minor > 1) return major === 0 ? HTTP_09 : BAD_VERSION;
  const raw = req.rawHeaders;
  const n = raw.length;
  // Node stops collecting headers at server.maxHeadersCount (set to the limit + 1): reaching
  // more than the limit means the list may be truncated, and a truncated list must never be forwarded.
  if (n > settings.maxHeadersCount * 2) return TOO_MANY_HEADERS;

  // An absolute-form target (`GET http://host/path`) is forwarded in origin form, with its authority as Host.
  let target = req.url as string;
  let authority: string | null = null;
  if (target.length > 0 && target.charCodeAt(0) !== 47 /* / */ && target !== '*') {
    const abs = ABSOLUTE_FORM.exec(target);
    if (abs === null) return BAD_TARGET;
    authority = abs[1] as string;
    target = abs[2] === undefined || abs[2] === '' ? '/' : (abs[2] as string);
    if (target.charCodeAt(0) === 63 /* ? */) target = `/${target}`;
  }

  let hosts = 0;
  let cl: string | null = null;
  let te: string | null = null;
  let xff: string | null = null;
  let named: Set<string> | null = null;
  let headers = '';
  const xffMode = settings.xffMode;

  for (let i = 0; i < n; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'host':
        if (++hosts > 1) return DUPLICATE_HOST;
        if (authority !== null) {
          // Absolute-form request target: its authority is the host (RFC 9112 §3.2.2); send one Host only.
          headers += `Host: ${authority}\r\n`;
          continue;
        }
        break;
      case 'content-length':
        if (cl !== null) return DUPLICATE_CL;
        if (!DIGITS.test(value)) return BAD_CL;
        cl = value;
        // Re-serialised without leading zeros, so no target can read `005` differently (octal, invalid).
        headers += `${name}: ${Number(value)}\r\n`;
        continue;
      case 'transfer-encoding':
        if (te !== null) return DUPLICATE_TE;
        te = value;
        continue;
      case 'connection': {
        const more = connectionNamedHeaders(value);
        if (more !== null) {
          named ??= new Set();
          for (const m of more) named.add(m);
        }
        continue;
      }
      case 'x-forwarded-for':
        if (xffMode !== 'remove') xff = xff === null ? value : `${xff}, ${value}`;
        continue;
      case 'x-forwarded-proto':
      case 'x-forwarded-port':
      case 'expect': // Node has already answered `100 Continue` to the client
        continue;
      // Names a backend might normalise to a framing header.
      case 'transfer_encoding':
      case 'content_length':
        return SUSPICIOUS_NAME;
      default:
        if (isHopByHop(lower)) continue;
    }
    headers += `${name}: ${value}\r\n`;
  }

  if (hosts === 0 && minor === 1) return MISSING_HOST;

  let bodyMode = BodyMode.None;
  let contentLength = 0;
  if (te !== null) {
    if (cl !== null) return CL_AND_TE;
    if (minor === 0) return TE_ON_HTTP10;
    // Exactly `chunked` around optional spaces and tabs (HTTP's OWS) — not String.trim, which also
    // removes a no-break space that Node's parser does not take as whitespace.
    if (te.replace(OWS_EDGES, '').toLowerCase() !== 'chunked') return BAD_TE;
    bodyMode = BodyMode.Chunked;
  } else if (cl !== null) {
    contentLength = Number(cl);
    if (contentLength > 0) bodyMode = BodyMode.ContentLength;
  }

  if (named !== null) headers = dropNamed(headers, named);

  if (xffMode === 'append') xff = xff === null ? clientAddress : `${xff}, ${clientAddress}`;
  if (xff !== null) headers += `X-Forwarded-For: ${xff}\r\n`;
  headers += `X-Forwarded-Proto: http\r\nX-Forwarded-Port: ${listenerPort}\r\n`;
  if (bodyMode === BodyMode.Chunked) headers += 'Transfer-Encoding: chunked\r\n';

  if (authority !== null && hosts === 0) headers += `Host: ${authority}\r\n`;
  plan.head = `${req.method as string} ${target} HTTP/1.1\r\n${headers}`;
  plan.bodyMode = bodyMode;
  plan.contentLength = contentLength;
  plan.addHost = hosts === 0 && authority === null;
  return null;
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
    if (named.has(lower) && lower !== 'host' && lower !== 'content-length') continue;
    out += `${line}\r\n`;
  }
  return out;
}

/** The client's address as written into X-Forwarded-For (IPv4-mapped IPv6 shown as IPv4). */
export function clientAddressOf(remote: string | undefined): string {
  if (remote === undefined) return 'unknown';
  return remote.startsWith('::ffff:') ? remote.slice(7) : remote;
}
