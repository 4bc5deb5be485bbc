import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import type { RequestEndMessage } from '../../dataplane/channels.ts';
import { RequestDigest } from '../../dataplane/request-digest.ts';
import { RequestMetrics } from './request-metrics.ts';

/**
 * A worker's digest (src/dataplane/request-digest.ts) must count what the messages themselves count:
 * the same random request ends, given one by one to one RequestMetrics and folded into digests of
 * random sizes (sent through JSON, as the link carries them) for another, give the same exposition.
 */

const ACCOUNT = 'arn:aws:elasticloadbalancing:us-east-1:123456789012';
const LISTENERS = [`${ACCOUNT}:listener/app/web/1/l1`, `${ACCOUNT}:listener/app/web/1/l2`, `${ACCOUNT}:listener/app/api/2/l3`];
const GROUPS = [`${ACCOUNT}:targetgroup/web/1`, `${ACCOUNT}:targetgroup/api/2`, `${ACCOUNT}:targetgroup/old/3`];
const TARGET_STATUSES = [200, 200, 200, 204, 301, 404, 500, 503, 99, 600, null];
const REASONS = [null, null, null, 'connect-refused', 'connect-timeout', 'target-tls: expired', 'upstream-reset', 'no-target', 'terminated cut'];
const TIMES = [-1, 0, 0.4, 3, 5, 7.5, 120, 999, 2_500, 60_000, 61_000];

function random(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
}

function pick<T>(r: () => number, list: readonly T[]): T {
  return list[Math.floor(r() * list.length)] as T;
}

function randomEnd(r: () => number): RequestEndMessage {
  const targetStatus = pick(r, TARGET_STATUSES);
  const targetGroupArn = r() < 0.1 ? null : pick(r, GROUPS);
  const targetKey = targetGroupArn === null || r() < 0.1 ? null : `${targetGroupArn}|10.0.0.1|80`;
  return {
    dataPlaneId: 'w1',
    listenerArn: pick(r, LISTENERS),
    listenerPort: 80,
    targetGroupArn,
    targetKey,
    target: targetKey === null ? null : '10.0.0.1:80',
    clientAddress: '127.0.0.1',
    clientPort: 50000,
    method: 'GET',
    url: '/',
    version: 'HTTP/1.1',
    host: null,
    userAgent: null,
    status: targetStatus ?? pick(r, [0, 400, 408, 502, 503, 504]),
    targetStatus,
    fromTarget: targetStatus !== null,
    requestTime: 1_790_000_000_000,
    durationMs: 1,
    requestProcessingMs: 0,
    targetResponseMs: pick(r, TIMES),
    responseProcessingMs: 0,
    receivedBytes: Math.floor(r() * 2000),
    sentBytes: Math.floor(r() * 20000),
    classification: 'Compliant',
    classificationReason: null,
    errorReason: pick(r, REASONS),
    tls: null,
  };
}

for (const seed of [1, 2, 3, 42, 2026]) {
  test(`seed ${seed}: request ends folded into digests count what they count one by one`, async () => {
    const r = random(seed);
    const one = new Registry();
    const folded = new Registry();
    const byMessage = new RequestMetrics([one], () => {});
    const byDigest = new RequestMetrics([folded], () => {});
    let digest = new RequestDigest(r);
    let total = 0;
    const send = (): void => {
      const d = digest.take();
      if (d !== null) byDigest.digested(JSON.parse(JSON.stringify(d)));
      digest = new RequestDigest(r);
    };
    for (let i = 0; i < 3000; i++) {
      const m = randomEnd(r);
      byMessage.requestEnded(m);
      digest.add(m);
      total++;
      if (r() < 0.02) send();
    }
    send();
    // Series appear in the order they were first counted, which folding changes: the lines are compared as a set.
    const lines = async (r: Registry): Promise<string[]> => (await r.metrics()).split('\n').sort();
    const expected = await lines(one);
    assert.ok(expected.some((l) => l.startsWith('ebb_target_response_time_seconds_bucket{')), 'the exposition has the histogram');
    assert.ok(expected.some((l) => l.startsWith('ebb_httpcode_elb_502_count{')), 'and ebb answers');
    assert.ok(expected.some((l) => l.startsWith('ebb_target_tls_negotiation_error_count{')), 'and TLS failures');
    const got = await lines(folded);
    // A sum of seconds is added in another order (a digest sums its batch first): equal to the last few bits.
    const exact = (ls: string[]): string[] => ls.filter((l) => !l.includes('_sum{'));
    assert.deepEqual(exact(got), exact(expected), `${total} requests`);
    const sums = (ls: string[]): Array<[string, number]> => ls.filter((l) => l.includes('_sum{')).map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]);
    const want = sums(expected);
    assert.deepEqual(sums(got).map(([k]) => k), want.map(([k]) => k));
    for (const [i, [k, v]] of sums(got).entries()) assert.ok(Math.abs(v - want[i]![1]) <= 1e-9 * Math.max(1, Math.abs(v)), `${k}: ${v} against ${want[i]![1]}`);
  });
}
