/**
 * The running ebb's side of a hot restart (docs/restart.md): it starts its successor, hands it the
 * listening sockets, then the state directory and the drains it tracked, and retires: its data plane
 * finishes what it has in flight while reporting that work to the successor, then the process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type net from 'node:net';
import type { HandOver } from '../control/hand-over.ts';
import type { SocketHandle } from '../dataplane/listen-mode.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { servingExecArgv } from '../shared/young-generation.ts';
import { childLink } from '../workers/link.ts';
import { WorkerAgent, type AgentDataPlane } from '../workers/worker-agent.ts';
import type { RetiringDataPlane } from './retiring-data-plane.ts';
import { decodeToPredecessor, HANDOVER_VERSION, HandoverProtocolError, TAKEOVER_ENV, type SocketRole, type ToPredecessor } from './handover-protocol.ts';

/** What a hot restart asks of the running ebb (src/main/ebb.ts makes it). */
export interface RetiringEbb {
  /** The data plane in this process, or its workers as one: it keeps serving until its work is done. */
  readonly dataPlane: RetiringDataPlane;
  /** The admin API's listening socket, with the address and port it was asked for. */
  readonly admin: { readonly address: string; readonly port: number; readonly server: net.Server };
  /**
   * Stops the admin API from accepting (its socket stays open in the successor, which accepts what
   * waits on it), Auto Scaling (instances keep running) and the control plane, and closes the store.
   * Returns the drains it tracked and its targets' health, and the shutdown deadline its data plane now has.
   */
  releaseState(): Promise<{ handOver: HandOver; deadlineMs: number }>;
  /** Access logs, metrics and response times stop reading this process's telemetry: the successor reads it now. */
  stopTelemetry(): Promise<void>;
}

export type RestartOutcome =
  /** The successor did not start; nothing was handed over and this ebb serves on. */
  | { readonly kind: 'failed'; readonly error: string }
  /** The successor serves; this data plane has finished its work, counted here. */
  | ({ readonly kind: 'retired' } & Retirement)
  /** The successor failed after the state was handed over: this ebb has no control plane left. */
  | { readonly kind: 'stranded'; readonly error: string };

/** How the retiring data plane finished: what it had at the handover, what it completed, what its deadline cut. */
export interface Retirement {
  /** Client connections (and TCP flows) open when the successor took over. */
  readonly connectionsAtHandover: number;
  /** Requests and tunnels completed from the handover until the data plane had closed. */
  readonly requestsCompleted: number;
  /** Client connections still open at the shutdown deadline, and cut. */
  readonly connectionsCut: number;
  /** From the handover until the data plane had closed. */
  readonly retiredInMs: number;
  /** How the successor ended if it did while this one retired (it was stopped, or its start failed after it took over); else null. */
  readonly successorExited: string | null;
}

/** What the retiring data plane counts itself (how the successor ended is the restart's to say). */
type Counted = Omit<Retirement, 'successorExited'>;

export interface RestartOptions {
  readonly ebb: RetiringEbb;
  readonly clock: Clock;
  readonly log: (entry: Record<string, unknown>) => void;
  /** Starts the successor with an IPC channel; default: this process's command line again (successorCommand). */
  readonly spawn?: () => ChildProcess;
  /** How long the successor has to ask for the state, and then to say it serves. Default 60 s each. */
  readonly stepTimeoutMs?: number;
}

/**
 * `starting` until the successor asks for the state; `releasing` while it is closed here; `released`
 * until the successor has restored it; `attached` while this data plane, still serving, is one of the
 * successor's; `retiring` once the successor, started, told it to close; `done`.
 */
type Phase = 'starting' | 'releasing' | 'released' | 'attached' | 'retiring' | 'done';

/**
 * The successor: this process's node, its options (with the young generation's cap, young-generation.ts)
 * and its command line, with the IPC channel and TAKEOVER_ENV.
 */
export function spawnSuccessor(): ChildProcess {
  return spawn(process.execPath, [...servingExecArgv(), ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [TAKEOVER_ENV]: String(process.pid) },
  });
}

/** The handle under a listening `net.Server`, as Node passes it to another process. */
function handleOf(server: net.Server): SocketHandle | null {
  return (server as unknown as { _handle: SocketHandle | null })._handle;
}

/**
 * One hot restart. `outcome` settles once: `failed` as soon as the successor cannot start before it
 * took the state; `retired` when this data plane has finished; `stranded` when the successor failed
 * after taking the state. `abort` calls the restart off while the state is still here.
 */
export class Restart {
  readonly successor: ChildProcess;
  readonly outcome: Promise<RestartOutcome>;
  readonly #options: RestartOptions;
  #phase: Phase = 'starting';
  #settle: (outcome: RestartOutcome) => void = () => {};
  #stepTimer: TimerHandle | null = null;
  #successorExited: string | null = null;
  /** The shutdown deadline its data plane closes with, as the release gave it. */
  #deadlineMs = 30_000;
  readonly #onMessage = (message: unknown): void => this.#receive(message);

