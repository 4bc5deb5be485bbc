import type { ListenerSettings } from '../../domain/routing-snapshot.ts';
import type { DesyncVerdict } from '../desync/classify.ts';
import { isLookAlikeFramingName } from '../desync/field-syntax.ts';
import { isHopByHop } from '../hop-by-hop.ts';
import { BodyMode } from '../request-guard.ts';
import type { RequestPlan, RequestRejection } from '../request-guard.ts';

/**
 * The HTTP/1.1 head a target gets for one HTTP/2 stream: the `RequestPlan` the request path runs on,
 * built from the stream's header list instead of a request line.
 *
 * An HTTP/2 request has no framing to disagree on: its body is the stream's DATA frames, and nghttp2
 * (Node's HTTP/2 engine) already refuses, with RST_STREAM PROTOCOL_ERROR, what RFC 9113 §8.2 calls
 * malformed before ebb sees it: upper-case names, connection-specific fields (Connection, Keep-Alive,
 * Proxy-Connection, Transfer-Encoding, Upgrade, a TE other than `trailers`), a missing or repeated
 * pseudo-header, a Content-Length that the DATA frames do not add up to. So there is no desync to
 * classify (the verdict is Compliant) and nothing to close after. What HTTP/1.1 requests get all the
 * same, because the target reads HTTP/1.1 from ebb: names that are tokens and values without control
 * bytes (others are dropped), look-alike framing names dropped, the header count limit (431), CONNECT
 * refused (501), one Host, X-Forwarded-For by the listener's mode, `X-Forwarded-Proto: https` (HTTP/2
 * reaches ebb only over TLS) and X-Forwarded-Port, and one framing header that ebb writes itself:
 * Content-Length when the client gave one, else chunked when a body follows.
 *
 * The pseudo-headers become the request line and Host: `:method`, `:path` (escaped as a request
 * target is), `:authority` as Host (a Host field as well must name the same authority: 400 if not,
 * RFC 9113 §8.3.1). Cookie fields, which HTTP/2 may split (RFC 9113 §8.2.3), are joined with `; `.
 * The header list's size is counted as SETTINGS_MAX_HEADER_LIST_SIZE counts it (name, value and 32
 * per field, RFC 9113 §6.5.2): above the listener's `maxHeaderBytes`, 431. nghttp2 enforces the same
 * bound once the client has acknowledged ebb's settings; this catches the requests sent before that.
 */

/** Every HTTP/2 request: nothing to classify (see above). */
const COMPLIANT: DesyncVerdict = Object.freeze({ tier: 'Compliant', reason: 'Compliant', message: '' });

const TOO_MANY_HEADERS: RequestRejection = { status: 431, reason: 'too-many-headers' };
const HEADERS_TOO_LARGE: RequestRejection = { status: 431, reason: 'head-too-large' };
const DUPLICATE_HOST: RequestRejection = { status: 400, reason: 'duplicate-host' };
const HOST_MISMATCH: RequestRejection = { status: 400, reason: 'authority-host-mismatch' };
const BAD_METHOD: RequestRejection = { status: 400, reason: 'bad-method' };
const BAD_TARGET: RequestRejection = { status: 400, reason: 'bad-request-target' };
const CONNECT: RequestRejection = { status: 501, reason: 'connect-not-supported' };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A field value ebb will write: visible ASCII, obs-text, SP and HTAB (RFC 9110 §5.5). */
const CLEAN_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Bytes escaped in the request target: controls, space, DEL and non-ASCII. */
const URI_ESCAPE = /[\x00-\x20\x7f-\xff]/g;
/** What a Host value may hold: reg-name or IP literal, optional port (no userinfo, no path). */
const AUTHORITY = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?$/;
/** Bytes RFC 9113 §6.5.2 adds per field to its name and value when sizing a header list. */
const FIELD_OVERHEAD = 32;
/** Methods whose request without content still gets `Content-Length: 0` (RFC 9110 §8.6). */
const BODYLESS_WITHOUT_LENGTH = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']);

/**
 * Plans the request of one stream. `raw` is the stream's header list as received (name, value, …,
 * pseudo-headers included; names are lower case), `endStream` whether the HEADERS frame ended the
 * stream (no body follows).
 */
