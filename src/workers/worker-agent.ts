import type net from 'node:net';
import { InheritedSockets, type SocketHandle } from '../dataplane/listen-mode.ts';
import type { DataPlane } from '../domain/data-plane-port.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import type { Link } from './link.ts';
import { decodeSnapshot, decodeToWorker, ProtocolError, SUPPORTED_VERSIONS } from './protocol.ts';
import type { FromWorker, ToWorker, WireActivity } from './protocol.ts';
import { plain, TelemetryForwarder } from './telemetry-forwarder.ts';

/**
 * What the agent drives: a data plane (`HttpDataPlane`) and the keys it keeps counts for; its
 * listening sockets, when it can say them (a hot restart with workers hands them over), and how its
 * close ended.
 */
export type AgentDataPlane = DataPlane & {
  readonly entries: ReadonlyMap<string, unknown>;
  listeningSockets?(): ReadonlyArray<{ readonly address: string; readonly port: number; readonly server: net.Server }>;
  readonly closeOutcome?: { readonly connectionsCut: number } | null;
  /** Requests and tunnels completed on every key since it started (a counter). */
  completedWork?(): number;
};

export interface WorkerAgentOptions {
  readonly link: Link;
  /**
   * Makes the data plane once the control side has said its id (`hello`); `log` forwards a line to the
   * control side; `inherited`: the sockets the control side handed over before `hello` (a hot restart).
   */
  readonly createDataPlane: (id: string, log: (line: object) => void, inherited: InheritedSockets) => AgentDataPlane;
  readonly clock: Clock;
  /**
   * Called once, when the agent is done: after `closed` is handed to the link (code 0), after
   * `destroy` (0), or after the link closed and the data plane with it. The process then exits.
   */
  readonly onExit: (code: number) => void;
  /** Said in `ready`; default this process's. */
  readonly pid?: number;
  /** Lines that cannot go to the control side (the link is closed); default none. */
  readonly localLog?: (line: object) => void;
  /**
   * When the link closes without a `close` (the control process died): the listeners stop at once and
   * what is in flight gets this long to finish. Default 5 s.
   */
  readonly orphanDeadlineMs?: number;
  /** Answers held while the link refuses them (its peer does not read), past which the link is given up. Default 10,000. */
  readonly maxOutbox?: number;
}

/** How often answers the link refused are offered again. */
const RETRY_MS = 10;
/** Keys per `activity` message, so one report stays a small message however many targets there are. */
const MAX_KEYS_PER_REPORT = 1000;
/** How long a finished agent waits for its held answers to go before it exits anyway. */
const OUTBOX_GRACE_MS = 2000;

/**
 * The worker's side of the conversation (protocol.ts), testable without a process: it answers the
 * control side's messages by driving its data plane, and reports the data plane's activity.
 *
 * Activity: `idle` at once when the data plane reports a key idle; the keys whose counts changed at
 * most every `reportIntervalMs` (one timer, which compares every key's counts with those last sent);
 * with each `applied`, every key with work and every key changed since the last report, so the
 * control side's counts are exact at the moment it learns the snapshot is in force.
 *
 * Answers (`applied`, `terminated`, `closed`, `idle`) are never dropped: one the link refuses waits, in
 * order, and is offered again every few ms; past `maxOutbox` waiting, the control side is taken for
 * gone and the link is closed. Telemetry and log lines are dropped when the link refuses them.
 */
export class WorkerAgent {
  readonly #link: Link;
  readonly #clock: Clock;
  readonly #options: WorkerAgentOptions;
  readonly #maxOutbox: number;
  readonly #forwarder: TelemetryForwarder;
  #dataPlane: AgentDataPlane | null = null;
  #reportIntervalMs = 0;
  #reportTimer: TimerHandle | null = null;
  /** The counts last sent for each key the data plane keeps. */
  readonly #reported = new Map<string, WireActivity>();
  readonly #outbox: FromWorker[] = [];
  #retryTimer: TimerHandle | null = null;
  #closing: Promise<void> | null = null;
  #finished = false;
  #linkClosed = false;
  /** Sockets handed over before `hello`; those no listener took are closed once the first snapshot is applied. */
  readonly #inherited = new InheritedSockets();
  #firstApplied = false;