  constructor(options: RestartOptions) {
    this.#options = options;
    this.outcome = new Promise((resolve) => (this.#settle = resolve));
    const child = (options.spawn ?? spawnSuccessor)();
    this.successor = child;
    options.log({ event: 'restart:starting', successor: child.pid ?? null });
    child.on('message', this.#onMessage);
    child.on('error', (error) => this.#fail(`the successor could not be started: ${error.message}`));
    child.on('exit', (code, signal) => {
      const how = signal ?? `code ${code ?? 'unknown'}`;
      // Its exit status says more than a closed link or a timeout, which are what is known before it.
      if (this.#phase === 'attached' || this.#phase === 'retiring') this.#successorExited = this.#successorExited === null ? how : `${this.#successorExited}; it exited (${how})`;
      if (this.#phase === 'attached' || this.#phase === 'retiring' || this.#phase === 'done') return;
      this.#fail(`the successor exited (${how}) before it served`);
    });
    this.#armStep('ask for the state');
    // The addresses now, for the successor's checks; the sockets themselves once the listeners can no longer change.
    const addresses = [...options.ebb.dataPlane.listenAddresses(), { address: options.ebb.admin.address, port: options.ebb.admin.port }];
    this.#send({ type: 'handover:sockets', v: HANDOVER_VERSION, addresses, dataPlaneId: options.ebb.dataPlane.id, socketsPerAddress: options.ebb.dataPlane.socketsPerAddress });
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** Calls the restart off while the state is still here (a stop signal came meanwhile); false once it was handed over. */
  abort(reason: string): boolean {
    if (this.#phase !== 'starting') return false;
    this.#send({ type: 'handover:abort', v: HANDOVER_VERSION, reason });
    this.#fail(`called off: ${reason}`);
    return true;
  }

  /**
   * The sockets of `role`, each with its handle, resolved once each is written out (the handle must stay
   * open until then; a copy of this process's own is closed then). The admin API's goes before it closes
   * here; the listeners' once the control plane has stopped, so that none is added or removed after.
   */
  async #sendSockets(role: SocketRole): Promise<void> {
    const { ebb } = this.#options;
    const sockets =
      role === 'admin'
        ? [{ address: ebb.admin.address, port: ebb.admin.port, handle: handleOf(ebb.admin.server), release: false }]
        : await ebb.dataPlane.socketsToHandOver();
    const sent: Promise<void>[] = [];
    for (const s of sockets) {
      const handle = s.handle;
      if (handle === null) continue;
      sent.push(
        new Promise((resolve) =>
          this.#send({ type: 'handover:socket', v: HANDOVER_VERSION, role, address: s.address, port: s.port }, handle, () => {
            if (s.release) handle.close();
            resolve();
          }),
        ),
      );
    }
    await Promise.all(sent);
  }

  #send(message: object, handle?: SocketHandle, written?: () => void): void {
    if (this.successor.connected !== true) return written?.();
    // The handle is the socket's TCP wrap, which Node sends as a native handle: the successor gets it unlistened.
    this.successor.send(message, handle as unknown as net.Server | undefined, undefined, (error) => {
      if (error !== null) this.#fail(`a handover message could not be sent: ${error.message}`);
      written?.();
    });
  }

  #receive(raw: unknown): void {
    let message: ToPredecessor;
    try {
      message = decodeToPredecessor(raw);
    } catch (error) {
      this.#fail(error instanceof HandoverProtocolError ? error.message : String(error));
      return;
    }
    switch (message.type) {
      case 'handover:want-state':
        if (this.#phase === 'starting') {
          this.#release().catch((error: unknown) => this.#fail(`the state could not be released: ${error instanceof Error ? error.message : String(error)}`));
        }
        return;
      case 'handover:serving':
        if (this.#phase === 'released') this.#attach();
        return;
      case 'handover:failed':
        this.#fail(message.error);
        return;
    }
  }

  async #release(): Promise<void> {
    this.#phase = 'releasing';
    this.#stepTimer?.cancel();
    await this.#sendSockets('admin');
    const released = await this.#options.ebb.releaseState();
    const handOver = this.#options.ebb.dataPlane.handOver(released.handOver);
    const deadlineMs = released.deadlineMs;
    this.#deadlineMs = deadlineMs;
    if (this.#phase !== 'releasing') return;
    await this.#sendSockets('listener');
    if (this.#phase !== 'releasing') return;
    this.#phase = 'released';
    this.#send({ type: 'handover:state', v: HANDOVER_VERSION, handOver });
    this.#options.log({ event: 'restart:state-released', successor: this.successor.pid ?? null, drains: handOver.drains.length, health: handOver.health.length });
    this.#armStep('serve');
  }

  /**
   * The successor has restored the state: this data plane becomes one of its data planes (the
   * data-plane protocol from here on) and serves on beside it, with the successor's routes, until the
   * successor, started, sends `close`; then it retires. If the link ends before that, the successor
   * failed: this one finishes its work and the outcome says so.
   */
  #attach(): void {
    this.#phase = 'attached';
    this.#armStep('start');
    this.successor.off('message', this.#onMessage);
    const { ebb, clock, log } = this.#options;
    const link = childLink(this.successor);
    let linkClosed = false;
    link.onClose(() => void (linkClosed = true));
    let retirement: Promise<Counted> | null = null;
    let telemetry: Promise<void> = Promise.resolve();
    const plane: AgentDataPlane = {
      id: ebb.dataPlane.id,
      get entries() {
        return ebb.dataPlane.entries;
      },
      // Routes only: its listeners stay as they are until it closes (the successor opens any new one).
      apply: (snapshot) => ebb.dataPlane.apply(snapshot),
      activity: (key) => ebb.dataPlane.activity(key),
      completedWork: () => ebb.dataPlane.completedWork(),
      terminate: (key) => ebb.dataPlane.terminate(key),
      onIdle: (listener) => ebb.dataPlane.onIdle(listener),
      close: (deadlineMs) => {
        retirement ??= this.#retire(deadlineMs, linkClosed);
        return retirement.then(() => undefined);
      },
      destroy: () => ebb.dataPlane.destroy(),
    };
    // The agent lives on the link's listeners; it ends by `onExit`.
    new WorkerAgent({
      link,
      // At the successor's hello: from here its telemetry is read there, so it is not read here too.
      createDataPlane: () => {
        telemetry = ebb.stopTelemetry();
        return plane;
      },
      clock,
      onExit: () => {
        const finished = retirement ?? this.#retire(0, true);
        // A successor that went away is waited for (2 s at most), so the outcome says how it ended, not just that its link closed.
        const gone = this.#successorExited === null ? Promise.resolve() : this.#exited(2000);
        void Promise.all([finished, telemetry.catch(() => undefined), gone]).then(([r]) => this.#done({ kind: 'retired', ...r, successorExited: this.#successorExited }));
      },
      localLog: (line) => log({ event: 'restart:link', ...line }),
      orphanDeadlineMs: this.#deadlineMs,
    });
  }

  /** This data plane stops accepting and finishes its work, counted; `lost`: the successor went away first. */
  async #retire(deadlineMs: number, lost: boolean): Promise<Counted> {
    const { ebb, clock, log } = this.#options;
    this.#phase = 'retiring';
    this.#stepTimer?.cancel();
    if (lost) this.#successorExited ??= 'the link to it closed before it had started';
    const connectionsAtHandover = ebb.dataPlane.clientConnections();
    const completedAtHandover = ebb.dataPlane.completedWork();
    const handedOverAt = clock.now();
    const deadline = lost ? this.#deadlineMs : deadlineMs;
    log({ event: 'restart:handed-over', successor: this.successor.pid ?? null, deadlineMs: deadline, connections: connectionsAtHandover });
    await ebb.dataPlane.close(deadline);
    return {
      connectionsAtHandover,
      requestsCompleted: ebb.dataPlane.completedWork() - completedAtHandover,
      connectionsCut: ebb.dataPlane.connectionsCut(),
      retiredInMs: Math.round(clock.now() - handedOverAt),
    };
  }

  #armStep(what: string): void {
    const ms = this.#options.stepTimeoutMs ?? 60_000;
    this.#stepTimer?.cancel();
    this.#stepTimer = this.#options.clock.setTimer(ms, () => this.#fail(`the successor did not ${what} within ${ms} ms`));
  }

  #successorRuns(): boolean {
    return this.successor.exitCode === null && this.successor.signalCode === null;
  }

  /** Resolves once the successor has exited, or after `ms`. */
  #exited(ms: number): Promise<void> {
    if (!this.#successorRuns()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.#options.clock.setTimer(ms, resolve);
      this.successor.once('exit', () => {
        timer.cancel();
        resolve();
      });
    });
  }

  #fail(error: string): void {
    if (this.#phase === 'attached') {
      // The successor did not start in time: this one retires as if its link had gone.
      this.#options.log({ event: 'restart:failed', level: 'error', successor: this.successor.pid ?? null, error, stranded: true });
      this.#successorExited ??= error;
      if (this.#successorRuns()) this.successor.kill('SIGKILL');
      return;
    }
    if (this.#phase === 'retiring' || this.#phase === 'done') return;
    const stranded = this.#phase === 'released' || this.#phase === 'releasing';
    if (this.#successorRuns()) this.successor.kill('SIGKILL');
    this.#options.log({ event: 'restart:failed', level: 'error', successor: this.successor.pid ?? null, error, ...(stranded && { stranded: true }) });
    this.#done(stranded ? { kind: 'stranded', error } : { kind: 'failed', error });
  }

  #done(outcome: RestartOutcome): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    this.#stepTimer?.cancel();
    this.successor.off('message', this.#onMessage);
    this.#settle(outcome);
  }
}
