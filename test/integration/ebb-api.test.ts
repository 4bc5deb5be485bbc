/**
 * ebb's own API (`/ebb/v1/`) over real sockets, signed as the AWS SDKs sign: every answer held to the
 * OpenAPI document it serves, field by field; signing and the session hook; errors as `{ code, message }`
 * with the AWS codes; a deregistration with its own deadline; the drained barrier; the event stream;
 * the recommended delay.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { documentedOperations } from '../../src/api/ebb/openapi.ts';
import { oneGroup, startEbbApiHarness, type Answer } from './ebb-api-harness.ts';
import { Cleanup, get, sleep, startBackend, waitFor, type Backend } from './harness.ts';
import { check, responseSchema, type Schema } from './openapi-check.ts';

/** Holds an answer to the document: its status's schema, field by field. */
function conforms(doc: Schema, method: string, path: string, a: Answer): void {
  const problems = check(doc, responseSchema(doc, method, path, a.status), a.body);
  assert.deepEqual(problems, [], `${method} ${path} answered ${a.status} ${a.text.slice(0, 500)}`);
}

async function setUp(t: { after: (fn: () => Promise<void>) => void }, attributes: Record<string, string> = {}, options: Parameters<typeof startEbbApiHarness>[0] = {}) {
  const c = new Cleanup();
  t.after(() => c.run());
  const h = await startEbbApiHarness(options);
  c.add(() => h.close());
  const A = await startBackend('A', c);
  const g = await oneGroup(h.control, 'web', [A.port], { 'deregistration_delay.timeout_seconds': '30', ...attributes });
  const doc = (await h.call('GET', '/ebb/v1/openapi.json', { sign: false })).body as Schema;
  return { c, h, A, doc, ...g };
}

/** A request held by A for `ms`, started now; resolves once A has it, with the request's settlement (wrapped, so awaiting this does not wait for it). */
async function slowRequest(listenerPort: number, A: Backend, ms: number): Promise<{ done: Promise<unknown> }> {
  const before = A.seen.length;
  const done = get(listenerPort, `/slow?ms=${ms}`).catch((e: unknown) => e);
  assert.ok(await waitFor(() => A.seen.length > before, 2000), 'the slow request should reach A');
  return { done };
}