  constructor(options: WorkerAgentOptions) {
    this.#options = options;
    this.#link = options.link;
    this.#clock = options.clock;
    this.#maxOutbox = options.maxOutbox ?? 10_000;
    this.#forwarder = new TelemetryForwarder({ send: (m) => this.#link.send(m), clock: options.clock });
    this.#link.onMessage((m, handle) => this.#receive(m, handle));
    this.#link.onClose((reason) => this.#onLinkClosed(reason));
    this.#post({ type: 'ready', protocols: SUPPORTED_VERSIONS, pid: options.pid ?? process.pid });
  }

  /** The data plane, once `hello` has made it. */
  get dataPlane(): AgentDataPlane | null {
    return this.#dataPlane;
  }

  /**
   * Graceful stop (a `close` message, or SIGTERM to the worker): the data plane closes with
   * `deadlineMs`, the last activity and telemetry are sent. A second call shares the first.
   */
  close(deadlineMs: number): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopReports();
      await this.#dataPlane?.close(deadlineMs);
      this.#report(true);
      this.#forwarder.stop();
    })();
    return this.#closing;
  }

  /** `close`, then done (SIGTERM to the worker): the agent exits once the data plane has closed. */
  stop(deadlineMs: number): Promise<void> {
    return this.close(deadlineMs).then(() => this.#finish(0));
  }

  #receive(value: unknown, handle?: unknown): void {
    let message: ToWorker;
    try {
      message = decodeToWorker(value);
    } catch (error) {
      const why = error instanceof ProtocolError ? error.message : String(error);
      this.#fail(`cannot read a message from the control side: ${why}`);
      return;
    }
    if (this.#finished && message.type !== 'close') return;
    switch (message.type) {
      case 'hello':
        this.#hello(message);
        return;
      case 'apply':
        this.#apply(message);
        return;
      case 'terminate':
        this.#terminate(message);
        return;
      case 'close':
        void this.close(message.deadlineMs).then(() => {
          const connectionsCut = this.#dataPlane?.closeOutcome?.connectionsCut;
          this.#post({ type: 'closed', seq: message.seq, ...(connectionsCut !== undefined && { connectionsCut }) });
          this.#finish(0);
        });
        return;
      case 'socket':
        if (this.#dataPlane !== null) {
          (handle as SocketHandle | undefined)?.close();
          return this.#fail("a 'socket' after 'hello'; sockets are handed over before it");
        }
        if (handle === undefined || handle === null) return this.#fail(`a 'socket' for ${message.address}:${message.port} came without its handle`);
        this.#inherited.add(message.address, message.port, handle as SocketHandle);
        return;
      case 'listening':
        void this.#sendListening(message.seq);
        return;
      case 'telemetry':
        this.#forwarder.requestEnds(message.requestEnds);
        // Said back, so the control side's log shows each worker's way (and tests can see it was taken).
        this.#log({ event: 'worker:request-ends', way: message.requestEnds });
        return;
      case 'destroy':
        this.#stopReports();
        this.#dataPlane?.destroy();
        this.#forwarder.stop();
        this.#finish(0, false);
        return;
    }
  }

  #hello(message: Extract<ToWorker, { type: 'hello' }>): void {
    if (this.#dataPlane !== null) return this.#fail('a second hello; the control side says hello once per worker');
    if (!SUPPORTED_VERSIONS.includes(message.protocol)) {
      return this.#fail(`the control side chose protocol ${message.protocol}; this worker speaks ${SUPPORTED_VERSIONS.join(', ')} (run ebb's workers from the same installation as ebb serve)`);
    }
    const dataPlane = this.#options.createDataPlane(message.dataPlaneId, (line) => this.#log(line), this.#inherited);
    this.#dataPlane = dataPlane;
    dataPlane.onIdle((key) => {
      const activity = this.#wire(dataPlane, key);
      this.#reported.set(key, activity);
      this.#post({ type: 'idle', activity });
    });
    this.#forwarder.start();
    this.#reportIntervalMs = Math.max(10, message.reportIntervalMs);
    this.#scheduleReport();
  }

  #apply(message: Extract<ToWorker, { type: 'apply' }>): void {
    const dataPlane = this.#needDataPlane('apply');
    if (dataPlane === null) return;
    const { seq, snapshot } = message;
    dataPlane.apply(decodeSnapshot(snapshot)).then(
      (result) => {
        this.#afterFirstApply();
        this.#post({ type: 'applied', seq, version: snapshot.version, listenerErrors: result.listenerErrors, activity: this.#appliedActivity(dataPlane), ...completedOf(dataPlane) });
      },
      (error: unknown) => {
        // A handed-over socket left unclaimed would take connections nobody accepts: closed here too.
        this.#afterFirstApply();
        // The routes are in force (they are swapped before anything can fail); the listeners are not known to be.
        const text = `the worker could not apply snapshot ${snapshot.version}: ${String(error)}`;
        this.#log({ level: 'error', msg: 'apply failed', error: String(error) });
        const listenerErrors = snapshot.listeners.map((l) => ({ arn: l.arn, code: 'InternalFailure', message: text }));
        this.#post({ type: 'applied', seq, version: snapshot.version, listenerErrors, activity: this.#appliedActivity(dataPlane), ...completedOf(dataPlane) });
      },
    );
  }

  /** A handed-over socket no listener of the first snapshot took (its listener was deleted meanwhile) is closed. */
  #afterFirstApply(): void {
    if (this.#firstApplied) return;
    this.#firstApplied = true;
    const unclaimed = this.#inherited.closeUnclaimed();
    if (unclaimed.length > 0) this.#log({ level: 'info', msg: 'handed-over sockets no listener took, closed', addresses: unclaimed });
  }

  /** Each listening socket with its handle, then how many: the ebb this worker serves is handing them over (docs/restart.md). */
  async #sendListening(seq: number): Promise<void> {
    const sockets = this.#dataPlane?.listeningSockets?.() ?? [];
    let count = 0;
    for (const s of sockets) {
      const handle = (s.server as unknown as { _handle: unknown })._handle;
      if (handle === null || handle === undefined) continue;
      if (await this.#link.sendHandle({ type: 'socket', seq, address: s.address, port: s.port }, handle)) count++;
    }
    this.#post({ type: 'listening', seq, count });
  }

  #terminate(message: Extract<ToWorker, { type: 'terminate' }>): void {
    const dataPlane = this.#needDataPlane('terminate');
    if (dataPlane === null) return;
    dataPlane.terminate(message.key).then(
      (result) => this.#post({ type: 'terminated', seq: message.seq, result }),
      (error: unknown) => {
        this.#log({ level: 'error', msg: 'terminate failed', key: message.key, error: String(error) });
        this.#post({ type: 'terminated', seq: message.seq, result: { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 } });
      },
    );
  }

  #needDataPlane(what: string): AgentDataPlane | null {
    if (this.#dataPlane === null) this.#fail(`'${what}' before 'hello'; the control side says hello first`);
    return this.#dataPlane;
  }

  #wire(dataPlane: AgentDataPlane, key: string): WireActivity {
    const a = dataPlane.activity(key);
    return { key, requests: a.requests, tunnels: a.tunnels, completed: a.completed, connections: a.connections ?? 0 };
  }

  /** Every key with work now, and every key whose counts changed since they were last sent. */
  #appliedActivity(dataPlane: AgentDataPlane): WireActivity[] {
    const out: WireActivity[] = [];
    for (const key of dataPlane.entries.keys()) {
      const a = this.#wire(dataPlane, key);
      if (a.requests > 0 || a.tunnels > 0 || a.connections > 0 || !sameCounts(a, this.#reported.get(key))) {
        out.push(a);
        this.#reported.set(key, a);
      }
    }
    return out;
  }

  #scheduleReport(): void {
    if (this.#closing !== null || this.#finished) return;
    this.#reportTimer = this.#clock.setTimer(this.#reportIntervalMs, () => {
      this.#reportTimer = null;
      this.#report(false);
      this.#scheduleReport();
    });
  }

  #stopReports(): void {
    this.#reportTimer?.cancel();
    this.#reportTimer = null;
  }

  /**
   * Sends the keys whose counts changed. Skipped while answers wait (the keys stay changed, so the next
   * report carries them); `final` (at close) sends anyway, behind them.
   */
  #report(final: boolean): void {
    const dataPlane = this.#dataPlane;
    if (dataPlane === null || (!final && this.#outbox.length > 0)) return;
    const keys = dataPlane.entries;
    for (const key of this.#reported.keys()) if (!keys.has(key)) this.#reported.delete(key);
    let changed: WireActivity[] = [];
    for (const key of keys.keys()) {
      const a = this.#wire(dataPlane, key);
      if (sameCounts(a, this.#reported.get(key))) continue;
      changed.push(a);
      if (changed.length >= MAX_KEYS_PER_REPORT) {
        if (!this.#sendReport(changed, final)) return;
        changed = [];
      }
    }
    if (changed.length > 0) this.#sendReport(changed, final);
  }

  #sendReport(activity: WireActivity[], final: boolean): boolean {
    const dataPlane = this.#dataPlane;
    const message: FromWorker = { type: 'activity', activity, ...(dataPlane === null ? {} : completedOf(dataPlane)) };
    if (final) this.#post(message);
    else if (!this.#link.send(message)) return false;
    for (const a of activity) this.#reported.set(a.key, a);
    return true;
  }

  /** An answer: sent now, or held in order until the link takes it. */
  #post(message: FromWorker): void {
    if (this.#linkClosed) return;
    if (this.#outbox.length === 0 && this.#link.send(message)) return;
    if (this.#outbox.length >= this.#maxOutbox) {
      this.#fail(`the control side has not read the last ${this.#maxOutbox} answers`);
      return;
    }
    this.#outbox.push(message);
    this.#retryTimer ??= this.#clock.setTimer(RETRY_MS, () => this.#flushOutbox());
  }

  #flushOutbox(): void {
    this.#retryTimer = null;
    while (this.#outbox.length > 0 && !this.#linkClosed) {
      if (!this.#link.send(this.#outbox[0] as FromWorker)) {
        this.#retryTimer = this.#clock.setTimer(RETRY_MS, () => this.#flushOutbox());
        return;
      }
      this.#outbox.shift();
    }
  }

  #log(line: object): void {
    // A line the link refuses goes to the worker's own stderr rather than nowhere.
    if (this.#linkClosed || !this.#link.send({ type: 'log', line: plain(line) as Record<string, unknown> })) this.#options.localLog?.(line);
  }

  /** The conversation cannot go on: said where it can be, and the link closed (which stops the worker). */
  #fail(reason: string): void {
    const line = { level: 'error', msg: 'worker: closing the link to the control side', reason };
    this.#options.localLog?.(line);
    if (!this.#linkClosed) this.#link.send({ type: 'log', line });
    this.#link.close();
  }

  #onLinkClosed(reason: string): void {
    this.#linkClosed = true;
    this.#outbox.length = 0;
    this.#retryTimer?.cancel();
    if (this.#finished) return;
    const deadlineMs = this.#options.orphanDeadlineMs ?? 5000;
    this.#options.localLog?.({ level: 'warn', msg: 'worker: the link to the control side closed; stopping', reason, deadlineMs });
    void this.close(deadlineMs).then(() => this.#finish(0));
  }

  /** Done: once the held answers have gone (or could not, for `OUTBOX_GRACE_MS`), `onExit`. */
  #finish(code: number, waitForAnswers = true): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#stopReports();
    if (!waitForAnswers || this.#outbox.length === 0 || this.#linkClosed) {
      // After the other continuations of the same close (a `closed` answer to post), not before.
      queueMicrotask(() => this.#options.onExit(code));
      return;
    }
    const startedAt = this.#clock.now();
    const check = (): void => {
      if (this.#outbox.length === 0 || this.#linkClosed || this.#clock.now() - startedAt >= OUTBOX_GRACE_MS) this.#options.onExit(code);
      else this.#clock.setTimer(RETRY_MS, check);
    };
    this.#clock.setTimer(RETRY_MS, check);
  }
}

function sameCounts(a: WireActivity, b: WireActivity | undefined): boolean {
  return b !== undefined && a.requests === b.requests && a.tunnels === b.tunnels && a.completed === b.completed && a.connections === b.connections;
}

/** The data plane's completed counter, for `applied` and `activity`, when it keeps one. */
function completedOf(dataPlane: AgentDataPlane): { completed?: number } {
  const completed = dataPlane.completedWork?.();
  return completed === undefined ? {} : { completed };
}
