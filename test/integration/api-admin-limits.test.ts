import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Agent } from 'node:http';
import { test } from 'node:test';
import { DescribeTargetGroupsCommand, ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { type AdminHandlerOptions, createAdminHandler } from '../../src/api/admin-server.ts';
import type { ControlApi } from '../../src/control/control-api.ts';
import { sleep, within } from '../support/timing.ts';

/**
 * What the admin endpoint does before it reads a body: a request without a well-formed SigV4
 * Authorization header is answered from its headers alone, and only a bounded number of bodies are
 * read at once (the rest get 503 with Retry-After), each within a time limit. One client address
 * holds a bounded share of them, and some are kept for requests naming a configured access key, so
 * slow bodies cannot lock legitimate callers out. Clients on other addresses connect from 127.0.0.2…
 * (all of 127/8 is loopback on Linux).
 */

/**
 * Region us-east-1 (the one the clients sign for); every ControlApi method returns [] (enough for
 * DescribeTargetGroups). `calls` counts the DescribeTargetGroups calls that reached the control plane,
 * whatever else an action reads on its way.
 */
function stubControl(): { control: ControlApi; calls: () => number } {
  let calls = 0;
  const control = new Proxy(
    {},
    {
      get: (_, name) =>
        name === 'region'
          ? 'us-east-1'
          : () => {
              if (name === 'describeTargetGroups') calls++;
              return [];
            },
    },
  ) as ControlApi;
  return { control, calls: () => calls };
}

async function startAdmin(t: { after(fn: () => Promise<void>): void }, options: Partial<AdminHandlerOptions>): Promise<{ port: number; calls: () => number }> {
  const stub = stubControl();
  const server: Server = createServer(
    createAdminHandler({ control: stub.control, auth: { credentials: [{ accessKeyId: 'AKID', secretAccessKey: 's' }] }, log: () => {}, ...options }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, calls: stub.calls };
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** ms from sending the head to the whole answer. */
  ms: number;
}

/**
 * Opens a connection and sends a POST head declaring `length` body bytes plus `partial` of them; the
 * rest is sent only by `finish()`. `answer` resolves when a whole response has arrived.
 */
function openRequest(
  port: number,
  length: number,
  partial: string,
  headers: Record<string, string> = {},
  from = '127.0.0.1',
): { socket: Socket; answer: Promise<Answer>; finish(rest: string): void } {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  const started = Date.now();
  const answer = new Promise<Answer>((resolve, reject) => {
    let data = '';
    const timer = setTimeout(() => reject(new Error(`no answer within 5 s; got ${JSON.stringify(data)}`)), 5000);
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      data += c;
      const i = data.indexOf('\r\n\r\n');
      if (i === -1) return;
      const head = data.slice(0, i).split('\r\n');
      const hs: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const c2 = line.indexOf(':');
        hs[line.slice(0, c2).toLowerCase()] = line.slice(c2 + 1).trim();
      }
      const body = data.slice(i + 4);
      if (Buffer.byteLength(body) < Number(hs['content-length'] ?? 0)) return;
      clearTimeout(timer);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0), headers: hs, body, ms: Date.now() - started });
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`the connection closed; got ${JSON.stringify(data)}`));
    });
  });
  answer.catch(() => {});
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.write(`POST / HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: ${length}\r\n${extra}\r\n${partial}`);
  return { socket, answer, finish: (rest) => socket.write(rest) };
}

const BODY = 'Action=DescribeTargetGroups&Version=2015-12-01';

