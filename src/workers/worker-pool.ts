import cluster, { type Worker as ClusterWorker } from 'node:cluster';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { childLink, type Link } from './link.ts';
import { PROTOCOL_VERSION, SUPPORTED_VERSIONS, decodeFromWorker, type RequestEnds } from './protocol.ts';
import type { SocketHandle } from '../dataplane/listen-mode.ts';
import type { HandedSocket } from './listening-asks.ts';
import { RemoteDataPlane } from './remote-data-plane.ts';

export interface WorkerPoolOptions {
  readonly count: number;
  /** Absolute path of the worker's entry module (worker-main.ts). */
  readonly entry: string;
  /** Node options for the workers (`--import tsx` when running from source); default: this process's. */
  readonly execArgv?: readonly string[];
  /** Added to this process's environment for the workers. */
  readonly env?: Readonly<Record<string, string>>;
  readonly clock: Clock;
  readonly log: (entry: Record<string, unknown>) => void;
  /** First wait before replacing a worker that died; doubles while workers keep dying soon after they start. */
  readonly restartBackoffMs?: number;
  /** How often workers report changed activity. */
  readonly reportIntervalMs?: number;
  /** Time a worker has to say `ready` after it is forked. */
  readonly readyTimeoutMs?: number;
  /** After a graceful close's deadline, this much more before a worker still running is killed. */
  readonly killGraceMs?: number;
  /** Data planes are named `<idPrefix>-1` … `<idPrefix>-N`. */
  readonly idPrefix?: string;
  /**
   * Listening sockets the ebb before this one handed over at a hot restart (docs/restart.md), by
   * address: worker i gets the i-th of each address's (round the list when it is shorter), so no
   * connection waiting in them is lost. This process keeps its copies, each for its slot's next
   * worker: a replacement listens on the socket its slot had (a fresh bind would collide with it),
   * and a socket whose worker died keeps its queue for the replacement. A copy goes when no listener
   * of the latest snapshot has its address any more, or when the pool closes.
   */
  readonly inherited?: ReadonlyArray<{ readonly address: string; readonly port: number; readonly handles: readonly SocketHandle[] }>;
}

const DEFAULT_RESTART_BACKOFF_MS = 200;
/** The longest wait between replacements, however often workers die. */
export const MAX_RESTART_BACKOFF_MS = 30_000;
/** A worker that dies sooner than this after it was ready counts as a quick death: the next wait doubles. */
const QUICK_DEATH_MS = 10_000;
const DEFAULT_READY_TIMEOUT_MS = 30_000;
const DEFAULT_KILL_GRACE_MS = 2_000;
const DEFAULT_REPORT_INTERVAL_MS = 100;

/** One data plane and the worker process behind it, which may be replaced. */
interface Slot {
  readonly plane: RemoteDataPlane;
  worker: ClusterWorker | null;
  /** When the current worker became ready (monotonic), or null while it starts. */
  readySince: number | null;
  quickDeaths: number;
  restartTimer: TimerHandle | null;
  /** Connections to targets the current (or last) worker had when it was let go. */
  connectionsLost: number;
}

/**
 * The data-plane workers of `ebb serve --workers N`: N processes forked with `node:cluster`, each behind
 * a `RemoteDataPlane` the control plane drives. The scheduling policy is NONE, so this process never
 * accepts a connection itself: it binds each listening socket and the workers take connections from it
 * (or, with reusePort, bind their own). A worker that dies is replaced after a backoff that grows while
 * replacements die quickly, up to `MAX_RESTART_BACKOFF_MS`; its data plane stays the same object.
 * Workers leave when their IPC channel closes, so a control process that dies leaves none behind.
 */
export class WorkerPool {
  readonly dataPlanes: readonly RemoteDataPlane[];
  /** Connections to targets that dead workers last reported open (cut when they died). */
  connectionsLost = 0;
  readonly #options: WorkerPoolOptions;
  readonly #slots: Slot[];
  #restarts = 0;
  /** Replacements begin once every first worker is up; a failure before that fails start. */
  #started = false;
  #requestEnds: RequestEnds = 'raw';
  #telemetryHandedOn = false;
  #stopping = false;
  /** Dead workers are not replaced once the pool is retiring at a hot restart (its sockets are handed over). */
  #retiring = false;
  /** The handed-over sockets this process still holds a copy of, by address. */
  #inherited: Array<{ readonly address: string; readonly port: number; readonly handles: readonly SocketHandle[] }>;

