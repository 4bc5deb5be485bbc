import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestEndMessage } from './channels.ts';
import { DIGEST_SAMPLES, digestProblem, RequestDigest, RESPONSE_TIME_BUCKETS, responseTimeBucket, targetFailureOf } from './request-digest.ts';

const L1 = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1/l1';
const TG = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1';

function requestEnd(over: Partial<RequestEndMessage> = {}): RequestEndMessage {
  return {
    dataPlaneId: 'w1',
    listenerArn: L1,
    listenerPort: 80,
    targetGroupArn: TG,
    targetKey: `${TG}|10.0.0.1|80`,
    target: '10.0.0.1:80',
    clientAddress: '127.0.0.1',
    clientPort: 50000,
    method: 'GET',
    url: '/',
    version: 'HTTP/1.1',
    host: 'lb.example',
    userAgent: null,
    status: 200,
    targetStatus: 200,
    fromTarget: true,
    requestTime: 1_790_000_000_000,
    durationMs: 3,
    requestProcessingMs: 0,
    targetResponseMs: 2,
    responseProcessingMs: 0,
    receivedBytes: 40,
    sentBytes: 60,
    classification: 'Compliant',
    classificationReason: null,
    errorReason: null,
    tls: null,
    ...over,
  };
}

test('a batch folds into bytes and ebb answers per listener, and requests, statuses, times and failures per target group', () => {
  const d = new RequestDigest();
  d.add(requestEnd());
  d.add(requestEnd({ targetStatus: 404, status: 404, targetResponseMs: 30 }));
  d.add(requestEnd({ targetStatus: null, status: 502, fromTarget: false, targetResponseMs: -1, errorReason: 'connect-refused' }));
  d.add(requestEnd({ targetStatus: null, status: 503, fromTarget: false, targetGroupArn: TG, targetKey: null, target: null, targetResponseMs: -1, errorReason: 'no-target' }));
  d.add(requestEnd({ targetStatus: null, status: 502, fromTarget: false, targetResponseMs: -1, errorReason: 'target-tls: self-signed certificate' }));
  d.add(requestEnd({ targetResponseMs: 90_000 }));
  assert.equal(d.size, 6);
  const digest = d.take();
  assert.ok(digest !== null);
  assert.equal(digestProblem(JSON.parse(JSON.stringify(digest))), null, 'what it makes is what the control side accepts');
  assert.equal(digest.requests, 6);
  assert.equal(digest.listeners.length, 1);
  const l = digest.listeners[0]!;
  assert.equal(l.bytes, 600);
  assert.deepEqual(new Map(l.elb), new Map([[502, 2], [503, 1]]));
  assert.equal(l.groups.length, 1);
  const g = l.groups[0]!;
  assert.equal(g.requests, 5, 'the request given no target is not counted for the group');
  assert.deepEqual(new Map(g.targetStatus), new Map([[200, 2], [404, 1]]));
  assert.equal(g.connectionErrors, 1);
  assert.equal(g.tlsErrors, 1);
  assert.equal(g.responseTime.count, 3);
  assert.equal(g.responseTime.sum, 0.002 + 0.03 + 90);
  const counts = RESPONSE_TIME_BUCKETS.map((_, i) => [responseTimeBucket(0.002), responseTimeBucket(0.03)].filter((b) => b === i).length);
  assert.deepEqual(g.responseTime.counts, counts, '90 s is beyond the last bucket: in the sum and count only');
  assert.deepEqual(
    digest.samples.map((s) => s[2]),
    [2, 30, 90_000],
    'the requests a target answered are sampled',
  );
  assert.deepEqual(digest.samples[0], [TG, 1_790_000_000_003, 2, 3]);
  assert.equal(d.take(), null, 'taken: nothing left');
});