test('every endpoint answers in the shape the OpenAPI document gives it', { timeout: 30_000 }, async (t) => {
  const { h, A, doc, listenerPort } = await setUp(t);
  assert.equal(doc['openapi'], '3.1.0');
  for (let i = 0; i < 5; i++) assert.equal((await get(listenerPort, '/slow?ms=20')).status, 200);

  const gets = [
    '/ebb/v1/status',
    '/ebb/v1/targets',
    `/ebb/v1/targets?targetGroup=web&target=127.0.0.1:${A.port}`,
    '/ebb/v1/targets?targetGroup=web&target=127.0.0.1:1',
    '/ebb/v1/drains',
    '/ebb/v1/drain-records',
    '/ebb/v1/recommended-delay',
  ];
  for (const path of gets) {
    const a = await h.call('GET', path);
    assert.equal(a.status, 200, `${path}: ${a.text}`);
    conforms(doc, 'GET', path.split('?')[0] ?? path, a);
  }

  const status = (await h.call('GET', '/ebb/v1/status')).body;
  assert.equal(status.loadBalancers[0].name, 'web');
  assert.equal(status.loadBalancers[0].listeners[0].port, listenerPort);
  const target = status.targetGroups[0].targets[0];
  assert.equal(target.target, `127.0.0.1:${A.port}`);
  assert.equal(target.state, 'unavailable');
  assert.equal(target.reason, 'Target.HealthCheckDisabled');
  assert.equal(target.routed, true);
  assert.ok(target.connections >= 1, 'the pooled keep-alive connections to A');
  assert.equal(status.targetGroups[0].deregistrationDelaySeconds, 30);
  assert.ok(status.snapshot.appliedVersion >= 1 && status.snapshot.appliedVersion === status.snapshot.latestVersion);
  const unregistered = (await h.call('GET', '/ebb/v1/targets?targetGroup=web&target=127.0.0.1:1')).body.targets[0];
  assert.deepEqual([unregistered.state, unregistered.reason, unregistered.routed], ['unused', 'Target.NotRegistered', false]);

  // A drain in progress, then its record.
  const slow = await slowRequest(listenerPort, A, 700);
  const dereg = await h.call('POST', '/ebb/v1/deregister', { body: { targetGroup: 'web', targets: [`127.0.0.1:${A.port}`], timeoutSeconds: 20 } });
  assert.equal(dereg.status, 200, dereg.text);
  conforms(doc, 'POST', '/ebb/v1/deregister', dereg);
  assert.equal(dereg.body.timeoutSeconds, 20);
  assert.equal(dereg.body.targets[0].state, 'draining');
  assert.equal(dereg.body.targets[0].requestsInFlight, 1);
  assert.equal(dereg.body.targets[0].drain.timeoutSeconds, 20);
  const drains = await h.call('GET', '/ebb/v1/drains');
  conforms(doc, 'GET', '/ebb/v1/drains', drains);
  assert.equal(drains.body.drains.length, 1);
  assert.ok(drains.body.drains[0].timeLeftMs > 18_000 && drains.body.drains[0].timeLeftMs <= 20_000);
  conforms(doc, 'GET', '/ebb/v1/status', await h.call('GET', '/ebb/v1/status'));

  const waited = await h.call('GET', `/ebb/v1/wait?targetGroup=web&target=127.0.0.1:${A.port}&for=drained&timeout=10`);
  conforms(doc, 'GET', '/ebb/v1/wait', waited);
  assert.equal(waited.body.outcome, 'drained');
  assert.equal(waited.body.drain.outcome, 'idle');
  await slow.done;
  const records = await h.call('GET', '/ebb/v1/drain-records?targetGroup=web&outcome=idle');
  conforms(doc, 'GET', '/ebb/v1/drain-records', records);
  assert.equal(records.body.records.length, 1);
  const notRouted = await h.call('GET', `/ebb/v1/wait?targetGroup=web&target=127.0.0.1:${A.port}&for=not-routed`);
  conforms(doc, 'GET', '/ebb/v1/wait', notRouted);
  assert.equal(notRouted.body.outcome, 'not-routed');

  const reg = await h.call('POST', '/ebb/v1/register', { body: { targetGroup: 'web', targets: [{ id: '127.0.0.1', port: A.port }] } });
  conforms(doc, 'POST', '/ebb/v1/register', reg);
  assert.equal(reg.body.targets[0].state, 'unavailable');

  // Errors are documented too.
  const error = await h.call('GET', '/ebb/v1/targets?targetGroup=nope');
  conforms(doc, 'GET', '/ebb/v1/targets', error);
  assert.deepEqual(h.internalErrors, []);
});

test('the document describes exactly the endpoints ebb answers', async (t) => {
  const { h } = await setUp(t);
  const ops = documentedOperations();
  assert.deepEqual(ops.sort(), [
    'GET /ebb/v1/drain-records',
    'GET /ebb/v1/drains',
    'GET /ebb/v1/events',
    'GET /ebb/v1/openapi.json',
    'GET /ebb/v1/recommended-delay',
    'GET /ebb/v1/status',
    'GET /ebb/v1/targets',
    'GET /ebb/v1/wait',
    'POST /ebb/v1/deregister',
    'POST /ebb/v1/register',
  ]);
  for (const op of ops) {
    const [method = '', path = ''] = op.split(' ');
    if (path.endsWith('/events')) continue; // a stream; see the event-stream test
    const a = await h.call(method, path, method === 'POST' ? { body: {} } : {});
    assert.notEqual(a.body?.code, 'InvalidAction', `${op} should be an endpoint: ${a.text}`);
  }
  const unknown = await h.call('GET', '/ebb/v1/nope');
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.code, 'InvalidAction');
  assert.match(unknown.body.message, /openapi\.json/);
  const wrongMethod = await h.call('GET', '/ebb/v1/deregister');
  assert.equal(wrongMethod.body.code, 'InvalidAction');
  assert.match(wrongMethod.body.message, /takes POST, not GET/);
});