test('with auth on, a missing or malformed Authorization header is answered before any body is read', async (t) => {
  const { port, calls } = await startAdmin(t, {});
  // 500 000 bytes declared, none sent: the answer must not wait for them.
  const missing = openRequest(port, 500_000, '');
  const m = await missing.answer;
  assert.equal(m.status, 403);
  assert.match(m.body, /<Code>MissingAuthenticationToken<\/Code>/);
  assert.equal(m.headers['connection'], 'close');
  assert.ok(m.ms < 2000, `answered in ${m.ms} ms`);
  missing.socket.destroy();

  const malformed = openRequest(port, 500_000, 'Action=', { authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20260601' });
  const b = await malformed.answer;
  assert.equal(b.status, 400);
  assert.match(b.body, /<Code>IncompleteSignature<\/Code>/);
  malformed.socket.destroy();

  // A well-formed header whose date is missing is refused from the headers too.
  const auth = `AWS4-HMAC-SHA256 Credential=AKID/20260601/us-east-1/elasticloadbalancing/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`;
  const noDate = openRequest(port, 500_000, '', { authorization: auth });
  assert.match((await noDate.answer).body, /<Code>IncompleteSignature<\/Code>.*X-Amz-Date/s);
  noDate.socket.destroy();
  assert.equal(calls(), 0);
});

test('at most maxConcurrentBodies bodies are read at once; the next request gets 503 with Retry-After', async (t) => {
  const { port } = await startAdmin(t, { auth: { enabled: false, credentials: [] }, maxConcurrentBodies: 3, maxBodiesPerAddress: 3 });
  const held = [0, 1, 2].map(() => openRequest(port, BODY.length, BODY.slice(0, 10)));
  // Let the server take all three heads before the fourth arrives.
  await sleep(200);
  const extra = openRequest(port, BODY.length, BODY);
  const busy = await extra.answer;
  assert.equal(busy.status, 503);
  assert.equal(busy.headers['retry-after'], '1');
  assert.match(busy.body, /<Type>Receiver<\/Type><Code>ServiceUnavailable<\/Code>/);
  extra.socket.destroy();

  // A held request that completes frees its slot and is answered normally.
  const first = held[0]!;
  first.finish(BODY.slice(10));
  const done = await first.answer;
  assert.equal(done.status, 200, done.body);
  assert.match(done.body, /<DescribeTargetGroupsResponse/);
  const next = openRequest(port, BODY.length, BODY);
  assert.equal((await next.answer).status, 200);
  next.socket.destroy();

  // Clients that hang up free their slots too.
  for (const r of held) r.socket.destroy();
  await sleep(200);
  const again = [0, 1, 2].map(() => openRequest(port, BODY.length, BODY));
  for (const r of again) assert.equal((await r.answer).status, 200);
  for (const r of again) r.socket.destroy();
  first.socket.destroy();
});

test('a body that does not arrive within bodyTimeoutMs gets 408 RequestTimeout and frees its slot', async (t) => {
  const { port } = await startAdmin(t, { auth: { enabled: false, credentials: [] }, maxConcurrentBodies: 1, bodyTimeoutMs: 300 });
  const slow = openRequest(port, BODY.length, BODY.slice(0, 5));
  const a = await slow.answer;
  assert.equal(a.status, 408);
  assert.match(a.body, /<Code>RequestTimeout<\/Code>.*300 ms/s);
  assert.ok(a.ms >= 250, `answered after ${a.ms} ms`);
  slow.socket.destroy();
  const next = openRequest(port, BODY.length, BODY);
  assert.equal((await next.answer).status, 200);
  next.socket.destroy();
});

test('a declared or actual body over maxBodyBytes is 413 without holding a slot', async (t) => {
  const { port } = await startAdmin(t, { auth: { enabled: false, credentials: [] }, maxConcurrentBodies: 1, maxBodyBytes: 100 });
  const declared = openRequest(port, 1_000_000, '');
  assert.equal((await declared.answer).status, 413);
  declared.socket.destroy();
  const chunked = connect(port, '127.0.0.1');
  t.after(() => {
    chunked.destroy();
  });
  const got = new Promise<string>((resolve) => {
    let data = '';
    chunked.setEncoding('utf8');
    chunked.on('data', (c: string) => {
      data += c;
      if (data.includes('</ErrorResponse>')) resolve(data);
    });
  });
  chunked.write(`POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n${(200).toString(16)}\r\n${'a'.repeat(200)}\r\n`);
  assert.match(await got, /^HTTP\/1\.1 413 .*RequestEntityTooLarge/s);
  const next = openRequest(port, BODY.length, BODY);
  assert.equal((await next.answer).status, 200);
  next.socket.destroy();
});

/** Whether this host lets a socket connect from 127.0.0.2 (Linux does; macOS only with an alias). */
async function otherLoopback(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** The answer if it arrives within `ms`, else 'pending' (the request still holds its slot). */
function answerWithin(r: { answer: Promise<Answer> }, ms: number): Promise<Answer | 'pending'> {
  return within(r.answer.catch(() => 'pending' as const), ms, 'pending');
}

/** X-Amz-Date for now (yyyymmddTHHMMSSZ). */
function amzNow(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** A well-formed SigV4 header for `key` whose signature is wrong (all zeros). */
function forgedAuth(key: string, amzDate: string): Record<string, string> {
  return {
    authorization: `AWS4-HMAC-SHA256 Credential=${key}/${amzDate.slice(0, 8)}/us-east-1/elasticloadbalancing/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=${'0'.repeat(64)}`,
    'x-amz-date': amzDate,
  };
}

/** DescribeTargetGroups through the JS SDK, signed with the test key, from `from`; resolves with the error code or 'ok'. */
async function sdkCall(port: number, from: string): Promise<{ result: string; ms: number }> {
  const httpAgent = new Agent({ localAddress: from, keepAlive: false });
  const client = new ElasticLoadBalancingV2Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKID', secretAccessKey: 's' },
    maxAttempts: 1,
    requestHandler: { httpAgent, requestTimeout: 3000 },
  });
  const started = Date.now();
  try {
    await client.send(new DescribeTargetGroupsCommand({}));
    return { result: 'ok', ms: Date.now() - started };
  } catch (e) {
    const err = e as { Code?: string; name: string };
    return { result: err.Code ?? err.name, ms: Date.now() - started };
  } finally {
    client.destroy();
    httpAgent.destroy();
  }
}

test('70 slow bodies with an unknown key or a wrong signature from one address do not lock out a signed caller', async (t) => {
  // The defaults: 64 slots, 8 per address, 10 s for a body.
  const { port, calls } = await startAdmin(t, {});
  if (!(await otherLoopback(port))) {
    t.skip('this host cannot connect from 127.0.0.2');
    return;
  }
  const date = amzNow();
  const attack: ReturnType<typeof openRequest>[] = [];
  t.after(() => {
    for (const r of attack) r.socket.destroy();
  });
  for (let i = 0; i < 70; i++) {
    attack.push(openRequest(port, BODY.length, BODY.slice(0, 5), forgedAuth(i % 2 === 0 ? 'AKIDNOTCONFIGURED' : 'AKID', date)));
  }
  const answers = await Promise.all(attack.map((r) => answerWithin(r, 1500)));
  const unknownKey = answers.filter((_, i) => i % 2 === 0);
  const knownKey = answers.filter((_, i) => i % 2 === 1);
  // An unknown key is refused from the headers, before the body and without a slot.
  for (const a of unknownKey) {
    assert.ok(a !== 'pending', 'a request with an unknown key was left waiting');
    assert.equal(a.status, 403);
    assert.match(a.body, /<Code>InvalidClientTokenId<\/Code>.*AKIDNOTCONFIGURED/s);
  }
  // A known key could sign correctly, so its body is read: 8 wait for theirs, the rest are refused.
  assert.equal(knownKey.filter((a) => a === 'pending').length, 8);
  for (const a of knownKey) {
    if (a === 'pending') continue;
    assert.equal(a.status, 503);
    assert.equal(a.headers['retry-after'], '1');
    assert.match(a.body, /<Code>ServiceUnavailable<\/Code>.*from 127\.0\.0\.1/s);
  }

  const elsewhere = await sdkCall(port, '127.0.0.2');
  assert.equal(elsewhere.result, 'ok');
  assert.ok(elsewhere.ms < 2000, `answered in ${elsewhere.ms} ms`);
  // The attacker's own address has used its share: a call from it is told to retry, at once.
  const same = await sdkCall(port, '127.0.0.1');
  assert.equal(same.result, 'ServiceUnavailable');
  assert.ok(same.ms < 2000, `answered in ${same.ms} ms`);

  for (const r of attack) r.socket.destroy();
  await sleep(200);
  assert.equal((await sdkCall(port, '127.0.0.1')).result, 'ok');
  assert.equal(calls(), 2);
});

test('with auth off, 70 slow bodies from one address hold only that address\'s share', async (t) => {
  const { port } = await startAdmin(t, { auth: { enabled: false, credentials: [] } });
  if (!(await otherLoopback(port))) {
    t.skip('this host cannot connect from 127.0.0.2');
    return;
  }
  const attack: ReturnType<typeof openRequest>[] = [];
  t.after(() => {
    for (const r of attack) r.socket.destroy();
  });
  for (let i = 0; i < 70; i++) attack.push(openRequest(port, BODY.length, BODY.slice(0, 5)));
  const answers = await Promise.all(attack.map((r) => answerWithin(r, 1500)));
  assert.equal(answers.filter((a) => a === 'pending').length, 8);
  assert.ok(answers.every((a) => a === 'pending' || a.status === 503));

  const other = openRequest(port, BODY.length, BODY, {}, '127.0.0.2');
  t.after(() => {
    other.socket.destroy();
  });
  const a = await other.answer;
  assert.equal(a.status, 200, a.body);
  assert.ok(a.ms < 2000, `answered in ${a.ms} ms`);
});

test('slots kept for a configured access key stay free when callers without one fill the rest', async (t) => {
  // 8 slots: 2 per address, 2 kept for requests naming a configured key, so 6 for the others.
  const { port } = await startAdmin(t, { auth: { enabled: false, credentials: [{ accessKeyId: 'AKID', secretAccessKey: 's' }] }, maxConcurrentBodies: 8 });
  if (!(await otherLoopback(port))) {
    t.skip('this host cannot connect from 127.0.0.2');
    return;
  }
  const opened: ReturnType<typeof openRequest>[] = [];
  t.after(() => {
    for (const r of opened) r.socket.destroy();
  });
  const open = (...args: Parameters<typeof openRequest>): ReturnType<typeof openRequest> => {
    const r = openRequest(...args);
    opened.push(r);
    return r;
  };
  const attack = ['127.0.0.2', '127.0.0.3', '127.0.0.4'].flatMap((from) => [0, 1, 2].map(() => open(port, BODY.length, BODY.slice(0, 5), {}, from)));
  const answers = await Promise.all(attack.map((r) => answerWithin(r, 1000)));
  assert.equal(answers.filter((a) => a === 'pending').length, 6);

  const unsigned = await open(port, BODY.length, BODY, {}, '127.0.0.5').answer;
  assert.equal(unsigned.status, 503);
  assert.match(unsigned.body, /<Code>ServiceUnavailable<\/Code>.*kept for signed requests/s);
  const otherKey = await open(port, BODY.length, BODY, forgedAuth('AKIDNOTCONFIGURED', amzNow()), '127.0.0.5').answer;
  assert.equal(otherKey.status, 503);
  // Authentication is off, so the signature is not checked; the header only has to name a configured key.
  const keyed = await open(port, BODY.length, BODY, forgedAuth('AKID', amzNow()), '127.0.0.5').answer;
  assert.equal(keyed.status, 200, keyed.body);
});
