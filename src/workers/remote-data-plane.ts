import type { ApplyResult, DataPlane, TargetActivity, TerminateResult } from '../domain/data-plane-port.ts';
import type { RoutingSnapshot } from '../domain/routing-snapshot.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import type { SocketHandle } from '../dataplane/listen-mode.ts';
import type { Link } from './link.ts';
import { LISTENING_TIMEOUT_MS, ListeningAsks, type HandedSocket } from './listening-asks.ts';
import { AnswerTimers } from './answer-timers.ts';
import { CompletedBaselines } from './completed-baselines.ts';
import { TelemetryRelay } from './telemetry-relay.ts';
import { MAX_KEYS, WorkerCounts } from './worker-counts.ts';
import { PROTOCOL_VERSION, ProtocolError, decodeFromWorker, encodeSnapshot, withHealthyAged, type FromWorker, type RequestEnds, type WireActivity } from './protocol.ts';

export interface RemoteDataPlaneOptions {
  readonly id: string;
  readonly clock: Clock;
  readonly log: (entry: Record<string, unknown>) => void;
  /** How often the worker reports changed activity (sent in `hello`). */
  readonly reportIntervalMs: number;
  /** An `apply` or `terminate` unanswered this long means the worker is stuck: its link is closed so it is replaced. */
  readonly answerTimeoutMs?: number;
  /**
   * The ebb this one replaces at a hot restart (docs/restart.md): its data plane is still finishing
   * work, so until it attaches (or `stopExpecting`) every count here is `unsettled`; it is sent the
   * routes of each snapshot but no listeners (it opens none: it is closing), and `terminate` still
   * reaches it while it closes.
   */
  readonly predecessor?: boolean;
  /** Told each snapshot `apply` is given (the pool keeps the handed-over sockets of its listeners). */
  readonly onApply?: (snapshot: RoutingSnapshot) => void;
}

/** `apply` and `terminate` calls waiting for their answer; past this the worker is taken as stuck. */
export const MAX_PENDING_CALLS = 256;
const DEFAULT_ANSWER_TIMEOUT_MS = 30_000;
/** A snapshot the link refused (its queue full) is tried again this often, until the answer timeout gives the worker up. */
export const APPLY_RETRY_MS = 100;
const NO_CUT: TerminateResult = { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 };

interface PendingApply {
  readonly seq: number;
  readonly resolve: (result: ApplyResult) => void;
}

/**
 * A data plane in another process, seen through its link (protocol.ts). One slot: the worker behind it
 * may die and be replaced (`detach`, then `attach`), and the control plane keeps the same `DataPlane`.
 *
 * Its counts are the worker's reports; while a snapshot it was sent is unconfirmed they may be behind,
 * so `activity` says `unsettled` and remembers the key, and once confirmed the onIdle listeners are told
 * of those keys so the drains that asked look again. `completed` is a counter that never goes down,
 * across workers too: each key keeps what earlier workers completed.
 */
export class RemoteDataPlane implements DataPlane {
  readonly id: string;
  readonly #clock: Clock;
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #reportIntervalMs: number;
  readonly #answerTimeoutMs: number;
  readonly #counts = new WorkerCounts();
  readonly #idleListeners: Array<(key: string) => void> = [];
  /** Keys asked about while unsettled; told to the idle listeners when settled. */
  readonly #askedWhileUnsettled = new Set<string>();
  #askedOverflow = false;
  #link: Link | null = null;
  #seq = 0;
  #latest: RoutingSnapshot | null = null;
  /** When `#latest` was given (this process's monotonic clock): its `healthyForMs` were measured then. */
  #latestAt = 0;
  /** `#latest` is newer than what the current worker was sent; it goes when the apply outstanding is answered. */
  #held = false;
  #retryTimer: TimerHandle | null = null;
  /** Set when the link first refuses the held snapshot; gives the worker up if it stays refused. */
  #refusedTimer: TimerHandle | null = null;
  /** The newest `apply` seq sent to the current worker, and the newest it confirmed. */
  #sentApplySeq = 0;
  #confirmedApplySeq = 0;
  #applies: PendingApply[] = [];
  readonly #terminates = new Map<number, (result: TerminateResult) => void>();
  readonly #closes = new Map<number, () => void>();
  readonly #answerTimers: AnswerTimers;
  #stopped = false;
  readonly #predecessor: boolean;
  readonly #onApply: ((snapshot: RoutingSnapshot) => void) | null;
  /** A predecessor that has not attached yet: its work is unknown, so nothing is settled. */
  #expecting: boolean;
  /** `terminate` calls made before the predecessor attached: sent once it has, or answered with nothing cut if it never does. */
  readonly #heldTerminates: Array<{ readonly key: string; readonly resolve: (result: TerminateResult) => void }> = [];
  /** Its telemetry, published again here; with the client connections the current worker's messages say are open, said lost when it is detached. */
  readonly #telemetry = new TelemetryRelay();
  /** How its workers' request ends travel: said after each `hello` when not the default (`raw`). */
  #requestEnds: RequestEnds = 'raw';
  /** `listening` asks waiting for their sockets. */
  readonly #listenings: ListeningAsks;
  #connectionsCut = 0;
  /** `completedWhenApplied` calls waiting for the `applied` of a snapshot sent after them. */
  readonly #baselines = new CompletedBaselines();