test('requests are signed as for ELBv2; the dashboard session hook lets GETs in, never changes', async (t) => {
  const sessions: string[] = [];
  const { h, A } = await setUp(t, {}, { api: { sessionCheck: (req) => (sessions.push(req.url ?? ''), req.headers.cookie === 'session=good') } });
  const cases: Array<[string, Promise<Answer>, number, string]> = [
    ['unsigned', h.call('GET', '/ebb/v1/status', { sign: false }), 403, 'MissingAuthenticationToken'],
    ['unknown key', h.call('GET', '/ebb/v1/status', { sign: { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'x' } }), 403, 'InvalidClientTokenId'],
    ['wrong secret', h.call('GET', '/ebb/v1/status', { sign: { accessKeyId: 'AKIDEBBJSONAPI000001', secretAccessKey: 'wrong' } }), 403, 'SignatureDoesNotMatch'],
    ['autoscaling scope', h.call('GET', '/ebb/v1/status', { service: 'autoscaling' }), 403, 'SignatureDoesNotMatch'],
    ['other region', h.call('GET', '/ebb/v1/status', { region: 'eu-west-1' }), 403, 'SignatureDoesNotMatch'],
    ['bad cookie', h.call('GET', '/ebb/v1/status', { sign: false, headers: { cookie: 'session=bad' } }), 403, 'MissingAuthenticationToken'],
  ];
  for (const [what, answer, status, code] of cases) {
    const a = await answer;
    assert.equal(a.status, status, `${what}: ${a.text}`);
    assert.equal(a.body.code, code, what);
    assert.equal(typeof a.body.message, 'string');
    assert.equal(a.headers['content-type'], 'application/json; charset=utf-8');
  }
  // A changed query after signing fails the signature: the query is signed.
  const signedOk = await h.call('GET', '/ebb/v1/targets?targetGroup=web');
  assert.equal(signedOk.status, 200);

  assert.equal((await h.call('GET', '/ebb/v1/openapi.json', { sign: false })).status, 200, 'the document is public');
  const withCookie = await h.call('GET', '/ebb/v1/status', { sign: false, headers: { cookie: 'session=good' } });
  assert.equal(withCookie.status, 200);
  const change = await h.call('POST', '/ebb/v1/deregister', { sign: false, headers: { cookie: 'session=good' }, body: { targetGroup: 'web', targets: [`127.0.0.1:${A.port}`] } });
  assert.equal(change.body.code, 'MissingAuthenticationToken', 'a change needs a signature, whatever the cookie');
  assert.equal(h.control.describeTargetHealth(h.control.describeTargetGroups({ names: ['web'] })[0]?.arn ?? '')[0]?.health.state, 'unavailable');
  h.api.setSessionCheck(undefined);
  assert.equal((await h.call('GET', '/ebb/v1/status', { sign: false, headers: { cookie: 'session=good' } })).status, 403);
  assert.ok(sessions.length >= 2);
});

test('bad input gets the AWS codes, with a message that says what to do', async (t) => {
  const { h, A } = await setUp(t);
  const cases: Array<[string, string, unknown, string, RegExp]> = [
    ['GET', '/ebb/v1/targets?targetGroup=nope', undefined, 'TargetGroupNotFound', /not found; list them with GET \/ebb\/v1\/status/],
    ['GET', '/ebb/v1/targets?targetGroup=arn:bad', undefined, 'ValidationError', /not a valid target group ARN/],
    ['GET', '/ebb/v1/targets?target=1.2.3.4:80', undefined, 'MissingParameter', /needs 'targetGroup'/],
    ['GET', '/ebb/v1/targets?group=web', undefined, 'ValidationError', /Unknown query parameter 'group'/],
    ['GET', '/ebb/v1/targets?targetGroup=web&target=1.2.3.4:99999', undefined, 'InvalidTarget', /write ID:PORT/],
    ['GET', '/ebb/v1/wait?targetGroup=web&target=1.2.3.4:80', undefined, 'MissingParameter', /for=not-routed or for=drained/],
    ['GET', '/ebb/v1/wait?targetGroup=web&target=1.2.3.4:80&for=gone', undefined, 'ValidationError', /must be one of not-routed, drained/],
    ['GET', '/ebb/v1/wait?targetGroup=web&target=1.2.3.4:80&for=drained&timeout=9999', undefined, 'ValidationError', /from 0 to 3600/],
    ['GET', '/ebb/v1/drain-records?since=yesterday', undefined, 'ValidationError', /RFC 3339/],
    ['POST', '/ebb/v1/deregister', { targetGroup: 'web', targets: ['127.0.0.1:1', `127.0.0.1:${A.port}`] }, 'InvalidTarget', /Not registered in target group 'web': 127\.0\.0\.1:1\. Nothing was deregistered/],
    ['POST', '/ebb/v1/deregister', { targetGroup: 'web', targets: [] }, 'MissingParameter', /needs 'targets'/],
    ['POST', '/ebb/v1/deregister', { targetGroup: 'web', targets: [`127.0.0.1:${A.port}`], timeoutSeconds: 4000 }, 'ValidationError', /from 0 to 3600/],
    ['POST', '/ebb/v1/deregister', { targetGroup: 'web', targets: [`127.0.0.1:${A.port}`], timeout: 4 }, 'ValidationError', /Unknown field 'timeout'/],
    ['POST', '/ebb/v1/deregister', 'not json', 'ValidationError', /not valid JSON/],
    ['POST', '/ebb/v1/register', { targetGroup: 'web', targets: [{ id: '127.0.0.1', port: 'x' }] }, 'InvalidTarget', /is not a target/],
  ];
  for (const [method, path, body, code, message] of cases) {
    const a = await h.call(method, path, body === undefined ? {} : { body });
    assert.equal(a.body?.code, code, `${method} ${path}: ${a.text}`);
    assert.equal(a.status, 400);
    assert.match(a.body.message, message);
    assert.equal(a.body.requestId, a.headers['x-amzn-requestid']);
  }
  assert.equal((await h.call('GET', `/ebb/v1/targets?targetGroup=web&target=127.0.0.1:${A.port}`)).body.targets[0].state, 'unavailable', 'nothing was deregistered');
});

