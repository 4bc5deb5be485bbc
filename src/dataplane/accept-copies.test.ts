import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { freePort } from '../../test/support/ports.ts';
import { alive } from '../../test/support/processes.ts';
import { addAcceptCopies } from './accept-copies.ts';

function listening(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function connected(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * Connects `n` clients while the event loop is held (so all of them wait in the accept queue), then
 * counts the server's 'connection' events in each of the next turns.
 */
async function acceptedPerTurn(server: net.Server, port: number, n: number): Promise<{ turns: number[]; clients: net.Socket[] }> {
  const clients = Array.from({ length: n }, () => net.connect(port, '127.0.0.1'));
  // net.connect calls connect() on the next tick; this resolves after those ticks, before any I/O.
  await new Promise<void>((resolve) => process.nextTick(resolve));
  const until = Date.now() + 50;
  while (Date.now() < until) {
    // on loopback the kernel has completed the handshakes; nothing is accepted until the loop turns
  }
  let count = 0;
  const onConnection = (): void => void count++;
  server.on('connection', onConnection);
  const turns: number[] = [];
  await new Promise<void>((resolve) => {
    const mark = (): void => {
      turns.push(count);
      count = 0;
      if (turns.reduce((a, b) => a + b, 0) >= n || turns.length >= 200) resolve();
      else setImmediate(mark);
    };
    setImmediate(mark);
  });
  server.off('connection', onConnection);
  return { turns, clients };
}

test('copies of the descriptor: a turn accepts up to that many, every connection is the server’s own, and its limit holds', async (t) => {
  const seen: net.Socket[] = [];
  const server = net.createServer((s) => seen.push(s));
  const port = await listening(server);
  const problems: string[] = [];
  let held = 0;
  const copies = addAcceptCopies(server, { count: 4, onProblem: (r) => problems.push(r), onDescriptors: (d) => (held += d) });
  t.after(() => {
    if (server.listening) server.close();
  });
  assert.equal(await copies.ready, 3);
  assert.equal(held, 3, 'each copy is a descriptor held');
  assert.deepEqual(problems, []);
  assert.equal(copies.helperPid(), null, 'the helper has exited once it sent the copies');

  const { turns, clients } = await acceptedPerTurn(server, port, 20);
  t.diagnostic(`accepted per turn with 4 descriptors: ${turns.join(' ')}`);
  assert.equal(Math.max(...turns), 4, 'a turn takes one connection per descriptor');
  assert.equal(seen.length, 20);
  assert.ok(seen.every((s) => (s as net.Socket & { server?: net.Server }).server === server));
  const count = await new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  assert.equal(count, 20, 'the server counts what its copies accepted');

  // The server's maxConnections applies whichever descriptor accepts: beyond it, each is dropped.
  server.maxConnections = 20;
  let drops = 0;
  server.on('drop', () => void drops++);
  const extra = await Promise.all(Array.from({ length: 6 }, () => connected(port)));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(drops, 6);
  assert.equal(seen.length, 20);

  for (const c of [...clients, ...extra]) c.destroy();
  for (const s of seen) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.equal(held, 0, 'and given back when they close');
  // Closed with the server: nothing accepts on the port any more.
  await assert.rejects(connected(port), /ECONNREFUSED/);
});

test('one descriptor (no copies): a turn accepts one connection', async (t) => {
  const seen: net.Socket[] = [];
  const server = net.createServer((s) => seen.push(s));
  const port = await listening(server);
  t.after(() => server.close());
  const copies = addAcceptCopies(server, { count: 1, onProblem: () => assert.fail('no problem expected') });
  assert.equal(await copies.ready, 0);
  const { turns, clients } = await acceptedPerTurn(server, port, 10);
  assert.equal(Math.max(...turns), 1);
  for (const c of clients) c.destroy();
  for (const s of seen) s.destroy();
});

test('a helper that dies leaves the server with its one descriptor, says why, and is not left running', async (t) => {
  const server = net.createServer((s) => s.end('hi'));
  const port = await listening(server);
  t.after(() => server.close());
  const problems: string[] = [];
  const copies = addAcceptCopies(server, {
    count: 4,
    onProblem: (r) => problems.push(r),
    spawnHelper: () => spawn(process.execPath, ['-e', 'process.exit(3)'], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] }),
  });
  assert.equal(await copies.ready, 0);
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? '', /exited \(code 3\) after 0 of 3 copies/);
  const reply = await new Promise<string>((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    c.on('data', (b) => (got += b.toString()));
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
  assert.equal(reply, 'hi', 'the server still accepts on its own descriptor');
});

test('a helper that never answers is killed at the timeout', async (t) => {
  const server = net.createServer((s) => s.destroy());
  await listening(server);
  t.after(() => {
    if (server.listening) server.close();
  });
  const problems: string[] = [];
  const copies = addAcceptCopies(server, {
    count: 3,
    timeoutMs: 300,
    onProblem: (r) => problems.push(r),
    spawnHelper: () => spawn(process.execPath, ['-e', "process.on('message', () => {})"], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] }),
  });
  const pid = copies.helperPid();
  assert.ok(pid !== null && alive(pid));
  assert.equal(await copies.ready, 0);
  assert.match(problems[0] ?? '', /sent 0 of 2 copies in 300 ms/);
  const gone = Date.now() + 2000;
  while (alive(pid) && Date.now() < gone) await new Promise((r) => setTimeout(r, 20));
  assert.equal(alive(pid), false, 'the helper was stopped');
});

