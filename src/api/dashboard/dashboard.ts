import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ControlApi } from '../../control/control-api.ts';
import { realClock, type Clock } from '../../shared/clock.ts';
import { ebbError } from '../../shared/errors.ts';
import type { AdminAuthOptions, AdminLog, AdminRoute } from '../admin-server.ts';
import type { SessionCheck } from '../ebb/ebb-api.ts';
import { iso, parseJsonObject, readBody, sendError, sendJson } from '../ebb/http.ts';
import { allTargetGroups, drainRecordJson, findTargetGroup, parseTarget, targetText } from '../ebb/views.ts';
import { parseAuthorization, SigV4Verifier, unknownAccessKey } from '../sigv4.ts';
import { Assets, ASSETS_PATH, CONTENT_SECURITY_POLICY } from './assets.ts';
import { continuePage, signInPage } from './pages.ts';
import { sameSecret, SessionStore, SignInLinks, type Session, type SessionLimits } from './sessions.ts';

/** Where the dashboard is served on the admin endpoint. */
export const DASHBOARD_PREFIX = '/dashboard/';
/**
 * The signed call that makes a one-time sign-in link (`ebb dashboard`). Beside ebb's JSON API, signed
 * as it is, so the CLI's client reaches it as `POST /ebb/v1/dashboard/sign-in-link`.
 */
export const SIGN_IN_LINK_PATH = '/ebb/v1/dashboard/sign-in-link';

/** Failed sign-ins allowed per minute, over all clients; beyond, the form refuses until the minute is over (links still work). */
const MAX_FAILED_SIGN_INS_PER_MINUTE = 20;
const FORM_MAX_BYTES = 4096;
const JSON_MAX_BYTES = 16 * 1024;
const BODY_TIMEOUT_MS = 10_000;
const SIGNING_NAME = 'elasticloadbalancing';
/** Drain records the page draws (newest first). */
const RECORDS_SHOWN = 50;

export interface DashboardOptions {
  readonly control: ControlApi;
  /** The admin endpoint's keys: the form takes one of them; with authentication off nobody signs in. */
  readonly auth: AdminAuthOptions;
  readonly log: AdminLog;
  readonly clock?: Clock;
  readonly sessions?: SessionLimits;
  /** The page's own files (default: assets/dashboard/ at the package root). */
  readonly assetsDir?: string;
}

export interface Dashboard {
  /** Exact routes to mount (admin-server's `routes`): `GET /dashboard` and the signed sign-in-link call. */
  readonly routes: Readonly<Record<string, AdminRoute>>;
  /** The prefix route to mount at DASHBOARD_PREFIX. */
  readonly route: AdminRoute;
  /** For EbbApi.setSessionCheck: a GET under /ebb/v1/ with a live session cookie is let in. */
  readonly sessionCheck: SessionCheck;
  /** A one-time sign-in link (path and query) and when it stops working; what the signed call answers. */
  signInLink(): { url: string; expiresAt: string };
}

/** The headers of every page and answer: no caching, no framing, no referrer, the CSP. */
const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
} as const;

/**
 * The dashboard: a page under /dashboard/ that reads ebb's JSON API and its event stream with a
 * session cookie, and changes targets through its own two calls that need the session's CSRF token
 * (docs/dashboard.md). Signing in takes the admin credentials in a form, or a one-time link that a
 * signed call (`ebb dashboard`) makes. The cookie is HttpOnly and SameSite=Strict with Path=/, so it
 * also reaches /ebb/v1/; the secret never reaches the page.
 */