  constructor(options: RemoteDataPlaneOptions) {
    this.id = options.id;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#reportIntervalMs = options.reportIntervalMs;
    this.#answerTimeoutMs = options.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
    this.#answerTimers = new AnswerTimers(this.#clock, this.#answerTimeoutMs, MAX_PENDING_CALLS);
    this.#predecessor = options.predecessor ?? false;
    this.#onApply = options.onApply ?? null;
    this.#expecting = this.#predecessor;
    this.#listenings = new ListeningAsks(this.#clock, (timeoutMs, sockets) => this.#log({ event: 'worker:listening-timeout', level: 'warn', dataPlane: this.id, timeoutMs, sockets }));
  }

  /**
   * The key's `completed` as of the worker's `applied` for the first snapshot sent after this call (the
   * counts it carries are the worker's at that moment); at once with no worker to ask, and with what is
   * known if the worker goes first.
   */
  completedWhenApplied(key: string): Promise<number> {
    const waiting = this.#link !== null || this.#expecting;
    if (!waiting || this.#stopped || this.#baselines.size >= MAX_KEYS) return Promise.resolve(this.#counts.activity(key).completed);
    return this.#baselines.wait(key, this.#seq);
  }

  #resolveBaselines(seq: number): void {
    this.#baselines.resolve(seq, (key) => this.#counts.activity(key).completed);
  }

