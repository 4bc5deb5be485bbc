import { spawn, type ChildProcess } from 'node:child_process';
import type net from 'node:net';

/**
 * More than one accept per turn of the event loop for a listening socket: copies of its descriptor,
 * each watched by libuv on its own, all accepting from the one queue into the one server.
 *
 * Why: libuv accepts one connection per turn for each listening descriptor (`uv__server_io` in its
 * src/unix/stream.c calls `accept` once and returns; the same in 1.46, which Node 20 ships, and 1.52,
 * which Node 24 ships), and each turn also serves every connection already open. When many clients
 * connect at once (a benchmark's start, clients reconnecting after a failover), the last ones wait in
 * the kernel's accept queue while the turns grow longer: 256 connections measured up to 0.7 s there
 * (docs/benchmarks.md). HAProxy takes several per turn (`tune.maxaccept`). With `count` descriptors,
 * epoll reports each of them while the queue holds a connection, so a turn takes up to `count`.
 *
 * How: Node cannot duplicate a descriptor in its own process, but it duplicates one it passes to
 * another (SCM_RIGHTS, as the cluster module does). A short-lived helper process is sent the server's
 * handle `count - 1` times and sends each back; every copy that returns is told to listen (the socket
 * already does: that only lets libuv watch it) and made to deliver to the server itself, through the
 * handle's owner, which Node's `onconnection` reads to find its server. So the server's own checks
 * apply to every connection whatever copy accepted it: `maxConnections` and its `'drop'`, its count,
 * its `'connection'` event. Copies are not separate sockets (unlike SO_REUSEPORT): closing one leaves
 * the queue to the others, and a hot restart hands over the server's own handle only.
 *
 * The copies stop when the server does: `server.close` is wrapped, since every path that stops
 * accepting (a listener closed, destroyed, or retired at a hot restart) goes through it, and a copy
 * left open would go on accepting for a server that no longer listens.
 *
 * Anything missing (the helper fails, Node's handle has no owner to redirect) leaves the server as it
 * was, with its one descriptor, and says why through `onProblem`.
 */

/**
 * Descriptors per listening socket in ebb's own data plane (`ebb serve --workers 1`). Measured with
 * wrk opening 256 connections at once: with 4, a queue of 64 still waited 0.13 s in one run of ten;
 * with 16, none was seen in five. Each descriptor beyond the first costs an `accept` that finds the
 * queue empty whenever a turn has fewer connections waiting than descriptors.
 */
export const ACCEPT_COPIES = 8;
/** How long the helper has to send the copies back. */
export const HELPER_TIMEOUT_MS = 10_000;
/** How long the helper has to exit once told it is done, before it is killed. */
const EXIT_GRACE_MS = 2_000;

/** The helper: sends every handle it gets back, closing its own copy once sent; `done`, or ebb gone, ends it. */
export const HELPER_SOURCE =
  "process.on('message',(m,h)=>{if(m==='done')process.exit(0);process.send(m,h,undefined,()=>h.close());});process.on('disconnect',()=>process.exit(0));";

export interface AcceptCopiesOptions {
  /** Descriptors in all, the server's own included (1: none added). */
  readonly count: number;
  /** Why no copies (or fewer) were made. */
  readonly onProblem: (reason: string) => void;
  /** Starts the helper (tests give one that fails); default: this node running `HELPER_SOURCE`. */
  readonly spawnHelper?: () => ChildProcess;
  /** Told of every copy made (+1) and of those closed (-n), for the descriptor budget. */
  readonly onDescriptors?: (delta: number) => void;
  readonly timeoutMs?: number;
}

/** The part of Node's TCP handle (`tcp_wrap`) the copies use. */
interface ListenHandle {
  listen(backlog: number): number;
  close(): void;
  onconnection: unknown;
  [key: symbol]: unknown;
}

export interface AcceptCopies {
  /** Resolves with how many copies were added once the helper has exited (0 when none could be). */
  readonly ready: Promise<number>;
  /** The pid of the helper while it runs, else null. */
  readonly helperPid: () => number | null;
}

function startHelper(): ChildProcess {
  // Without NODE_OPTIONS: an `--inspect` or `--import` meant for ebb has nothing to do in the helper.
  return spawn(process.execPath, ['-e', HELPER_SOURCE], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } });
}