test('samples are bounded, and each answered request of the batch has the same chance', () => {
  let seed = 7;
  const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const kept = new Array<number>(4 * DIGEST_SAMPLES).fill(0);
  const ROUNDS = 200;
  for (let round = 0; round < ROUNDS; round++) {
    const d = new RequestDigest(random);
    for (let i = 0; i < kept.length; i++) d.add(requestEnd({ targetResponseMs: i }));
    const digest = d.take()!;
    assert.equal(digest.samples.length, DIGEST_SAMPLES);
    assert.equal(digest.requests, kept.length, 'every request is counted, sampled or not');
    for (const s of digest.samples) kept[s[2]]!++;
  }
  // Each is kept with chance 1/4: over 200 rounds about 50 times; the first quarter no more than the last.
  const quarter = (q: number): number => kept.slice(q * DIGEST_SAMPLES, (q + 1) * DIGEST_SAMPLES).reduce((a, b) => a + b, 0) / DIGEST_SAMPLES;
  for (let q = 0; q < 4; q++) assert.ok(Math.abs(quarter(q) - ROUNDS / 4) < 5, `quarter ${q} kept ${quarter(q).toFixed(1)} times on average, not about ${ROUNDS / 4}`);
});

test('target failures: connection refused or timed out, TLS, or none', () => {
  assert.equal(targetFailureOf('connect-refused'), 'connection');
  assert.equal(targetFailureOf('connect-timeout after 10000 ms'), 'connection');
  assert.equal(targetFailureOf('target-tls: certificate has expired'), 'tls');
  assert.equal(targetFailureOf('upstream-reset'), null);
  assert.equal(targetFailureOf(null), null);
});

test('a digest of another shape is refused, saying what is wrong', () => {
  const d = new RequestDigest();
  d.add(requestEnd());
  const good = JSON.parse(JSON.stringify(d.take())) as Record<string, unknown>;
  const bad = (change: (v: any) => void): string | null => {
    const v = structuredClone(good);
    change(v);
    return digestProblem(v);
  };
  assert.equal(digestProblem(null), 'is not an object');
  assert.equal(bad((v) => (v.requests = -1)), "has no count 'requests'");
  assert.equal(bad((v) => delete v.samples), "must have the lists 'listeners' and 'samples'");
  assert.match(bad((v) => (v.listeners[0].elb = [[502]]))!, /listener that is not/);
  assert.match(bad((v) => (v.listeners[0].groups[0].requests = 1.5))!, /target group that is not/);
  assert.match(bad((v) => delete v.listeners[0].groups[0].tlsErrors)!, /error counts/);
  assert.match(bad((v) => (v.listeners[0].groups[0].responseTime.sum = 'x'))!, /responseTime/);
  assert.match(bad((v) => v.listeners[0].groups[0].responseTime.counts.pop())!, /one per bucket/);
  assert.match(bad((v) => (v.listeners[0].groups[0].responseTime.counts[3] = 5))!, /more than its count/);
  assert.match(bad((v) => (v.samples[0] = [1, 2, 3, 4]))!, /sample that is not/);
  assert.match(bad((v) => (v.samples = new Array(DIGEST_SAMPLES + 1).fill(v.samples[0])))!, /more than 256 samples/);
});

test('merge: a digest folded elsewhere adds up with this one as if its requests were folded here', () => {
  const ends = [
    requestEnd(),
    requestEnd({ targetStatus: 404, status: 404, targetResponseMs: 30 }),
    requestEnd({ targetStatus: null, status: 502, fromTarget: false, targetResponseMs: -1, errorReason: 'connect-refused' }),
    requestEnd({ listenerArn: `${L1}x`, targetResponseMs: 700 }),
    requestEnd({ targetStatus: null, status: 502, fromTarget: false, targetResponseMs: -1, errorReason: 'target-tls: expired' }),
  ];
  const whole = new RequestDigest();
  for (const m of ends) whole.add(m);
  const here = new RequestDigest();
  const elsewhere = new RequestDigest();
  ends.forEach((m, i) => (i % 2 === 0 ? here : elsewhere).add(m));
  here.merge(JSON.parse(JSON.stringify(elsewhere.take())));
  const sorted = (d: ReturnType<RequestDigest['take']>): unknown => {
    assert.ok(d !== null);
    const listeners = [...d.listeners]
      .sort((a, b) => a.listenerArn.localeCompare(b.listenerArn))
      .map((l) => ({ ...l, elb: [...l.elb].sort((a, b) => a[0] - b[0]), groups: l.groups.map((g) => ({ ...g, targetStatus: [...g.targetStatus].sort((a, b) => a[0] - b[0]) })) }));
    return { requests: d.requests, listeners, samples: [...d.samples].sort((a, b) => a[2] - b[2]) };
  };
  assert.deepEqual(sorted(here.take()), sorted(whole.take()));
});