test('a deregistration with its own deadline cuts at that deadline, and the drained barrier says so', { timeout: 30_000 }, async (t) => {
  const { h, A, listenerPort } = await setUp(t, { 'deregistration_delay.timeout_seconds': '300' });
  const slow = await slowRequest(listenerPort, A, 10_000);
  const started = Date.now();
  const dereg = await h.call('POST', '/ebb/v1/deregister', { body: { targetGroup: 'web', targets: [`127.0.0.1:${A.port}`], timeoutSeconds: 1 } });
  assert.equal(dereg.body.timeoutSeconds, 1);
  assert.equal(dereg.body.targets[0].drain.timeoutSeconds, 1);
  const waited = await h.call('GET', `/ebb/v1/wait?targetGroup=web&target=127.0.0.1:${A.port}&for=drained&timeout=20`);
  const took = Date.now() - started;
  assert.equal(waited.body.outcome, 'drained');
  assert.equal(waited.body.reached, true);
  assert.equal(waited.body.drain.outcome, 'deadline');
  assert.equal(waited.body.drain.requestsCut, 1);
  assert.equal(waited.body.drain.timeoutSeconds, 1);
  assert.equal(waited.body.target.state, 'unused');
  assert.ok(took >= 900 && took < 5000, `the drain should end at its own 1 s deadline, not the group's 300 s; took ${took} ms`);
  await slow.done;
  // Not registered now: answered at once, with that drain's record.
  const again = await h.call('GET', `/ebb/v1/wait?targetGroup=web&target=127.0.0.1:${A.port}&for=drained&timeout=20`);
  assert.equal(again.body.outcome, 'drained');
  assert.equal(again.body.drain.id, waited.body.drain.id);
  assert.ok(again.body.waitedMs < 500);
});

test('the drained barrier: not-draining at once for a serving target; timeout says so; a drain that ends idle ends the wait', { timeout: 30_000 }, async (t) => {
  const { h, A, listenerPort } = await setUp(t);
  const serving = await h.call('GET', `/ebb/v1/wait?targetGroup=web&target=127.0.0.1:${A.port}&for=drained&timeout=20`);
  assert.deepEqual([serving.body.outcome, serving.body.reached], ['not-draining', false]);
  const never = await h.call('GET', `/ebb/v1/wait?targetGroup=web&target=127.0.0.1:9&for=drained`);
  assert.deepEqual([never.body.outcome, never.body.drain], ['drained', null], 'never registered: nothing to drain');

  const slow = await slowRequest(listenerPort, A, 1500);
  await h.call('POST', '/ebb/v1/deregister', { body: { targetGroup: 'web', targets: [`127.0.0.1:${A.port}`] } });
  const short = await h.call('GET', `/ebb/v1/wait?targetGroup=web&target=127.0.0.1:${A.port}&for=drained&timeout=0.3`);
  assert.deepEqual([short.body.outcome, short.body.reached, short.body.target.state], ['timeout', false, 'draining']);
  assert.equal(short.body.target.requestsInFlight, 1);
  const waited = await h.call('GET', `/ebb/v1/wait?targetGroup=web&target=127.0.0.1:${A.port}&for=drained&timeout=20`);
  assert.equal(waited.body.outcome, 'drained');
  assert.equal(waited.body.drain.outcome, 'idle');
  assert.equal(waited.body.drain.requestsCompleted, 1);
  await slow.done;
});

