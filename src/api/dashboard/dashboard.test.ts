/**
 * The dashboard's server side on a stub control plane and a fake clock: signing in with the form, the
 * session cookie's attributes, the CSRF token a change needs, the one-time sign-in link, session
 * expiry and the bounded stores. The page itself is tested in Chromium (test/integration/dashboard-browser.test.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { FakeClock } from '../../../test/fakes/fake-clock.ts';
import { sign } from '../../../test/integration/ebb-api-harness.ts';
import type { ControlApi } from '../../control/control-api.ts';
import type { TargetInput } from '../../control/inputs.ts';
import { IMPORT_MAP } from './assets.ts';
import { createDashboard, DASHBOARD_PREFIX, SIGN_IN_LINK_PATH, type Dashboard } from './dashboard.ts';
import { SessionStore, SignInLinks } from './sessions.ts';

const KEY = { accessKeyId: 'AKIDDASHBOARDTEST001', secretAccessKey: 'dashboard-test-secret/with+signs' };
const TG = { arn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef', name: 'web', port: 80, protocol: 'HTTP' };

interface Calls {
  deregister: Array<{ targets: readonly TargetInput[]; timeoutSeconds: number | undefined }>;
  register: Array<readonly TargetInput[]>;
}

/** Just what the dashboard asks of the control plane: one group "web" with 10.0.0.1:80 registered. */
function stubControl(calls: Calls): ControlApi {
  const stub = {
    region: 'us-east-1',
    describeTargetGroups: (filter?: { names?: readonly string[]; arns?: readonly string[] }) =>
      filter === undefined || filter.names?.includes('web') === true || filter.arns?.includes(TG.arn) === true ? [TG] : [],
    describeTargetHealth: (_arn: string, targets?: readonly TargetInput[]) =>
      (targets ?? [{ id: '10.0.0.1', port: 80 }]).map((t) => ({
        id: t.id,
        port: t.port ?? 80,
        healthCheckPort: 'traffic-port',
        health: t.id === '10.0.0.1' ? { state: 'healthy' } : { state: 'unused', reason: 'Target.NotRegistered', description: 'Target is not registered to the target group' },
      })),
    drainRecords: () => [],
    deregisterTargets: async (_arn: string, targets: readonly TargetInput[], options?: { timeoutSeconds?: number }) => {
      calls.deregister.push({ targets, timeoutSeconds: options?.timeoutSeconds });
    },
    registerTargets: async (_arn: string, targets: readonly TargetInput[]) => {
      calls.register.push(targets);
    },
  };
  return stub as unknown as ControlApi;
}