  constructor(options: WorkerPoolOptions) {
    if (!Number.isSafeInteger(options.count) || options.count < 1) throw new Error(`the number of workers must be a whole number, 1 or more; got ${options.count}`);
    this.#options = options;
    this.#inherited = [...(options.inherited ?? [])];
    this.#slots = Array.from({ length: options.count }, (_, i) => ({
      plane: new RemoteDataPlane({
        id: `${options.idPrefix ?? 'worker'}-${i + 1}`,
        clock: options.clock,
        log: options.log,
        reportIntervalMs: options.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS,
        onApply: (snapshot) => this.#keepInheritedOf(snapshot.listeners),
      }),
      worker: null,
      readySince: null,
      quickDeaths: 0,
      restartTimer: null,
      connectionsLost: 0,
    }));
    this.dataPlanes = this.#slots.map((s) => s.plane);
  }

  /**
   * How every worker's request ends travel (protocol.ts): each message while an access log needs them
   * (`raw`), else folded (`digest`). Ignored once the pool's telemetry goes to the next ebb.
   */
  requestEnds(way: RequestEnds): void {
    if (this.#telemetryHandedOn) return;
    this.#tell(way, way === 'raw' ? 'an access log writes a line per request' : 'no access log: each batch sends what the metrics count');
  }

  /** A hot restart: the next ebb reads the workers' telemetry, and may log each request, so they send each from now on. */
  handTelemetryOn(): void {
    this.#telemetryHandedOn = true;
    this.#tell('raw', "a hot restart: the next ebb reads the workers' telemetry");
  }

  #tell(way: RequestEnds, why: string): void {
    if (way === this.#requestEnds) return;
    this.#requestEnds = way;
    this.#options.log({ event: 'workers:request-ends', way, why });
    for (const plane of this.dataPlanes) plane.requestEnds(way);
  }

  /** Workers forked to replace ones that died. */
  get restarts(): number {
    return this.#restarts;
  }

  /** The process ids of the workers running now (for logs and tests). */
  get pids(): number[] {
    return this.#slots.flatMap((s) => (s.worker?.process.pid === undefined ? [] : [s.worker.process.pid]));
  }

  /** Starts every worker and attaches each to its data plane; if one fails, stops those started and says why. */
  async start(): Promise<void> {
    const started = await Promise.allSettled(this.#slots.map((slot) => this.#startWorker(slot)));
    const failures = started.flatMap((r, i) => (r.status === 'rejected' ? [`${this.#slots[i]?.plane.id}: ${(r.reason as Error).message}`] : []));
    if (failures.length > 0) {
      this.destroy();
      await this.#exited();
      throw new Error(`data-plane workers could not start (${failures.join('; ')}); run with --workers 1 to serve from one process meanwhile`);
    }
    this.#started = true;
  }

  /** Graceful: each worker closes its data plane within `deadlineMs`; any still running `killGraceMs` later is killed. */
  async close(deadlineMs: number): Promise<void> {
    this.#stop();
    const grace = this.#options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    const killer = this.#options.clock.setTimer(deadlineMs + grace, () => this.#killAll('SIGKILL', 'the close deadline passed'));
    try {
      for (const slot of this.#slots) if (slot.readySince === null && slot.worker !== null) slot.worker.process.kill('SIGKILL');
      await Promise.all(this.#slots.map((s) => s.plane.close(deadlineMs)));
      await this.#exited();
    } finally {
      killer.cancel();
    }
  }

  /** Forced: every worker is told to drop its sockets and killed. */
  destroy(): void {
    this.#stop();
    for (const slot of this.#slots) slot.plane.destroy();
    this.#killAll('SIGKILL', 'destroyed');
  }

  #stop(): void {
    this.#stopping = true;
    // The workers hold their own copies while they finish; this process's go now.
    this.#keepInheritedOf([]);
    for (const slot of this.#slots) {
      slot.restartTimer?.cancel();
      slot.restartTimer = null;
    }
  }

  #killAll(signal: NodeJS.Signals, why: string): void {
    for (const slot of this.#slots) {
      const proc = slot.worker?.process;
      if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
        this.#options.log({ event: 'worker:kill', level: signal === 'SIGKILL' ? 'warn' : 'info', worker: slot.plane.id, pid: proc.pid, signal, reason: why });
        proc.kill(signal);
      }
    }
  }

  /** Resolves when no worker process is left. */
  async #exited(): Promise<void> {
    await Promise.all(
      this.#slots.map((slot) => {
        const proc = slot.worker?.process;
        if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
        return new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      }),
    );
  }

  #fork(): ClusterWorker {
    // Read by node:cluster once, at the first setupPrimary; set here so no caller can forget it.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: this.#options.entry, execArgv: [...(this.#options.execArgv ?? process.execArgv)] });
    return cluster.fork({ ...this.#options.env });
  }

  /**
   * Stops replacing workers that die: the pool is retiring at a hot restart, and a replacement would
   * bind sockets nobody handed over (closed, with what waits in them, when the pool closes).
   */
  retire(): void {
    this.#retiring = true;
  }

  /** The handed-over sockets for a worker of slot `i`: one per address, the i-th of its list, round it. */
  #inheritedFor(i: number): HandedSocket[] {
    return this.#inherited.flatMap((g) => {
      const handle = g.handles[i % Math.max(1, g.handles.length)];
      return handle === undefined ? [] : [{ address: g.address, port: g.port, handle }];
    });
  }

  /** Closes the copies of handed-over sockets whose address no listener of `listeners` has: nobody would accept on them. */
  #keepInheritedOf(listeners: ReadonlyArray<{ readonly address: string; readonly port: number }>): void {
    if (this.#inherited.length === 0) return;
    const wanted = new Set(listeners.map((l) => `${l.address}:${l.port}`));
    this.#inherited = this.#inherited.filter((g) => {
      if (wanted.has(`${g.address}:${g.port}`)) return true;
      for (const handle of g.handles) handle.close();
      return false;
    });
  }

  /** Forks a worker for the slot, waits for its `ready`, attaches it with its slot's handed-over sockets; rejects (the worker killed) if it does not become ready. */
  #startWorker(slot: Slot): Promise<void> {
    const inherited = this.#inheritedFor(this.#slots.indexOf(slot));
    let worker: ClusterWorker;
    try {
      worker = this.#fork();
    } catch (error) {
      // Some spawn failures throw rather than emit 'error' (EPERM, EINVAL).
      return Promise.reject(new Error(`the worker process could not be started: ${(error as Error).message}`));
    }
    // A fork that fails (EMFILE, EAGAIN, ENOENT) emits 'error' and never 'exit'; cluster re-emits it on the worker, where nobody listening would end this process.
    worker.on('error', (error: Error) => this.#onWorkerError(slot, worker, error));
    const link = childLink(worker);
    slot.worker = worker;
    slot.readySince = null;
    slot.connectionsLost = 0;
    const pid = worker.process.pid;
    this.#options.log({ event: 'worker:start', worker: slot.plane.id, pid });
    worker.process.once('exit', (code, signal) => this.#onExit(slot, worker, code, signal));

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (why: string): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        link.close();
        if (worker.process.exitCode === null && worker.process.signalCode === null) worker.process.kill('SIGKILL');
        reject(new Error(why));
      };
      const timer = this.#options.clock.setTimer(this.#options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS, () =>
        fail(`worker ${pid} did not say it was ready within ${this.#options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS} ms`),
      );
      link.onClose((reason) => {
        if (!settled) fail(`worker ${pid} ended before it was ready: ${reason}`);
        else this.#onLinkClosed(slot, worker, reason);
      });
      link.onMessage((raw) => {
        if (settled) return;
        const why = readyProblem(raw);
        if (why !== null) {
          fail(`worker ${pid}: ${why}`);
          return;
        }
        if (this.#stopping) {
          fail('the pool is stopping');
          return;
        }
        settled = true;
        timer.cancel();
        slot.readySince = this.#options.clock.now();
        this.#attach(slot, link, inherited);
        resolve();
      });
    });
  }

  #attach(slot: Slot, link: Link, inherited: readonly HandedSocket[]): void {
    void slot.plane.attach(link, inherited);
    this.#options.log({ event: 'worker:ready', worker: slot.plane.id, pid: slot.worker?.process.pid, ...(inherited.length > 0 && { inheritedSockets: inherited.length }) });
  }

  /** The link of a worker that was ready closed: its data plane lets it go; a worker still running is past reach, so it is killed. */
  #onLinkClosed(slot: Slot, worker: ClusterWorker, reason: string): void {
    if (slot.worker !== worker) return;
    const { connectionsLost } = slot.plane.detach(reason);
    this.connectionsLost += connectionsLost;
    slot.connectionsLost += connectionsLost;
    if (!this.#stopping && worker.process.exitCode === null && worker.process.signalCode === null) worker.process.kill('SIGKILL');
  }

  #onWorkerError(slot: Slot, worker: ClusterWorker, error: Error): void {
    this.#options.log({ event: 'worker:error', level: 'error', worker: slot.plane.id, pid: worker.process.pid, error: error.message });
    // Without a pid the process never started: no 'exit' will come, so this is its exit. Otherwise (an IPC send failing) its exit or link close follows.
    if (worker.process.pid === undefined) this.#onExit(slot, worker, worker.process.exitCode, null);
  }

  #onExit(slot: Slot, worker: ClusterWorker, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.worker !== worker) return;
    const readySince = slot.readySince;
    if (readySince !== null) this.#onLinkClosed(slot, worker, signal !== null ? `killed by ${signal}` : `exited with code ${code}`);
    slot.worker = null;
    slot.readySince = null;
    const expected = this.#stopping && (code === 0 || signal !== null);
    this.#options.log({
      event: 'worker:exit',
      level: expected ? 'info' : 'error',
      worker: slot.plane.id,
      pid: worker.process.pid,
      code,
      signal,
      connectionsLost: slot.connectionsLost,
    });
    // Before start() is done, a worker that never got ready fails start; one that was attached is replaced like any other.
    if (this.#stopping || this.#retiring || (!this.#started && readySince === null)) return;
    const livedMs = readySince === null ? 0 : this.#options.clock.now() - readySince;
    slot.quickDeaths = livedMs < QUICK_DEATH_MS ? Math.min(slot.quickDeaths + 1, 32) : 0;
    this.#scheduleRestart(slot);
  }

  #scheduleRestart(slot: Slot): void {
    const base = this.#options.restartBackoffMs ?? DEFAULT_RESTART_BACKOFF_MS;
    const waitMs = Math.min(base * 2 ** Math.max(0, slot.quickDeaths - 1), MAX_RESTART_BACKOFF_MS);
    this.#options.log({ event: 'worker:restart-scheduled', worker: slot.plane.id, inMs: waitMs });
    slot.restartTimer = this.#options.clock.setTimer(waitMs, () => {
      slot.restartTimer = null;
      if (this.#stopping) return;
      this.#restarts++;
      this.#startWorker(slot).catch((error: unknown) => {
        this.#options.log({ event: 'worker:start-failed', level: 'error', worker: slot.plane.id, error: (error as Error).message });
        // Its exit schedules the next try, with a longer wait; a fork that threw has no exit, so it is scheduled here.
        if (this.#stopping || slot.worker !== null || slot.restartTimer !== null) return;
        slot.quickDeaths = Math.min(slot.quickDeaths + 1, 32);
        this.#scheduleRestart(slot);
      });
    });
  }
}

/** Why a worker's first message is not a `ready` this side can talk to, or null if it is. */
function readyProblem(raw: unknown): string | null {
  let message;
  try {
    message = decodeFromWorker(raw);
  } catch (error) {
    return `its first message could not be read: ${(error as Error).message}`;
  }
  if (message.type !== 'ready') return `its first message was '${message.type}', not 'ready'`;
  if (!message.protocols.includes(PROTOCOL_VERSION)) {
    return `it speaks protocol versions ${message.protocols.join(', ')} and this process speaks ${SUPPORTED_VERSIONS.join(', ')}; the worker's files are from another ebb version (reinstall, then restart ebb)`;
  }
  return null;
}