  /** The predecessor will not attach (it failed or is gone): what was asked while waiting for it is settled now. */
  stopExpecting(): void {
    if (!this.#expecting) return;
    this.#expecting = false;
    this.#resolveBaselines(Infinity);
    for (const held of this.#heldTerminates.splice(0)) held.resolve(NO_CUT);
    this.#settled();
  }

  /** Whether a worker is attached. */
  get attached(): boolean {
    return this.#link !== null;
  }

  /** Telemetry events the workers left out because their link was full (as they reported). */
  get telemetryDropped(): number {
    return this.#telemetry.dropped;
  }

  /** Telemetry events on a channel this process does not publish (a worker of another version), or that are not plain objects. */
  get telemetryRefused(): number {
    return this.#telemetry.refused;
  }

  /** How the worker's request ends travel (protocol.ts): told to this worker now and to each that replaces it. Only the pool's own workers are told: a predecessor may not know the message. */
  requestEnds(way: RequestEnds): void {
    if (way === this.#requestEnds || this.#predecessor) return;
    this.#requestEnds = way;
    if (this.#link !== null) this.#send({ type: 'telemetry', requestEnds: way });
  }

  /** Connections to targets the worker last reported open. */
  connections(): number {
    return this.#counts.connections();
  }

  /**
   * Requests and tunnels the workers behind this slot have completed, over every key (a counter), as
   * each reported its own total: exact however many keys either side keeps.
   */
  get completedTotal(): number {
    return this.#counts.completedTotal;
  }

  /** Client connections still open at the close deadline, and cut, as the workers said in their `closed`. */
  get connectionsCut(): number {
    return this.#connectionsCut;
  }

  /** Client connections the current worker last said are open. */
  clientConnections(): number {
    return this.#telemetry.connections.open();
  }

  /** The target keys this side keeps counts for. */
  keys(): IterableIterator<string> {
    return this.#counts.keys();
  }

  /** The latest snapshot given to `apply`, or null before the first. */
  get latestSnapshot(): RoutingSnapshot | null {
    return this.#latest;
  }

  /**
   * A new worker has said `ready` (in a version this side speaks): it gets the `inherited` sockets (a
   * hot restart), `hello`, then the latest snapshot. Resolves once the sockets are written out, so the
   * caller may close its copies.
   */
  attach(link: Link, inherited: readonly HandedSocket[] = []): Promise<void> {
    if (this.#stopped) {
      link.close();
      return Promise.resolve();
    }
    if (this.#link !== null) this.detach('replaced by a new worker');
    this.#link = link;
    this.#expecting = false;
    this.#confirmedApplySeq = this.#sentApplySeq;
    link.onMessage((message, handle) => this.#receive(link, message, handle));
    // Handed in order, before `hello`: the worker's listeners take them when the first snapshot opens them.
    const sent = Promise.all(inherited.map((s) => link.sendHandle({ type: 'socket', address: s.address, port: s.port }, s.handle))).then(() => undefined);
    if (!this.#send({ type: 'hello', protocol: PROTOCOL_VERSION, dataPlaneId: this.id, reportIntervalMs: this.#reportIntervalMs })) return sent;
    if (this.#requestEnds === 'digest') this.#send({ type: 'telemetry', requestEnds: 'digest' });
    if (this.#latest !== null) this.#sendLatest();
    for (const held of this.#heldTerminates.splice(0)) void this.terminate(held.key).then(held.resolve);
    return sent;
  }

  /**
   * The worker's listening sockets, each with a handle of its own in this process (the caller closes
   * it): what a hot restart hands to the next ebb. Empty with no worker; what came so far if it goes.
   */
  listeningSockets(timeoutMs = LISTENING_TIMEOUT_MS): Promise<HandedSocket[]> {
    if (this.#link === null || this.#listenings.size >= MAX_PENDING_CALLS) return Promise.resolve([]);
    const seq = ++this.#seq;
    return this.#listenings.ask(seq, timeoutMs, () => this.#send({ type: 'listening', seq }));
  }

  /**
   * The worker is gone. Its work is gone with it: every key it had work on is idle now, and the idle
   * listeners are told, so no drain waits on a dead process. Calls waiting on it end (`terminate` with
   * nothing cut, `close` at once, `apply` with no listener errors: a slot with no worker routes nothing,
   * and the control plane's queue must not wait on a restart; the next worker gets the latest snapshot
   * when it attaches, and its bind errors are logged). The client connections its process held are
   * gone too: `ebb:connection:lost` says so for each pid its connection messages carried.
   */
  detach(reason: string, expected = false): { connectionsLost: number } {
    const link = this.#link;
    if (link === null) return { connectionsLost: 0 };
    this.#link = null;
    link.close();
    const { released, targetConnectionsLost } = this.#counts.release();
    this.#answerTimers.cancelAll();
    for (const resolve of this.#terminates.values()) resolve(NO_CUT);
    this.#terminates.clear();
    for (const held of this.#heldTerminates.splice(0)) held.resolve(NO_CUT);
    for (const resolve of this.#closes.values()) resolve();
    this.#closes.clear();
    this.#listenings.endAll();
    this.#resolveBaselines(Infinity);
    this.#stopRetrying();
    this.#held = false;
    this.#resolveApplies(Infinity, []);
    const connectionsLost = this.#telemetry.connections.lost();
    this.#log({ event: 'worker:detached', level: this.#stopped || expected ? 'info' : 'warn', dataPlane: this.id, reason, connectionsLost, targetConnectionsLost, keysReleased: released.length });
    for (const key of released) this.#askedWhileUnsettled.delete(key);
    this.#tellIdle(released);
    this.#settled();
    return { connectionsLost };
  }

  apply(snapshot: RoutingSnapshot): Promise<ApplyResult> {
    if (this.#stopped) return Promise.resolve({ listenerErrors: [] });
    this.#onApply?.(snapshot);
    this.#latest = snapshot;
    this.#latestAt = this.#clock.now();
    if (this.#link === null) return Promise.resolve({ listenerErrors: [] });
    // Every send below takes a later seq, so the `applied` of whichever snapshot goes next answers this call too.
    const seq = ++this.#seq;
    const answered = new Promise<ApplyResult>((resolve) => this.#applies.push({ seq, resolve }));
    // One apply unanswered at a time: meanwhile only the newest snapshot is kept, so a busy worker's link does not fill with snapshots it would skip.
    if (this.#sentApplySeq > this.#confirmedApplySeq || this.#held) this.#held = true;
    else this.#sendLatest();
    return answered;
  }

  activity(key: string): TargetActivity {
    const activity = this.#counts.activity(key);
    if (!this.#unsettled()) return activity;
    if (this.#askedWhileUnsettled.size < MAX_KEYS) this.#askedWhileUnsettled.add(key);
    else this.#askedOverflow = true;
    return { ...activity, unsettled: true };
  }

  terminate(key: string): Promise<TerminateResult> {
    if (this.#link === null && this.#expecting && this.#heldTerminates.length < MAX_PENDING_CALLS) {
      return new Promise((resolve) => this.#heldTerminates.push({ key, resolve }));
    }
    if (this.#link === null || (this.#stopped && !this.#predecessor)) return Promise.resolve(NO_CUT);
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      this.#terminates.set(seq, resolve);
      if (this.#send({ type: 'terminate', seq, key })) this.#awaitAnswer(seq, 'terminate');
    });
  }

  onIdle(listener: (key: string) => void): void {
    this.#idleListeners.push(listener);
  }

  /** Asks the worker to stop gracefully; resolves on its `closed`, or when it is detached (the pool ends it after the deadline). */
  close(deadlineMs: number): Promise<void> {
    this.#stopped = true;
    this.#stopRetrying();
    this.#resolveApplies(Infinity, []);
    this.#resolveBaselines(Infinity);
    if (this.#link === null) return Promise.resolve();
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      this.#closes.set(seq, resolve);
      this.#send({ type: 'close', seq, deadlineMs: Math.max(0, Math.round(deadlineMs)) });
    });
  }

  /** Tells the worker to close every socket now; the pool ends the process. */
  destroy(): void {
    this.#stopped = true;
    this.#stopRetrying();
    this.#resolveApplies(Infinity, []);
    this.#resolveBaselines(Infinity);
    this.#send({ type: 'destroy' });
  }

  #unsettled(): boolean {
    if (this.#expecting) return true;
    return this.#link !== null && (this.#sentApplySeq > this.#confirmedApplySeq || this.#held);
  }

  /** Sends `#latest` to the current worker; if its link is full, holds it and tries again, giving the worker up after the answer timeout. */
  #sendLatest(): void {
    const link = this.#link;
    const latest = this.#latest;
    if (link === null || latest === null || this.#stopped) return;
    this.#held = false;
    const seq = ++this.#seq;
    const routes = this.#predecessor ? { ...latest, listeners: [] } : latest;
    if (link.send({ type: 'apply', seq, snapshot: encodeSnapshot(withHealthyAged(routes, this.#clock.now() - this.#latestAt)) })) {
      this.#stopRetrying();
      this.#sentApplySeq = seq;
      this.#awaitAnswer(seq, 'apply');
      return;
    }
    this.#held = true;
    this.#refusedTimer ??= this.#clock.setTimer(this.#answerTimeoutMs, () => {
      this.#refusedTimer = null;
      if (link === this.#link) this.#giveUp(link, `the worker's link refused a snapshot for ${this.#answerTimeoutMs} ms (it is not reading its messages)`);
    });
    this.#retryTimer ??= this.#clock.setTimer(APPLY_RETRY_MS, () => {
      this.#retryTimer = null;
      if (link === this.#link && this.#held && this.#sentApplySeq === this.#confirmedApplySeq) this.#sendLatest();
    });
  }

  #stopRetrying(): void {
    this.#retryTimer?.cancel();
    this.#retryTimer = null;
    this.#refusedTimer?.cancel();
    this.#refusedTimer = null;
  }

  /** Sends to the current worker; a refusal means it does not read, so it is given up (its link closed, the pool replaces it). */
  #send(message: object): boolean {
    const link = this.#link;
    if (link === null) return false;
    if (link.send(message)) return true;
    this.#giveUp(link, 'the worker is not reading its messages (its link refused one)');
    return false;
  }

  #awaitAnswer(seq: number, what: string): void {
    const link = this.#link;
    const started = this.#answerTimers.start(seq, () => {
      if (link !== null && link === this.#link) this.#giveUp(link, `the worker did not answer '${what}' (seq ${seq}) within ${this.#answerTimeoutMs} ms`);
    });
    if (!started && link !== null) this.#giveUp(link, `more than ${MAX_PENDING_CALLS} calls to the worker are unanswered`);
  }

  #giveUp(link: Link, why: string): void {
    this.#log({ event: 'worker:unresponsive', level: 'error', dataPlane: this.id, error: why });
    link.close();
  }

  #receive(link: Link, raw: unknown, handle?: unknown): void {
    if (link !== this.#link) {
      (handle as SocketHandle | undefined)?.close();
      return;
    }
    let message: FromWorker;
    try {
      message = decodeFromWorker(raw);
    } catch (error) {
      const text = error instanceof ProtocolError ? error.message : String(error);
      this.#log({ event: 'worker:protocol-error', level: 'error', dataPlane: this.id, error: text });
      link.close();
      return;
    }
    switch (message.type) {
      case 'ready':
        return;
      case 'applied':
        this.#counts.recordCompleted(message.completed);
        this.#onApplied(message.seq, message.listenerErrors, message.activity);
        return;
      case 'activity':
        this.#counts.recordCompleted(message.completed);
        for (const a of message.activity) this.#record(a);
        return;
      case 'idle':
        this.#record(message.activity);
        this.#tellIdle([message.activity.key]);
        return;
      case 'terminated': {
        this.#answerTimers.answered(message.seq);
        const resolve = this.#terminates.get(message.seq);
        this.#terminates.delete(message.seq);
        resolve?.(message.result);
        return;
      }
      case 'closed': {
        const resolve = this.#closes.get(message.seq);
        this.#closes.delete(message.seq);
        const cut = message.connectionsCut;
        if (resolve !== undefined && Number.isSafeInteger(cut) && (cut as number) > 0) this.#connectionsCut += cut as number;
        resolve?.();
        return;
      }
      case 'socket':
        if (handle !== undefined && handle !== null) this.#listenings.socket(message.seq, message.address, message.port, handle as SocketHandle);
        return;
      case 'listening':
        this.#listenings.end(message.seq);
        return;
      case 'telemetry':
        this.#telemetry.publish(message.events, message.dropped, message.digest);
        return;
      case 'log':
        this.#log({ ...message.line, worker: this.id });
        return;
    }
  }

  #onApplied(seq: number, listenerErrors: ApplyResult['listenerErrors'], activity: readonly WireActivity[]): void {
    // Every `apply` before it is answered by this one too: the worker applies in order.
    for (const s of this.#answerTimers.seqs()) if (s <= seq && !this.#terminates.has(s)) this.#answerTimers.answered(s);
    if (seq <= this.#confirmedApplySeq) return;
    this.#confirmedApplySeq = seq;
    // The list is every key with work: the others have none now.
    const reported = new Set<string>();
    for (const a of activity) {
      reported.add(a.key);
      this.#record(a);
    }
    this.#counts.noWorkBut(reported);
    this.#resolveBaselines(seq);
    const waiting = this.#resolveApplies(seq, listenerErrors);
    // A snapshot resent to a new worker has no caller waiting for its answer; its bind errors are told here.
    if (waiting === 0 && listenerErrors.length > 0) this.#log({ event: 'worker:listener-errors', level: 'error', dataPlane: this.id, listenerErrors });
    if (this.#held) this.#sendLatest();
    this.#settled();
  }

  /** Resolves the apply calls up to seq `upTo`; returns how many there were. */
  #resolveApplies(upTo: number, listenerErrors: ApplyResult['listenerErrors']): number {
    const done = this.#applies.filter((p) => p.seq <= upTo);
    this.#applies = this.#applies.filter((p) => p.seq > upTo);
    for (const p of done) p.resolve({ listenerErrors });
    return done.length;
  }

  /** If no snapshot is unconfirmed, tells the idle listeners of the keys asked about meanwhile. */
  #settled(): void {
    if (this.#unsettled()) return;
    const keys = this.#askedOverflow ? [...new Set([...this.#askedWhileUnsettled, ...this.#counts.keys()])] : [...this.#askedWhileUnsettled];
    this.#askedWhileUnsettled.clear();
    this.#askedOverflow = false;
    this.#tellIdle(keys);
  }

  #record(a: WireActivity): void {
    const wentIdle = this.#counts.record(a);
    // A predecessor applies no snapshot (it is closing), so it never says a key it still routes went idle: its counts do.
    if (this.#predecessor && wentIdle) this.#tellIdle([a.key]);
  }

  #tellIdle(keys: readonly string[]): void {
    for (const key of keys) for (const listener of this.#idleListeners) listener(key);
  }
}
