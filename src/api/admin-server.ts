import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { debuglog } from 'node:util';
import type { AutoScalingApi } from '../autoscaling/autoscaling-api.ts';
import type { ControlApi } from '../control/control-api.ts';
import { realClock, type Clock } from '../shared/clock.ts';
import { ebbError } from '../shared/errors.ts';
import { ACM_SIGNING_NAME, acmOperation, acmWireError, serveAcm, type AcmResponse } from './acm/acm-endpoint.ts';
import { BodySlots } from './body-slots.ts';
import { dispatch, serviceForVersion, serviceOf, SIGNING_NAMES } from './dispatch.ts';
import { errorResponse, toWireError, type WireError } from './error-response.ts';
import { parseQueryString, QueryParams } from './query-parser.ts';
import { type Credential, parseAuthorization, SigV4Verifier, unknownAccessKey } from './sigv4.ts';
import { errorXml, type ServiceId } from './xml.ts';

const trace = debuglog('ebb:api');

/** Where the admin endpoint reports what an operator should see: one structured entry per call. */
export type AdminLog = (entry: Record<string, unknown>) => void;

export interface AdminAuthOptions {
  /** Access keys allowed to call the API (from `admin.credentials` or EBB_ACCESS_KEY_ID/EBB_SECRET_ACCESS_KEY). */
  readonly credentials: readonly Credential[];
  /** `false` turns SigV4 verification off (local use only); the caller logs that loudly. Default true. */
  readonly enabled?: boolean;
}

/** A route mounted beside the AWS Query API (metrics, a JSON API, the dashboard). */
export type AdminRoute = (req: IncomingMessage, res: ServerResponse) => void;

export interface AdminHandlerOptions {
  readonly control: ControlApi;
  readonly autoscaling?: AutoScalingApi;
  readonly auth: AdminAuthOptions;
  readonly log: AdminLog;
  /** Wall time for signature dates. Default: the real clock. */
  readonly clock?: Clock;
  /** Largest request body accepted, in bytes. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /**
   * Query API requests whose body may be read and held at once (default 64); beyond that ebb answers
   * 503 ServiceUnavailable with Retry-After, so body memory stays under this × maxBodyBytes.
   */
  readonly maxConcurrentBodies?: number;
  /**
   * Of those, how many one client address may hold (an IPv6 client counts by its /64). Default: 8, or
   * a quarter of maxConcurrentBodies when that is smaller (at least 1). Beyond it, 503 with Retry-After.
   */
  readonly maxBodiesPerAddress?: number;
  /** How long a request body may take to arrive, in ms (default 10 000); then 408 RequestTimeout. */
  readonly bodyTimeoutMs?: number;
  /** Extra routes by `METHOD /path` (exact match, no query), e.g. `GET /metrics`. */
  readonly routes?: Readonly<Record<string, AdminRoute>>;
  /**
   * Extra routes by path prefix (any method, any query), e.g. `/ebb/v1/` for ebb's JSON API: the route
   * answers every path that starts with its prefix. Exact `routes` are looked up first.
   */
  readonly prefixRoutes?: Readonly<Record<string, AdminRoute>>;
}

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
export const DEFAULT_MAX_CONCURRENT_BODIES = 64;
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;

/**
 * Slots per client address: 8, or a quarter of the slots if that is fewer. A legitimate client's body
 * arrives with its headers and holds a slot for milliseconds, so even the aws CLI, an SDK or Terraform
 * running ten calls at once rarely holds more than a few; one that needs more gets 503 with Retry-After,
 * which every AWS SDK retries. With the default 64 slots a slow client needs 8 addresses to hold them
 * all, not one; a quarter keeps small budgets (tests, constrained hosts) shared by at least four clients.
 */
export function defaultBodiesPerAddress(maxBodies: number): number {
  return Math.max(1, Math.min(8, Math.floor(maxBodies / 4)));
}

/**
 * Slots kept for requests whose Authorization header names a configured access key: a quarter, so with
 * authentication off callers without a key hold at most three quarters. None when no key is configured
 * (nobody could use them), and never every slot.
 */
function reservedBodies(maxBodies: number, keys: number): number {
  return keys === 0 ? 0 : Math.min(Math.ceil(maxBodies / 4), maxBodies - 1);
}

/** After a refusal, how long a body still arriving is read and dropped before the connection is cut. */
const REFUSED_BODY_GRACE_MS = 2000;

/**
 * The admin endpoint's request handler for node:http. `POST /` with a form-encoded body (or `GET /`
 * with a query string) is the AWS Query API for ELBv2, Classic ELB and Auto Scaling; other routes
 * can be mounted beside it. Every answer carries `x-amzn-RequestId`, the same id as in the XML.
 */