export function createDashboard(options: DashboardOptions): Dashboard {
  const { control, log } = options;
  const clock = options.clock ?? realClock;
  const authOn = options.auth.enabled !== false;
  const credentials = options.auth.credentials;
  const verifier = new SigV4Verifier(credentials, () => clock.wallTime(), control.region);
  const sessions = new SessionStore(clock, options.sessions);
  const links = new SignInLinks(clock);
  const assets = new Assets(options.assetsDir);
  assets.load();
  let failures = { windowStart: clock.now(), count: 0 };

  /** The session cookie's name: cookies are per host, not per port, so two ebbs on one host keep theirs apart. */
  const cookieName = (req: IncomingMessage): string => `ebb_session_${req.socket.localPort ?? 0}`;

  function tokenOf(req: IncomingMessage): string | undefined {
    const name = cookieName(req);
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
    return undefined;
  }

  function sessionOf(req: IncomingMessage): Session | undefined {
    const token = tokenOf(req);
    return token === undefined || token === '' ? undefined : sessions.use(token);
  }

  function setCookie(req: IncomingMessage, value: string, maxAgeSeconds: number): string {
    // Secure only where the browser reached ebb over TLS: on plain http a browser would drop the cookie.
    const secure = (req.socket as Partial<TLSSocket>).encrypted === true ? '; Secure' : '';
    return `${cookieName(req)}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
  }

  function startSession(req: IncomingMessage, who: string): string {
    const { token } = sessions.create(who);
    log({ event: 'dashboard:sign-in', who, client: req.socket.remoteAddress ?? null });
    return setCookie(req, token, Math.floor(sessions.maxAgeMs / 1000));
  }

  function sendHtml(res: ServerResponse, status: number, html: string, extra: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': String(Buffer.byteLength(html)), ...PAGE_HEADERS, ...extra });
    res.end(html);
  }

  function sendAsset(req: IncomingMessage, res: ServerResponse, name: string): void {
    const a = assets.get(name);
    if (a === undefined) {
      sendPlain(res, 404, `No dashboard file ${ASSETS_PATH}${name}\n`);
      return;
    }
    // Revalidated on each load (no-cache): an upgraded ebb's page never runs with an old script.
    const headers = { 'content-type': a.type, etag: a.etag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': String(a.body.length) });
    res.end(a.body);
  }

  /**
   * Refuses a change that does not come from the dashboard's own page: it needs the session's CSRF
   * token in `x-csrf-token` (another site's page cannot read it), and a browser's Origin, when sent,
   * must be this host.
   */
  function checkChange(req: IncomingMessage, session: Session): void {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}` && origin !== `https://${req.headers.host ?? ''}`) {
      throw ebbError('MissingAuthenticationToken', `A change from the dashboard must come from its own page; this one came from ${origin}`);
    }
    const token = req.headers['x-csrf-token'];
    if (typeof token !== 'string' || !sameSecret(token, session.csrfToken)) {
      throw ebbError('MissingAuthenticationToken', 'A change from the dashboard needs the CSRF token of its session (header x-csrf-token); reload the page');
    }
  }

  /** The session of an API call, or MissingAuthenticationToken saying to sign in. */
  function requireSession(req: IncomingMessage): Session {
    const s = sessionOf(req);
    if (s === undefined) throw ebbError('MissingAuthenticationToken', 'Not signed in to the dashboard, or the session has ended: sign in again at /dashboard/');
    return s;
  }

  function credentialMatches(accessKeyId: string, secret: string): string | null {
    let who: string | null = null;
    // Every key is compared (no early exit), each in constant time.
    for (const c of credentials) {
      if (sameSecret(accessKeyId, c.accessKeyId) && sameSecret(secret, c.secretAccessKey)) who = c.accessKeyId;
    }
    return who;
  }

  function tooManyFailures(): boolean {
    if (clock.now() - failures.windowStart >= 60_000) failures = { windowStart: clock.now(), count: 0 };
    return failures.count >= MAX_FAILED_SIGN_INS_PER_MINUTE;
  }

  async function signInWithForm(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      req.resume();
      sendHtml(res, 400, signInPage({ message: 'Sign in with the form on this page.', error: true }));
      return;
    }
    const body = await readBody(req, FORM_MAX_BYTES, clock, BODY_TIMEOUT_MS);
    const form = new URLSearchParams(body.toString('utf8'));
    const accessKeyId = form.get('accessKeyId')?.trim() ?? '';
    const secret = form.get('secretAccessKey') ?? '';
    if (!authOn) {
      seeOther(res, DASHBOARD_PREFIX, startSession(req, 'authentication off'));
      return;
    }
    if (tooManyFailures()) {
      sendHtml(res, 429, signInPage({ message: 'Too many failed sign-ins in the last minute; wait a minute, or run ebb dashboard for a sign-in link.', error: true, accessKeyId }), {
        'retry-after': '60',
      });
      return;
    }
    const who = credentialMatches(accessKeyId, secret);
    if (who === null) {
      failures.count++;
      log({ event: 'dashboard:sign-in-refused', level: 'warn', accessKeyId, client: req.socket.remoteAddress ?? null });
      sendHtml(res, 401, signInPage({ message: 'That access key ID and secret access key are not ebb\u2019s admin credentials.', error: true, accessKeyId }));
      return;
    }
    // A 303 keeps this navigation same-site (the form is ebb's own page), so the Strict cookie comes along.
    seeOther(res, DASHBOARD_PREFIX, startSession(req, who));
  }

  function signInWithLink(req: IncomingMessage, res: ServerResponse, token: string): void {
    if (!links.redeem(token)) {
      sendHtml(
        res,
        401,
        signInPage({ message: 'This sign-in link was used already or has expired (a link works once, for 10 minutes). Run ebb dashboard for a new one, or sign in below.', error: true }),
      );
      return;
    }
    sendHtml(res, 200, continuePage(DASHBOARD_PREFIX), { 'set-cookie': startSession(req, 'sign-in link') });
  }

  function signOut(req: IncomingMessage, res: ServerResponse, requestId: string): void {
    const session = requireSession(req);
    checkChange(req, session);
    req.resume();
    const token = tokenOf(req);
    if (token !== undefined) sessions.end(token);
    sendJson(res, 200, requestId, { signedOut: true }, { 'set-cookie': setCookie(req, '', 0) });
  }

  function sessionJson(session: Session): unknown {
    return {
      csrfToken: session.csrfToken,
      who: session.who,
      authentication: authOn,
      region: control.region,
      expiresAt: iso(session.expiresAtWall),
      idleTimeoutSeconds: Math.round(sessions.idleMs / 1000),
    };
  }

  /** Drains in progress with their series so far, and the newest records with theirs: what the charts draw. */
  function drainSeries(): unknown {
    const now = clock.wallTime();
    const drains = allTargetGroups(control).flatMap((tg) =>
      control.describeTargetHealth(tg.arn).flatMap((d) =>
        d.drain === undefined
          ? []
          : [
              {
                targetGroupArn: tg.arn,
                targetGroupName: tg.name,
                target: targetText(d.id, d.port),
                startedAt: iso(d.drain.startedAt),
                deadline: iso(d.drain.deadline),
                timeoutSeconds: Math.round((d.drain.deadline - d.drain.startedAt) / 1000),
                requestsInFlight: d.drain.requestsInFlight,
                tunnelsOpen: d.drain.tunnelsOpen,
                series: d.drain.series,
              },
            ],
      ),
    );
    const records = control
      .drainRecords(RECORDS_SHOWN)
      .reverse()
      .map((r) => ({ ...drainRecordJson(r), series: r.series ?? [] }));
    return { at: iso(now), drains, records };
  }

  async function changeTarget(req: IncomingMessage, change: 'deregister' | 'register'): Promise<unknown> {
    const body = parseJsonObject(await readBody(req, JSON_MAX_BYTES, clock, BODY_TIMEOUT_MS), req.headers['content-type']);
    const group = body['targetGroup'];
    const text = body['target'];
    if (typeof group !== 'string' || group === '') throw ebbError('MissingParameter', "The body needs 'targetGroup': a target group's name or ARN");
    if (typeof text !== 'string' || text === '') throw ebbError('MissingParameter', "The body needs 'target': ID:PORT");
    const tg = findTargetGroup(control, group);
    const target = parseTarget(text);
    const named = { id: target.id, port: target.port ?? tg.port };
    if (change === 'register') {
      await control.registerTargets(tg.arn, [named]);
    } else {
      let timeoutSeconds: number | undefined;
      const v = body['timeoutSeconds'];
      if (v !== undefined && v !== null) {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 3600) {
          throw ebbError('ValidationError', `'timeoutSeconds' must be an integer from 0 to 3600 (this deregistration's delay); got ${JSON.stringify(v)}`);
        }
        timeoutSeconds = v;
      }
      const health = control.describeTargetHealth(tg.arn, [named])[0];
      if (health === undefined || health.health.reason === 'Target.NotRegistered') {
        throw ebbError('InvalidTarget', `Not registered in target group '${tg.name}': ${targetText(named.id, named.port)}; nothing was deregistered`);
      }
      await control.deregisterTargets(tg.arn, [named], timeoutSeconds === undefined ? undefined : { timeoutSeconds });
    }
    const after = control.describeTargetHealth(tg.arn, [named])[0];
    log({ event: `dashboard:${change}`, targetGroup: tg.name, target: targetText(named.id, named.port) });
    return {
      targetGroupArn: tg.arn,
      targetGroupName: tg.name,
      target: targetText(named.id, named.port),
      state: after?.health.state ?? 'unused',
      reason: after?.health.reason ?? null,
    };
  }

  /** The page's own JSON calls, under /dashboard/api/. */
  async function api(req: IncomingMessage, res: ServerResponse, name: string, method: string, requestId: string): Promise<void> {
    const session = requireSession(req);
    if (method === 'GET' && name === 'session') {
      req.resume();
      sendJson(res, 200, requestId, sessionJson(session));
    } else if (method === 'GET' && name === 'drains') {
      req.resume();
      sendJson(res, 200, requestId, drainSeries());
    } else if (method === 'POST' && (name === 'deregister' || name === 'register')) {
      checkChange(req, session);
      sendJson(res, 200, requestId, await changeTarget(req, name));
    } else if (method === 'POST' && name === 'sign-out') {
      signOut(req, res, requestId);
    } else {
      req.resume();
      throw ebbError('InvalidAction', `${method} /dashboard/api/${name} is not a call of the dashboard`);
    }
  }

  const route: AdminRoute = (req, res) => {
    const requestId = randomUUID();
    const url = new URL(req.url ?? '/', 'http://ebb');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const onInternal = (err: unknown): void =>
      log({ event: 'admin:internal-error', level: 'error', requestId, api: 'dashboard', path, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    const run = async (): Promise<void> => {
      if (path.startsWith(ASSETS_PATH) && (method === 'GET' || method === 'HEAD')) {
        req.resume();
        sendAsset(req, res, path.slice(ASSETS_PATH.length));
      } else if (path.startsWith(`${DASHBOARD_PREFIX}api/`)) {
        await api(req, res, path.slice(`${DASHBOARD_PREFIX}api/`.length), method, requestId);
      } else if (path === `${DASHBOARD_PREFIX}sign-in` && method === 'POST') {
        await signInWithForm(req, res);
      } else if (path === `${DASHBOARD_PREFIX}sign-in` && method === 'GET') {
        req.resume();
        const token = url.searchParams.get('token');
        if (token !== null && token !== '') signInWithLink(req, res, token);
        else if (!authOn || sessionOf(req) !== undefined) seeOther(res, DASHBOARD_PREFIX);
        else sendHtml(res, 200, signInPage());
      } else if (path === DASHBOARD_PREFIX && method === 'GET') {
        req.resume();
        if (sessionOf(req) !== undefined) sendHtml(res, 200, assets.index().body.toString('utf8'));
        // With authentication off anyone may change ebb anyway; the session only carries the CSRF token.
        else if (!authOn) sendHtml(res, 200, assets.index().body.toString('utf8'), { 'set-cookie': startSession(req, 'authentication off') });
        else sendHtml(res, 200, signInPage(tokenOf(req) === undefined ? {} : { message: 'Your session has ended; sign in again.' }));
      } else {
        req.resume();
        sendPlain(res, 404, `No dashboard page at ${method} ${path}; the dashboard is at ${DASHBOARD_PREFIX}\n`);
      }
    };
    run().catch((err: unknown) => {
      if (res.destroyed) return;
      sendError(res, requestId, err, onInternal);
    });
  };

  /** `POST /ebb/v1/dashboard/sign-in-link`, signed with the admin credentials as ebb's JSON API is. */
  const signInLinkRoute: AdminRoute = (req, res) => {
    const requestId = randomUUID();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawQuery = q === -1 ? '' : url.slice(q + 1);
    const onInternal = (err: unknown): void =>
      log({ event: 'admin:internal-error', level: 'error', requestId, api: 'dashboard', path: SIGN_IN_LINK_PATH, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    const run = async (): Promise<void> => {
      if (authOn) {
        // Refused from the headers alone, before a byte of body is read.
        const { accessKeyId } = parseAuthorization(req.headersDistinct, rawQuery);
        if (!verifier.knows(accessKeyId)) throw unknownAccessKey(accessKeyId);
      }
      const body = await readBody(req, JSON_MAX_BYTES, clock, BODY_TIMEOUT_MS);
      if (authOn) {
        await verifier.verify({ method: 'POST', path: SIGN_IN_LINK_PATH, rawQuery, headers: req.headersDistinct, body, expectedService: SIGNING_NAME });
      }
      if (body.length > 0) {
        const fields = Object.keys(parseJsonObject(body, req.headers['content-type']));
        if (fields.length > 0) throw ebbError('ValidationError', `The sign-in link call takes an empty JSON object; got ${fields.map((f) => `'${f}'`).join(', ')}`);
      }
      const link = dashboard.signInLink();
      log({ event: 'dashboard:sign-in-link', expiresAt: link.expiresAt });
      sendJson(res, 200, requestId, link);
    };
    run().catch((err: unknown) => {
      if (res.destroyed) return;
      sendError(res, requestId, err, onInternal);
    });
  };

  const dashboard: Dashboard = {
    routes: {
      'GET /dashboard': (req, res) => {
        req.resume();
        seeOther(res, DASHBOARD_PREFIX);
      },
      [`POST ${SIGN_IN_LINK_PATH}`]: signInLinkRoute,
    },
    route,
    sessionCheck: (req) => sessionOf(req) !== undefined,
    signInLink() {
      const { token, expiresAt } = links.issue();
      return { url: `${DASHBOARD_PREFIX}sign-in?token=${token}`, expiresAt: iso(expiresAt) };
    },
  };
  return dashboard;
}

function seeOther(res: ServerResponse, location: string, cookie?: string): void {
  res.writeHead(303, { location, 'content-length': '0', ...PAGE_HEADERS, ...(cookie === undefined ? {} : { 'set-cookie': cookie }) });
  res.end();
}

function sendPlain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), ...PAGE_HEADERS });
  res.end(text);
}
