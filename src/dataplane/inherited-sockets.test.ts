/**
 * InheritedSockets and listenOn with real listening sockets passed to a real child process over IPC, as
 * a hot restart passes them (docs/restart.md). The child is inherited-sockets.test-child.ts.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { Cleanup } from '../../test/support/cleanup.ts';
import { connectOutcome, freePort } from '../../test/support/ports.ts';
import type { SocketHandle } from './listen-mode.ts';

const CHILD = new URL('./inherited-sockets.test-child.ts', import.meta.url).pathname;
const HOST = '127.0.0.1';

/** The forked child, asked one thing at a time by request id. */
class Successor {
  readonly process: ChildProcess;
  readonly ready: Promise<void>;
  #nextId = 1;
  readonly #waiting = new Map<number, (result: unknown) => void>();

  constructor(cleanup: Cleanup) {
    this.process = fork(CHILD, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const pid = this.process.pid;
    assert.ok(pid !== undefined, 'the child was started');
    cleanup.add(() => {
      if (this.process.exitCode === null && this.process.signalCode === null) process.kill(pid, 'SIGKILL');
    });
    this.ready = new Promise((resolve) => this.#waiting.set(0, () => resolve()));
    this.process.on('message', (raw: { id: number; result: unknown }) => {
      const resolve = this.#waiting.get(raw.id);
      this.#waiting.delete(raw.id);
      resolve?.(raw.result);
    });
  }

  ask(request: Record<string, unknown>, handle?: SocketHandle): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, resolve);
      this.process.send({ id, ...request }, handle as unknown as net.Server | undefined, undefined, (error) => {
        if (error !== null) reject(error);
      });
    });
  }

  /** Sends the handle under `server` for `address:port`, as the predecessor does. */
  add(server: net.Server, address: string, port: number): Promise<unknown> {
    const handle = (server as unknown as { _handle: SocketHandle | null })._handle;
    assert.ok(handle !== null, 'the server listens');
    return this.ask({ op: 'add', address, port }, handle);
  }
}

/** A server listening on a port of its own on 127.0.0.1, which says who it is to each connection. */
async function listening(cleanup: Cleanup): Promise<{ server: net.Server; port: number }> {
  const port = await freePort();
  const server = net.createServer((socket) => socket.end('served by the original'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: HOST, port, exclusive: true }, resolve);
  });
  cleanup.add(() => closeServer(server));
  return { server, port };
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
}

/** What the server at `port` says to a new connection, or the connection's error code. */
function greeting(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, HOST);
    let text = '';
    socket.setEncoding('utf8');
    socket.setTimeout(2000, () => {
      socket.destroy();
      resolve(`timeout after '${text}'`);
    });
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

const cleanup = new Cleanup();
let child: Successor;

before(async () => {
  child = new Successor(cleanup);
  await child.ready;
});
after(() => cleanup.run());

test('a handed-over handle is there for its address and port, and taken once', async () => {
  const { server, port } = await listening(cleanup);
  await child.add(server, HOST, port);
  assert.equal(await child.ask({ op: 'has', address: HOST, port }), true);
  assert.equal(await child.ask({ op: 'has', address: '0.0.0.0', port }), false, 'the address is part of the key');
  assert.equal(await child.ask({ op: 'has', address: HOST, port: port + 1 }), false);
  assert.deepEqual(await child.ask({ op: 'take', address: HOST, port }), { first: true, second: false });
  assert.equal(await child.ask({ op: 'has', address: HOST, port }), false, 'taken: no longer there');
});

test('listenOn listens on the handed-over socket: a client connecting after the original server closed is served by the new one', async () => {
  const { server, port } = await listening(cleanup);
  assert.equal(await greeting(port), 'served by the original');
  await child.add(server, HOST, port);
  assert.deepEqual(await child.ask({ op: 'listen', address: HOST, port }), { port });
  await closeServer(server);
  const pid = child.process.pid ?? 0;
  for (let i = 0; i < 3; i++) assert.equal(await greeting(port), `served by ${pid}`);
  assert.equal(await child.ask({ op: 'has', address: HOST, port }), false, 'listenOn took it');
});

test('listenOn binds a socket of its own for an address nothing was handed over for', async () => {
  const port = await freePort();
  assert.deepEqual(await child.ask({ op: 'listen', address: HOST, port }), { port });
  assert.equal(await greeting(port), `served by ${child.process.pid ?? 0}`);
});

test('closeUnclaimed closes the handles no listener took: their port is refused once the original is closed too', async () => {
  const unclaimed = await listening(cleanup);
  await child.add(unclaimed.server, HOST, unclaimed.port);
  await closeServer(unclaimed.server);
  // Held open by the child: the kernel still completes connections into its queue.
  assert.equal(await connectOutcome(unclaimed.port, 2000), 'connected');
  assert.deepEqual(await child.ask({ op: 'close-unclaimed' }), [`${HOST}:${unclaimed.port}`]);
  assert.equal(await connectOutcome(unclaimed.port, 2000), 'ECONNREFUSED');
  assert.deepEqual(await child.ask({ op: 'close-unclaimed' }), [], 'nothing is left to close');
});

test('several handles for one address (one per worker under SO_REUSEPORT) are kept, and taken in the order they came', async () => {
  const first = await listening(cleanup);
  const second = await listening(cleanup);
  // Both sent as the first one's address, as an ebb with two workers hands over one socket each.
  await child.add(first.server, HOST, first.port);
  await child.add(second.server, HOST, first.port);
  await closeServer(first.server);
  await closeServer(second.server);
  assert.deepEqual(await child.ask({ op: 'listen', address: HOST, port: first.port }), { port: first.port }, 'the first listen takes the first handle');
  assert.deepEqual(await child.ask({ op: 'listen', address: HOST, port: first.port }), { port: second.port }, 'the next takes the second');
  assert.equal(await greeting(first.port), `served by ${child.process.pid ?? 0}`);
  assert.equal(await greeting(second.port), `served by ${child.process.pid ?? 0}`);
});