test('a server closed before its copies come back keeps none of them: nothing accepts on the port', async () => {
  const server = net.createServer((s) => s.destroy());
  const port = await listening(server);
  const problems: string[] = [];
  const copies = addAcceptCopies(server, { count: 4, onProblem: (r) => problems.push(r) });
  const pid = copies.helperPid();
  assert.ok(pid !== null);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.equal(await copies.ready, 0);
  assert.deepEqual(problems, []);
  assert.equal(alive(pid), false, 'the helper, still at work when the server closed, was stopped with it');
  await assert.rejects(connected(port), /ECONNREFUSED/);
  // Nothing holds the port: it can be bound again at once.
  const again = net.createServer();
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.listen(port, '127.0.0.1', () => resolve());
  });
  await new Promise<void>((resolve) => again.close(() => resolve()));
});

test('a helper started without a channel (as Node does at the descriptor limit): no copies, a reason, no crash, no process left', async (t) => {
  const server = net.createServer((s) => s.end('hi'));
  await listening(server);
  t.after(() => server.close());
  const problems: string[] = [];
  let pid: number | undefined;
  const copies = addAcceptCopies(server, {
    count: 4,
    onProblem: (r) => problems.push(r),
    spawnHelper: () => {
      const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
      pid = child.pid;
      return child;
    },
  });
  assert.equal(await copies.ready, 0);
  assert.match(problems[0] ?? '', /could not start with a channel/);
  const gone = Date.now() + 2000;
  while (pid !== undefined && alive(pid) && Date.now() < gone) await new Promise((r) => setTimeout(r, 20));
  assert.ok(pid !== undefined && !alive(pid), 'the helper without a channel was stopped');
});

test('listenOn with acceptCopies: an exclusive socket gets its copies and holds their descriptors until it closes; a shared one gets none', async () => {
  const { listenOn } = await import('./listen-mode.ts');
  const port = await freePort();
  let held = 0;
  const logs: Array<Record<string, unknown>> = [];
  const acceptCopies = { count: 4, log: (l: Record<string, unknown>) => logs.push(l), holdDescriptors: (d: number) => void (held += d) };
  const seen: net.Socket[] = [];
  const server = net.createServer((s) => seen.push(s));
  listenOn(server, { mode: 'exclusive', inherited: null, acceptCopies }, '127.0.0.1', port);
  const until = Date.now() + 5000;
  while (held < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.equal(held, 3);
  const { turns, clients } = await acceptedPerTurn(server, port, 12);
  assert.equal(Math.max(...turns), 4);
  for (const c of clients) c.destroy();
  for (const s of seen) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.equal(held, 0);
  assert.deepEqual(logs, [{ level: 'info', msg: 'listening socket copied', address: '127.0.0.1', port, descriptors: 4 }]);

  // Two listeners opening at once: both get their copies, one helper after the other.
  const [p1, p2] = [await freePort(), await freePort()];
  const one = net.createServer((s) => s.destroy());
  const two = net.createServer((s) => s.destroy());
  listenOn(one, { mode: 'exclusive', inherited: null, acceptCopies }, '127.0.0.1', p1);
  listenOn(two, { mode: 'exclusive', inherited: null, acceptCopies }, '127.0.0.1', p2);
  const both = Date.now() + 8000;
  while (held < 6 && Date.now() < both) await new Promise((r) => setTimeout(r, 20));
  assert.equal(held, 6);
  await Promise.all([one, two].map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
  assert.equal(held, 0);

  const shared = net.createServer();
  listenOn(shared, { mode: 'shared', inherited: null, acceptCopies }, '127.0.0.1', 0);
  await new Promise((r) => shared.once('listening', r));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(held, 0, 'a shared socket (workers) keeps one descriptor');
  await new Promise<void>((resolve) => shared.close(() => resolve()));
});