/** Adds `count - 1` copies of `server`'s listening descriptor; call once the server listens. */
export function addAcceptCopies(server: net.Server, options: AcceptCopiesOptions): AcceptCopies {
  const handle = (server as unknown as { _handle?: ListenHandle | null })._handle;
  const wanted = options.count - 1;
  const none = (reason: string | null): AcceptCopies => {
    if (reason !== null) options.onProblem(reason);
    return { ready: Promise.resolve(0), helperPid: () => null };
  };
  if (wanted <= 0) return none(null);
  if (handle == null || handle.constructor?.name !== 'TCP') return none('the server has no TCP handle to copy');
  const owner = Object.getOwnPropertySymbols(handle).find((s) => handle[s] === server);
  if (owner === undefined) return none("this Node's listening handle does not name its server");

  let child: ChildProcess;
  try {
    child = (options.spawnHelper ?? startHelper)();
  } catch (error) {
    return none(`the helper that copies the descriptor could not start: ${(error as Error).message}`);
  }
  // At the descriptor limit (EMFILE) Node returns a child without its channel, and so without `send`.
  if (typeof child.send !== 'function' || !child.connected) {
    if (child.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
    return none('the helper that copies the descriptor could not start with a channel (is the descriptor limit reached?)');
  }
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const copies: ListenHandle[] = [];
  let stopped = false;
  let received = 0;
  let settled = false;
  const close = server.close.bind(server);
  server.close = ((callback?: (err?: Error) => void) => {
    stopped = true;
    const closing = copies.splice(0);
    for (const copy of closing) copy.close();
    if (closing.length > 0) options.onDescriptors?.(-closing.length);
    // A helper still at work holds copies too: it goes now, so nothing holds the port after the server.
    if (!settled && !gone()) child.kill('SIGKILL');
    return close(callback);
  }) as typeof server.close;

  const ready = new Promise<number>((resolve) => {
    const finish = (problem: string | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // A server closed meanwhile wants no copies: what failed then (a send of its closed handle) is no problem.
      if (problem !== null && !stopped) options.onProblem(problem);
      // Done once the helper is gone: it exits when its channel closes, or is killed (at once after a problem).
      if (gone()) return resolve(copies.length);
      const kill = setTimeout(() => child.kill('SIGKILL'), problem === null ? EXIT_GRACE_MS : 0);
      kill.unref();
      // Nothing of it keeps ebb's process alive any more: it is going.
      child.unref();
      child.once('exit', () => {
        clearTimeout(kill);
        resolve(copies.length);
      });
    };
    const timeoutMs = options.timeoutMs ?? HELPER_TIMEOUT_MS;
    const timer = setTimeout(() => finish(`the helper sent ${received} of ${wanted} copies in ${timeoutMs} ms`), timeoutMs);
    timer.unref();
    // Stays attached for the helper's life: a copy that comes after the end is closed here, and Node
    // cannot take a message after the channel closed while no listener waits for it (it throws).
    const onMessage = (_message: unknown, copy: unknown): void => {
      received++;
      const h = copy as ListenHandle | undefined;
      if (h !== undefined && h !== null && typeof h.listen === 'function') {
        if (stopped || settled) h.close();
        else adopt(h);
      }
      if (received === wanted && !settled) {
        if (child.connected) child.send('done');
        finish(copies.length < wanted && !stopped ? `${wanted - copies.length} of ${wanted} copies could not listen` : null);
      }
    };
    const adopt = (h: ListenHandle): void => {
      h[owner] = server;
      h.onconnection = handle.onconnection;
      if (h.listen(511) === 0) {
        copies.push(h);
        options.onDescriptors?.(1);
      } else h.close();
    };
    child.on('message', onMessage);
    child.on('error', (error) => finish(`the helper that copies the descriptor failed: ${error.message}`));
    child.once('exit', (code, signal) => {
      if (received < wanted) finish(`the helper exited (${signal ?? `code ${code ?? 'unknown'}`}) after ${received} of ${wanted} copies`);
    });
    try {
      for (let i = 0; i < wanted; i++) child.send(i, handle as unknown as net.Server);
    } catch (error) {
      finish(`the handle could not be sent to the helper: ${(error as Error).message}`);
    }
  });
  return { ready, helperPid: () => (gone() ? null : (child.pid ?? null)) };
}

/** What a data plane asks of its listening sockets' copies (`ListenBinding.acceptCopies`). */
export interface AcceptCopiesBinding {
  readonly count: number;
  readonly log: (line: Record<string, unknown>) => void;
  /** The copies' descriptors, for the connection limit's budget. */
  readonly holdDescriptors: (delta: number) => void;
}

/** The copies being made, one listening socket after another: each helper is a node process. */
let copying: Promise<unknown> = Promise.resolve();

/** Gives a socket that has just started listening its copies, after those asked for before it; logs the outcome. */
export function copyListeningSocket(server: net.Server, binding: AcceptCopiesBinding, address: string, port: number): void {
  const onProblem = (reason: string): void => binding.log({ level: 'warn', msg: 'listening socket left with one accept per turn', address, port, reason });
  const copy = async (): Promise<void> => {
    if (!server.listening) return;
    const made = await addAcceptCopies(server, { count: binding.count, onProblem, onDescriptors: binding.holdDescriptors }).ready;
    if (made > 0) binding.log({ level: 'info', msg: 'listening socket copied', address, port, descriptors: made + 1 });
  };
  copying = copying.then(copy).catch((error: unknown) => onProblem(String(error)));
}