export function createAdminHandler(options: AdminHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const clock = options.clock ?? realClock;
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const authOn = options.auth.enabled !== false;
  const verifier = new SigV4Verifier(options.auth.credentials, () => clock.wallTime(), options.control.region);
  const maxBodies = options.maxConcurrentBodies ?? DEFAULT_MAX_CONCURRENT_BODIES;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  const perAddress = options.maxBodiesPerAddress ?? defaultBodiesPerAddress(maxBodies);
  const reserved = reservedBodies(maxBodies, options.auth.credentials.length);
  // Looked up with the request's method and path, so only the routes given count (a Map has no prototype chain).
  const routes = new Map(Object.entries(options.routes ?? {}));
  const prefixRoutes = Object.entries(options.prefixRoutes ?? {});
  // Refusals at the HTTP level, before any action runs.
  const tooLarge = toWireError(ebbError('RequestEntityTooLarge', `Request body exceeds ${maxBody} bytes`), 'elbv2');
  const bodyTimeout = toWireError(
    ebbError('RequestTimeout', `The request body did not arrive within ${bodyTimeoutMs} ms: send the whole request at once`),
    'elbv2',
  );
  /**
   * Query API requests whose body is being read or handled: at most `maxBodies`, so at most maxBodies ×
   * maxBody bytes held, shared out by client address and with a reserve for configured keys.
   */
  const slots = new BodySlots({ total: maxBodies, reserved, perAddress });

  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const rawQuery = q === -1 ? '' : url.slice(q + 1);
    const method = req.method ?? 'GET';

    const route = routes.get(`${method} ${path}`) ?? prefixRoutes.find(([prefix]) => path.startsWith(prefix))?.[1];
    if (route !== undefined) {
      route(req, res);
      return;
    }
    const requestId = randomUUID();
    if (path !== '/' || (method !== 'POST' && method !== 'GET')) {
      req.resume();
      sendPlain(res, 404, requestId, `No route for ${method} ${path}. The AWS Query API is POST / (form-encoded).\n`);
      return;
    }
    // Refuse what can be refused from the headers alone before reading a byte of body.
    let knownKey: boolean;
    try {
      knownKey = namesKnownKey(req, rawQuery);
    } catch (err) {
      refuse(req, res, requestId, toWireError(err, 'elbv2'));
      return;
    }
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > maxBody) {
      refuse(req, res, requestId, tooLarge);
      return;
    }
    const release = slots.take(req.socket.remoteAddress, knownKey);
    if (typeof release === 'string') {
      refuse(req, res, requestId, toWireError(busy(release, req.socket.remoteAddress), 'elbv2'), { 'retry-after': '1' });
      return;
    }
    readBody(req, maxBody, clock, bodyTimeoutMs)
      .then(
        (body) => handleQuery(req, res, { method, path, rawQuery, body, requestId }),
        (err: unknown) => {
          if (err instanceof BodyTooLarge) {
            refuse(req, res, requestId, tooLarge);
          } else if (err instanceof BodyTimeout) {
            refuse(req, res, requestId, bodyTimeout);
          } else {
            res.destroy();
          }
        },
      )
      .finally(release);
  };

  /**
   * Whether the request's Authorization header names a configured access key. With authentication on
   * a request must have a well-formed header naming one, or it is refused here (MissingAuthenticationToken,
   * IncompleteSignature, InvalidClientTokenId) before it can take a body slot; with it off, no header or
   * a header naming another key only means the request cannot use the reserved slots.
   */
  function namesKnownKey(req: IncomingMessage, rawQuery: string): boolean {
    if (!authOn) {
      try {
        return verifier.knows(parseAuthorization(req.headersDistinct, rawQuery).accessKeyId);
      } catch {
        return false;
      }
    }
    const { accessKeyId } = parseAuthorization(req.headersDistinct, rawQuery);
    if (!verifier.knows(accessKeyId)) throw unknownAccessKey(accessKeyId);
    return true;
  }

  /** ServiceUnavailable naming the bound that refused a body slot. */
  function busy(bound: 'address' | 'ordinary' | 'total', address: string | undefined): Error {
    switch (bound) {
      case 'address':
        return ebbError(
          'ServiceUnavailable',
          `ebb's admin API is already handling ${perAddress} requests from ${address ?? 'this client'}, as many as one client may; retry after a second`,
        );
      case 'ordinary':
        return ebbError(
          'ServiceUnavailable',
          `ebb's admin API is handling ${maxBodies - reserved} requests without a configured access key already (${reserved} more are kept for signed requests); retry after a second`,
        );
      case 'total':
        return ebbError('ServiceUnavailable', `ebb's admin API is handling ${maxBodies} requests already; retry after a second`);
      default: {
        const never: never = bound;
        return never;
      }
    }
  }

  /**
   * Answers at once and closes the connection. A body still on its way is read and dropped (nothing
   * kept), and the connection is cut if it has not ended shortly after the answer went out.
   */
  function refuse(req: IncomingMessage, res: ServerResponse, requestId: string, error: WireError, extra: Record<string, string> = {}): void {
    req.resume();
    res.on('finish', () => {
      if (req.complete) return;
      const t = clock.setTimer(REFUSED_BODY_GRACE_MS, () => req.socket.destroy());
      req.socket.once('close', () => t.cancel());
    });
    if (acmOperation(req.headers['x-amz-target']) !== undefined) {
      const e = acmWireError(error, requestId);
      res.writeHead(e.status, { ...e.headers, connection: 'close', ...extra });
      res.end(e.body);
      return;
    }
    send(res, error.status, requestId, errorXml('elbv2', error, requestId), { connection: 'close', ...extra });
  }

  /** ACM (AWS JSON 1.1, told apart by its X-Amz-Target) on the same URL as the Query APIs: acm/acm-endpoint.ts. */
  async function handleAcm(req: IncomingMessage, res: ServerResponse, r: { method: string; path: string; rawQuery: string; body: Buffer; requestId: string }, operation: string): Promise<void> {
    const started = clock.now();
    const out: AcmResponse = await serveAcm({
      operation,
      contentType: req.headers['content-type'],
      body: r.body,
      requestId: r.requestId,
      control: options.control,
      now: clock.wallTime(),
      verify: () =>
        authOn
          ? verifier.verify({ method: r.method, path: r.path, rawQuery: r.rawQuery, headers: req.headersDistinct, body: r.body, expectedService: ACM_SIGNING_NAME })
          : Promise.resolve(),
      onInternal: (internal) => {
        const error = internal instanceof Error ? (internal.stack ?? internal.message) : String(internal);
        options.log({ event: 'admin:internal-error', level: 'error', requestId: r.requestId, service: 'acm', action: operation, error });
      },
    });
    res.writeHead(out.status, out.headers);
    res.end(out.body);
    trace('%s acm %s %d %dms', r.requestId, operation, out.status, Math.round(clock.now() - started));
  }

  async function handleQuery(
    req: IncomingMessage,
    res: ServerResponse,
    r: { method: string; path: string; rawQuery: string; body: Buffer; requestId: string },
  ): Promise<void> {
    const acm = acmOperation(req.headers['x-amz-target']);
    if (acm !== undefined) return handleAcm(req, res, r, acm);
    let service: ServiceId = 'elbv2';
    let action = '';
    const started = clock.now();
    try {
      let text: string;
      if (r.method === 'POST') {
        const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
        if (type !== 'application/x-www-form-urlencoded') {
          throw ebbError(
            'MalformedQueryString',
            `Content-Type must be application/x-www-form-urlencoded for the AWS Query API; got '${req.headers['content-type'] ?? ''}'`,
          );
        }
        text = r.body.toString('utf8');
      } else {
        text = r.rawQuery;
      }
      const params = new QueryParams(parseQueryString(text));
      service = serviceOf(params);
      action = params.str('Action') ?? '';
      if (authOn) {
        // The Version decides the service, so the credential scope must name that service.
        const known = serviceForVersion(params.str('Version'));
        await verifier.verify({
          method: r.method,
          path: r.path,
          rawQuery: r.rawQuery,
          headers: req.headersDistinct,
          body: r.body,
          expectedService: known === undefined ? undefined : SIGNING_NAMES[known],
        });
      }
      const out = await dispatch(params, {
        control: options.control,
        ...(options.autoscaling === undefined ? {} : { autoscaling: options.autoscaling }),
        requestId: r.requestId,
      });
      send(res, 200, r.requestId, out.xml);
      trace('%s %s %s 200 %dms', r.requestId, service, action, Math.round(clock.now() - started));
    } catch (err) {
      const e = errorResponse(err, service, r.requestId, (internal) => {
        options.log({
          event: 'admin:internal-error',
          level: 'error',
          requestId: r.requestId,
          service,
          action,
          error: internal instanceof Error ? (internal.stack ?? internal.message) : String(internal),
        });
      });
      res.writeHead(e.status, e.headers);
      res.end(e.body);
      trace('%s %s %s %d', r.requestId, service, action, e.status);
    }
  }
}

class BodyTooLarge extends Error {}
class BodyTimeout extends Error {}

function readBody(req: IncomingMessage, max: number, clock: Clock, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | undefined): void => {
      if (done) return;
      done = true;
      timer.cancel();
      if (err === undefined) resolve(Buffer.concat(chunks));
      else reject(err);
      chunks = [];
    };
    const timer = clock.setTimer(timeoutMs, () => finish(new BodyTimeout()));
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) {
        finish(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => finish(undefined));
    req.on('error', (err) => finish(err));
    req.on('close', () => finish(new Error('the connection closed before the request body ended')));
  });
}

function send(res: ServerResponse, status: number, requestId: string, xml: string, extra: Record<string, string> = {}): void {
  // Encoded once: its length and its bytes (a DescribeTargetHealth of 1,000 targets is 250 KiB).
  const body = Buffer.from(xml, 'utf8');
  res.writeHead(status, {
    'content-type': 'text/xml',
    'content-length': String(body.length),
    'x-amzn-requestid': requestId,
    ...extra,
  });
  res.end(body);
}

function sendPlain(res: ServerResponse, status: number, requestId: string, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), 'x-amzn-requestid': requestId });
  res.end(text);
}