export function planHttp2Request(
  raw: readonly string[],
  endStream: boolean,
  settings: ListenerSettings,
  clientAddress: string,
  listenerPort: number,
): RequestPlan | RequestRejection {
  let method = '';
  let path = '';
  let authority: string | null = null;
  let size = 0;
  let fields = 0;
  let host: string | null = null;
  let hosts = 0;
  let userAgent: string | null = null;
  let contentLength = -1;
  let xff: string | null = null;
  let cookie: string | null = null;
  let expectContinue = false;
  let headers = '';
  const xffMode = settings.xffMode;

  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    size += name.length + value.length + FIELD_OVERHEAD;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':method') method = value;
      else if (name === ':path') path = value;
      else if (name === ':authority') authority = value;
      continue; // :scheme says nothing the connection does not (HTTP/2 reaches ebb over TLS only)
    }
    fields++;
    if (!TOKEN.test(name) || !CLEAN_VALUE.test(value)) continue; // dropped: no target may read it otherwise
    const lower = name.toLowerCase();
    switch (lower) {
      case 'host':
        if (++hosts > 1) return DUPLICATE_HOST;
        host = value;
        continue; // written once, below, from :authority or this
      case 'content-length':
        // nghttp2 checked it is digits and that the DATA frames add up to it.
        contentLength = Number(value);
        continue;
      case 'cookie':
        cookie = cookie === null ? value : `${cookie}; ${value}`;
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
        if (isHopByHop(lower) || isLookAlikeFramingName(name)) continue;
    }
    headers += `${name}: ${value}\r\n`;
  }

  if (fields > settings.maxHeadersCount) return TOO_MANY_HEADERS;
  if (size > settings.maxHeaderBytes) return HEADERS_TOO_LARGE;
  if (!TOKEN.test(method)) return BAD_METHOD;
  if (method === 'CONNECT') return CONNECT;
  if (authority !== null && (!CLEAN_VALUE.test(authority) || !AUTHORITY.test(authority))) return BAD_TARGET;
  if (host !== null && authority !== null && host.toLowerCase() !== authority.toLowerCase()) return HOST_MISMATCH;
  const hostValue = authority ?? host;
  if (hostValue !== null && !AUTHORITY.test(hostValue)) return BAD_TARGET;

  let target = path;
  if (target === '' || (target.charCodeAt(0) !== 47 /* / */ && !(target === '*' && method === 'OPTIONS'))) return BAD_TARGET;
  URI_ESCAPE.lastIndex = 0;
  if (URI_ESCAPE.test(target)) target = target.replace(URI_ESCAPE, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);

  if (hostValue !== null) headers = `Host: ${hostValue}\r\n${headers}`;
  if (cookie !== null) headers += `cookie: ${cookie}\r\n`;
  if (xffMode === 'append') xff = xff === null ? clientAddress : `${xff}, ${clientAddress}`;
  if (xff !== null) headers += `X-Forwarded-For: ${xff}\r\n`;
  headers += `X-Forwarded-Proto: https\r\nX-Forwarded-Port: ${listenerPort}\r\n`;

  let bodyMode = BodyMode.None;
  if (!endStream && contentLength !== 0) bodyMode = contentLength > 0 ? BodyMode.ContentLength : BodyMode.Chunked;
  if (bodyMode === BodyMode.Chunked) headers += 'Transfer-Encoding: chunked\r\n';
  else if (bodyMode === BodyMode.ContentLength) headers += `Content-Length: ${contentLength}\r\n`;
  else if (!BODYLESS_WITHOUT_LENGTH.has(method) || (contentLength === 0 && method !== 'GET' && method !== 'HEAD')) headers += 'Content-Length: 0\r\n';

  return {
    head: `${method} ${target} HTTP/1.1\r\n${headers}`,
    method,
    url: path,
    bodyMode,
    contentLength: bodyMode === BodyMode.ContentLength ? contentLength : 0,
    addHost: hostValue === null,
    verdict: COMPLIANT,
    closeAfter: false,
    keepAlive: true,
    http10: false,
    upgrade: null,
    expectContinue: expectContinue && bodyMode !== BodyMode.None,
    version: 'HTTP/2.0',
    host: hostValue,
    userAgent,
  };
}