interface Harness {
  readonly base: string;
  readonly port: number;
  readonly clock: FakeClock;
  readonly calls: Calls;
  readonly dashboard: Dashboard;
  readonly logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

async function start(options: { authentication?: boolean; maxSessions?: number } = {}): Promise<Harness> {
  const clock = new FakeClock(Date.now());
  const calls: Calls = { deregister: [], register: [] };
  const logs: Array<Record<string, unknown>> = [];
  const dashboard = createDashboard({
    control: stubControl(calls),
    auth: { credentials: [KEY], enabled: options.authentication ?? true },
    log: (e) => logs.push(e),
    clock,
    ...(options.maxSessions === undefined ? {} : { sessions: { maxSessions: options.maxSessions } }),
  });
  // Mounted as the admin endpoint mounts it: exact routes first, then the prefix.
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const exact = dashboard.routes[`${req.method ?? 'GET'} ${path}`];
    if (exact !== undefined) exact(req, res);
    else if (path.startsWith(DASHBOARD_PREFIX)) dashboard.route(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    clock,
    calls,
    dashboard,
    logs,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const request = (h: Harness, path: string, init: RequestInit = {}): Promise<Response> => fetch(`${h.base}${path}`, { redirect: 'manual', ...init });

function form(fields: Record<string, string>): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() };
}

/** The cookie pair (`name=value`) of a Set-Cookie header. */
const cookieOf = (res: Response): string => (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';

async function signIn(h: Harness): Promise<{ cookie: string; csrf: string }> {
  const res = await request(h, '/dashboard/sign-in', form({ accessKeyId: KEY.accessKeyId, secretAccessKey: KEY.secretAccessKey }));
  assert.equal(res.status, 303);
  const cookie = cookieOf(res);
  const session = await request(h, '/dashboard/api/session', { headers: { cookie } });
  assert.equal(session.status, 200);
  return { cookie, csrf: ((await session.json()) as { csrfToken: string }).csrfToken };
}

async function change(h: Harness, kind: 'deregister' | 'register', headers: Record<string, string>, body: unknown): Promise<Response> {
  return request(h, `/dashboard/api/${kind}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

describe('the dashboard with authentication on', () => {
  let h: Harness;
  before(async () => {
    h = await start();
  });
  after(() => h.close());

  test('without a session: the sign-in form, with the page headers; /dashboard goes to /dashboard/', async () => {
    const res = await request(h, '/dashboard/');
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /<form method="post" action="\/dashboard\/sign-in"/);
    assert.equal(res.headers.get('set-cookie'), null);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    const bare = await request(h, '/dashboard');
    assert.equal(bare.status, 303);
    assert.equal(bare.headers.get('location'), '/dashboard/');
    const api = await request(h, '/dashboard/api/session');
    assert.equal(api.status, 403);
    assert.equal(((await api.json()) as { code: string }).code, 'MissingAuthenticationToken');
  });

  test('the form: a wrong secret is refused with no cookie; the admin credentials start a session with an HttpOnly, SameSite=Strict cookie at Path=/', async () => {
    const wrong = await request(h, '/dashboard/sign-in', form({ accessKeyId: KEY.accessKeyId, secretAccessKey: 'nope' }));
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('set-cookie'), null);
    const page = await wrong.text();
    assert.match(page, /not ebb.s admin credentials/);
    assert.ok(page.includes(`value="${KEY.accessKeyId}"`), 'the key id is filled in again');
    assert.ok(!page.includes('nope'), 'the secret tried is not echoed');

    const res = await request(h, '/dashboard/sign-in', form({ accessKeyId: KEY.accessKeyId, secretAccessKey: KEY.secretAccessKey }));
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/dashboard/');
    const setCookie = res.headers.get('set-cookie') ?? '';
    const attributes = setCookie.split(';').map((a) => a.trim());
    assert.match(attributes[0] ?? '', new RegExp(`^ebb_session_${h.port}=[A-Za-z0-9_-]{43}$`));
    for (const a of ['Path=/', 'HttpOnly', 'SameSite=Strict', 'Max-Age=43200']) assert.ok(attributes.includes(a), `${a} in ${setCookie}`);
    assert.ok(!attributes.includes('Secure'), 'plain http: a Secure cookie would be dropped');

    const cookie = attributes[0] ?? '';
    const index = await request(h, '/dashboard/', { headers: { cookie } });
    const html = await index.text();
    assert.ok(html.includes(IMPORT_MAP), 'the page with its import map');
    const hash = createHash('sha256').update(IMPORT_MAP).digest('base64');
    assert.ok((index.headers.get('content-security-policy') ?? '').includes(`'sha256-${hash}'`), 'the CSP allows exactly that inline script');
    assert.ok(!html.includes(KEY.secretAccessKey));
    const session = (await (await request(h, '/dashboard/api/session', { headers: { cookie } })).json()) as Record<string, unknown>;
    assert.equal(session['who'], KEY.accessKeyId);
    assert.equal(typeof session['csrfToken'], 'string');
    assert.ok(!JSON.stringify(session).includes(KEY.secretAccessKey));
  });

  test("the session check ebb's JSON API consults: the cookie of a live session, by this endpoint's port", async () => {
    const { cookie } = await signIn(h);
    const req = (c: string, port = h.port): IncomingMessage => ({ headers: { cookie: c }, socket: { localPort: port } }) as unknown as IncomingMessage;
    assert.equal(h.dashboard.sessionCheck(req(`other=1; ${cookie}`)), true);
    assert.equal(h.dashboard.sessionCheck(req(cookie, h.port + 1)), false, "another ebb's cookie on the same host");
    assert.equal(h.dashboard.sessionCheck(req(`${cookie}x`)), false);
    assert.equal(h.dashboard.sessionCheck(req('')), false);
  });

  test('a change needs the session and its CSRF token, from this origin', async () => {
    const { cookie, csrf } = await signIn(h);
    const body = { targetGroup: 'web', target: '10.0.0.1:80', timeoutSeconds: 5 };
    const refusals = [
      await change(h, 'deregister', {}, body),
      await change(h, 'deregister', { cookie }, body),
      await change(h, 'deregister', { cookie, 'x-csrf-token': `${csrf}x` }, body),
      await change(h, 'deregister', { 'x-csrf-token': csrf }, body),
      await change(h, 'deregister', { cookie, 'x-csrf-token': csrf, origin: 'http://evil.example' }, body),
    ];
    for (const r of refusals) {
      assert.equal(r.status, 403);
      assert.equal(((await r.json()) as { code: string }).code, 'MissingAuthenticationToken');
    }
    assert.deepEqual(h.calls.deregister, [], 'nothing was deregistered');

    const ok = await change(h, 'deregister', { cookie, 'x-csrf-token': csrf, origin: h.base }, body);
    assert.equal(ok.status, 200);
    assert.deepEqual(h.calls.deregister, [{ targets: [{ id: '10.0.0.1', port: 80 }], timeoutSeconds: 5 }]);
    const unknown = await change(h, 'deregister', { cookie, 'x-csrf-token': csrf }, { targetGroup: 'web', target: '10.0.0.9:80' });
    assert.equal(((await unknown.json()) as { code: string }).code, 'InvalidTarget');
    const badDelay = await change(h, 'deregister', { cookie, 'x-csrf-token': csrf }, { ...body, timeoutSeconds: 4000 });
    assert.equal(((await badDelay.json()) as { code: string }).code, 'ValidationError');
    const noGroup = await change(h, 'register', { cookie, 'x-csrf-token': csrf }, { targetGroup: 'api', target: '10.0.0.1:80' });
    assert.equal(((await noGroup.json()) as { code: string }).code, 'TargetGroupNotFound');
    assert.equal((await change(h, 'register', { cookie, 'x-csrf-token': csrf }, { targetGroup: 'web', target: '10.0.0.1' })).status, 200);
    assert.deepEqual(h.calls.register, [[{ id: '10.0.0.1', port: 80 }]]);
  });

  test('the one-time sign-in link: made by a signed call only, works once, for ten minutes', async () => {
    const unsigned = await request(h, SIGN_IN_LINK_PATH, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(unsigned.status, 403);
    const wrongKey = await sign(h.base, 'POST', SIGN_IN_LINK_PATH, '{}', { 'content-type': 'application/json' }, { ...KEY, secretAccessKey: 'wrong' });
    assert.equal((await request(h, SIGN_IN_LINK_PATH, { method: 'POST', headers: wrongKey, body: '{}' })).status, 403);

    const mint = async (): Promise<{ url: string; expiresAt: string }> => {
      const headers = await sign(h.base, 'POST', SIGN_IN_LINK_PATH, '{}', { 'content-type': 'application/json' }, KEY);
      const res = await request(h, SIGN_IN_LINK_PATH, { method: 'POST', headers, body: '{}' });
      assert.equal(res.status, 200);
      return (await res.json()) as { url: string; expiresAt: string };
    };
    const link = await mint();
    assert.match(link.url, /^\/dashboard\/sign-in\?token=[A-Za-z0-9_-]{43}$/);
    assert.equal(Date.parse(link.expiresAt) - h.clock.wallTime(), 10 * 60_000);

    const first = await request(h, link.url);
    assert.equal(first.status, 200, 'a page that goes on by itself, so the Strict cookie is sent');
    assert.match(await first.text(), /http-equiv="refresh" content="0; url=\/dashboard\/"/);
    assert.equal(first.headers.get('referrer-policy'), 'no-referrer');
    const cookie = cookieOf(first);
    assert.equal((await request(h, '/dashboard/api/session', { headers: { cookie } })).status, 200);
    const second = await request(h, link.url);
    assert.equal(second.status, 401);
    assert.equal(second.headers.get('set-cookie'), null);
    assert.match(await second.text(), /used already or has expired/);

    const late = await mint();
    h.clock.advance(10 * 60_000);
    assert.equal((await request(h, late.url)).status, 401, 'expired');
  });

  test('a session ends after an hour unused, and twelve hours after sign-in however used; sign-out ends it at once', async () => {
    const idle = await signIn(h);
    const busy = await signIn(h);
    h.clock.advance(59 * 60_000);
    assert.equal((await request(h, '/dashboard/api/session', { headers: { cookie: busy.cookie } })).status, 200);
    h.clock.advance(60_000);
    assert.equal((await request(h, '/dashboard/api/session', { headers: { cookie: idle.cookie } })).status, 403, 'idle for an hour');
    const page = await request(h, '/dashboard/', { headers: { cookie: idle.cookie } });
    assert.match(await page.text(), /Your session has ended; sign in again/);
    for (let i = 0; i < 21; i++) {
      h.clock.advance(30 * 60_000);
      assert.equal((await request(h, '/dashboard/api/session', { headers: { cookie: busy.cookie } })).status, 200);
    }
    h.clock.advance(30 * 60_000);
    assert.equal((await request(h, '/dashboard/api/session', { headers: { cookie: busy.cookie } })).status, 403, 'twelve hours after sign-in');

    const s = await signIn(h);
    assert.equal((await request(h, '/dashboard/api/sign-out', { method: 'POST', headers: { cookie: s.cookie } })).status, 403, 'sign-out needs the CSRF token too');
    const out = await request(h, '/dashboard/api/sign-out', { method: 'POST', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    assert.equal((await request(h, '/dashboard/api/session', { headers: { cookie: s.cookie } })).status, 403);
  });

  test('the page and its libraries are served from the package; nothing else is', async () => {
    const preact = await request(h, '/dashboard/assets/vendor/preact.mjs');
    assert.equal(preact.status, 200);
    assert.match(preact.headers.get('content-type') ?? '', /^text\/javascript/);
    const etag = preact.headers.get('etag') ?? '';
    assert.equal((await request(h, '/dashboard/assets/vendor/preact.mjs', { headers: { 'if-none-match': etag } })).status, 304);
    for (const name of ['app.js', 'view.js', 'chart.js', 'boot.js', 'app.css', 'vendor/preact-hooks.mjs', 'vendor/htm.mjs', 'vendor/uplot.mjs', 'vendor/uplot.css']) {
      assert.equal((await request(h, `/dashboard/assets/${name}`)).status, 200, name);
    }
    for (const name of ['../../package.json', '%2e%2e/%2e%2e/package.json', 'index.html', 'nope.js']) {
      assert.equal((await request(h, `/dashboard/assets/${name}`)).status, 404, name);
    }
  });

  test('too many failed sign-ins in a minute close the form for the rest of it (links still work)', async () => {
    h.clock.advance(60_000);
    for (let i = 0; i < 20; i++) await request(h, '/dashboard/sign-in', form({ accessKeyId: KEY.accessKeyId, secretAccessKey: `guess-${i}` }));
    const blocked = await request(h, '/dashboard/sign-in', form({ accessKeyId: KEY.accessKeyId, secretAccessKey: KEY.secretAccessKey }));
    assert.equal(blocked.status, 429);
    assert.equal(blocked.headers.get('set-cookie'), null);
    const link = h.dashboard.signInLink();
    assert.equal((await request(h, link.url)).status, 200);
    h.clock.advance(60_000);
    assert.equal((await request(h, '/dashboard/sign-in', form({ accessKeyId: KEY.accessKeyId, secretAccessKey: KEY.secretAccessKey }))).status, 303);
  });
});

test('with authentication off the page opens without signing in, and changes still need the CSRF token', async (t) => {
  const h = await start({ authentication: false });
  t.after(() => h.close());
  const res = await request(h, '/dashboard/');
  assert.equal(res.status, 200);
  assert.ok((await res.text()).includes(IMPORT_MAP));
  const cookie = cookieOf(res);
  const session = (await (await request(h, '/dashboard/api/session', { headers: { cookie } })).json()) as { csrfToken: string; authentication: boolean };
  assert.equal(session.authentication, false);
  assert.equal((await change(h, 'deregister', { cookie }, { targetGroup: 'web', target: '10.0.0.1:80' })).status, 403);
  assert.equal((await change(h, 'deregister', { cookie, 'x-csrf-token': session.csrfToken }, { targetGroup: 'web', target: '10.0.0.1:80' })).status, 200);
});

test('the session store is bounded: the least recently used session ends first', () => {
  const clock = new FakeClock();
  const store = new SessionStore(clock, { maxSessions: 3 });
  const a = store.create('a');
  const b = store.create('b');
  const c = store.create('c');
  assert.ok(store.use(a.token) !== undefined, 'a is used, so b is now the least recently used');
  const d = store.create('d');
  assert.equal(store.size, 3);
  assert.equal(store.use(b.token), undefined);
  for (const s of [a, c, d]) assert.ok(store.use(s.token) !== undefined);
});

test('sign-in links are bounded: the oldest of more than 16 stops working', () => {
  const clock = new FakeClock();
  const links = new SignInLinks(clock);
  const tokens = Array.from({ length: 17 }, () => links.issue().token);
  assert.equal(links.redeem(tokens[0] ?? ''), false);
  assert.equal(links.redeem(tokens[16] ?? ''), true);
  assert.equal(links.redeem(tokens[16] ?? ''), false, 'once');
});