test('the event stream: ready, then state changes and a drain from start through progress to end; heartbeats', { timeout: 30_000 }, async (t) => {
  const { h, A, doc, listenerPort } = await setUp(t, {}, { api: { heartbeatMs: 100, progressIntervalMs: 100 } });
  const s = await h.events();
  assert.equal(s.status, 200);
  await s.next((e) => e.event === 'stream:ready');
  const slow = await slowRequest(listenerPort, A, 600);
  await h.call('POST', '/ebb/v1/deregister', { body: { targetGroup: 'web', targets: [`127.0.0.1:${A.port}`] } });
  const start = await s.next((e) => e.event === 'drain:start');
  const progress = await s.next((e) => e.event === 'drain:progress' && e.data.requestsInFlight === 1);
  const end = await s.next((e) => e.event === 'drain:end');
  const gone = await s.next((e) => e.event === 'target:state' && e.data.to.state === 'unused');
  const draining = await s.next((e) => e.event === 'target:state' && e.data.to.state === 'draining');
  await slow.done;
  assert.equal(start.data.target, `127.0.0.1:${A.port}`);
  assert.equal(end.data.outcome, 'idle');
  assert.equal(draining.data.from.state, 'unavailable');
  assert.equal(gone.data.to.reason, 'Target.NotRegistered');
  const ids = s.events.map((e) => Number(e.id));
  assert.deepEqual(ids, [...ids].sort((x, y) => x - y), 'ids count up');
  assert.ok(Number(start.id) < Number(end.id) && Number(draining.id) < Number(gone.id));
  // Every payload fits the document's event schemas.
  const streamSchema = responseSchema(doc, 'GET', '/ebb/v1/events', 200);
  for (const e of s.events) {
    assert.equal(e.data.type, e.event);
    assert.deepEqual(check(doc, streamSchema, e.data), [], `${e.event}: ${JSON.stringify(e.data)}`);
  }
  assert.ok(progress.data.timeLeftMs > 0);
  assert.ok(await waitFor(() => s.comments.some((c) => c.startsWith(': heartbeat')), 2000), 'a heartbeat comment within 2 s');
  // ebb stopping ends the stream with a last event.
  h.api.close();
  await s.ended;
  assert.equal(s.events.at(-1)?.event, 'stream:closing');
});

test('the recommended delay: observed p99 plus the margin, with the sample size and window, and a warning below it', { timeout: 30_000 }, async (t) => {
  const { h, listenerPort } = await setUp(t, { 'deregistration_delay.timeout_seconds': '1' });
  const replies = await Promise.all(Array.from({ length: 20 }, () => get(listenerPort, '/slow?ms=1100')));
  assert.deepEqual(new Set(replies.map((r) => r.status)), new Set([200]));
  await sleep(10);
  const a = await h.call('GET', '/ebb/v1/recommended-delay?targetGroup=web');
  const r = a.body.targetGroups[0];
  assert.equal(r.targetGroupName, 'web');
  assert.equal(r.sampleSize, 20);
  assert.ok(r.p99TargetResponseMs >= 1100 && r.p99TargetResponseMs < 3000, `p99 ${r.p99TargetResponseMs}`);
  assert.deepEqual(r.marginPercent, { low: 20, high: 30 });
  assert.equal(r.recommendedDelaySeconds, Math.ceil((r.p99TargetResponseMs * 1.3) / 1000));
  assert.equal(r.recommendedRangeSeconds.low, Math.ceil((r.p99TargetResponseMs * 1.2) / 1000));
  assert.equal(r.configuredDelaySeconds, 1);
  assert.equal(r.window.maxSamples, 4096);
  assert.equal(r.window.maxAgeSeconds, 3600);
  assert.ok(Date.parse(r.window.from) <= Date.parse(r.window.to));
  assert.deepEqual(
    r.warnings.map((w: { kind: string }) => w.kind),
    ['few-samples', 'delay-below-recommendation'],
  );
});
