/**
 * The new ebb's side of a hot restart (docs/restart.md): `ebb serve` started by a running ebb with
 * TAKEOVER_ENV set. It receives the listening sockets, checks its own file and ports, asks for the
 * state directory, starts on it, and says it serves; from then on the channel carries the
 * data-plane protocol, and the predecessor's data plane is one of this ebb's data planes (a
 * `RemoteDataPlane`) until its work is done, so drains wait for what it still has in flight.
 */
import { NOTHING_HANDED_OVER, type HandOver } from '../control/hand-over.ts';
import { InheritedSockets, type SocketHandle } from '../dataplane/listen-mode.ts';
import type { Clock } from '../shared/clock.ts';
import { ebbError } from '../shared/errors.ts';
import { parentLink } from '../workers/link.ts';
import { RemoteDataPlane } from '../workers/remote-data-plane.ts';
import { decodeToSuccessor, HANDOVER_VERSION, HandoverProtocolError, TAKEOVER_ENV, type ToSuccessor } from './handover-protocol.ts';

/** How often the predecessor reports the counts that changed. */
const REPORT_INTERVAL_MS = 100;

export interface TakeoverOptions {
  readonly clock: Clock;
  readonly log: (entry: Record<string, unknown>) => void;
  /** How long the predecessor has to send the sockets, and then the state. Default 30 s each. */
  readonly stepTimeoutMs?: number;
}

type Waiter = { readonly resolve: (m: ToSuccessor) => void; readonly reject: (e: Error) => void };

/** The takeover of a running ebb by this process, started by it (TAKEOVER_ENV). */
export class Takeover {
  readonly predecessorPid: number;
  /** The listeners' sockets. They come with the state. */
  readonly sockets = new InheritedSockets();
  /** The admin API's socket, apart: the workers' pool takes every listener's socket there is. */
  readonly adminSockets = new InheritedSockets();
  /** `address:port` of every socket the predecessor listens on, said at once: the checks before the state pass them. */
  readonly #announced = new Set<string>();
  /** The most listening sockets the predecessor hands over for one address (one per worker of its, under SO_REUSEPORT). */
  socketsPerAddress = 1;
  /** The predecessor's data plane, while it finishes its work; settled once it attached or is gone. */
  predecessor: RemoteDataPlane | null = null;
  readonly #options: TakeoverOptions;
  readonly #received: ToSuccessor[] = [];
  #waiter: Waiter | null = null;
  #closed: string | null = null;
  #serving = false;
  readonly #onMessage = (message: unknown, handle: unknown): void => this.#receive(message, handle);
  readonly #onDisconnect = (): void => this.#lost('the ebb that started this one went away');

  private constructor(predecessorPid: number, options: TakeoverOptions) {
    this.predecessorPid = predecessorPid;
    this.#options = options;
    process.on('message', this.#onMessage);
    process.on('disconnect', this.#onDisconnect);
  }

  /**
   * A takeover when this process was started by a running ebb (TAKEOVER_ENV and an IPC channel), else
   * null; resolves once the sockets have come. The variable is removed, so the processes ebb starts do
   * not see it.
   */
  static async fromEnvironment(env: NodeJS.ProcessEnv, options: TakeoverOptions): Promise<Takeover | null> {
    const value = env[TAKEOVER_ENV];
    if (value === undefined) return null;
    delete env[TAKEOVER_ENV];
    const pid = Number(value);
    if (process.send === undefined || !Number.isInteger(pid) || pid <= 0) {
      throw ebbError('ValidationError', `${TAKEOVER_ENV} is set, but this ebb was not started by a running ebb (no IPC channel); unset it`);
    }
    const takeover = new Takeover(pid, options);
    const sockets = await takeover.#next('handover:sockets', 'send its sockets');
    if (sockets.type === 'handover:sockets') {
      for (const a of sockets.addresses) takeover.#announced.add(`${a.address}:${a.port}`);
      takeover.socketsPerAddress = sockets.socketsPerAddress ?? 1;
      takeover.predecessor = new RemoteDataPlane({ id: sockets.dataPlaneId, clock: options.clock, log: options.log, reportIntervalMs: REPORT_INTERVAL_MS, predecessor: true });
    }
    return takeover;
  }

  /** Whether the predecessor listens on the address (its socket comes with the state), or handed it over. */
  holds(address: string, port: number): boolean {
    return this.#announced.has(`${address}:${port}`) || this.sockets.has(address, port) || this.adminSockets.has(address, port);
  }

  /** Asks for the state directory; resolves once the predecessor has closed it, with its drains and its targets' health. */
  async acquireState(): Promise<HandOver> {
    this.#send({ type: 'handover:want-state', v: HANDOVER_VERSION });
    const state = await this.#next('handover:state', 'hand over the state directory');
    return state.type === 'handover:state' ? state.handOver : NOTHING_HANDED_OVER;
  }

  /**
   * This ebb has restored the state: the predecessor becomes one of its data planes (the data-plane
   * protocol from here on), serving on beside it until `started`.
   */
  serving(): void {
    this.#serving = true;
    this.#send({ type: 'handover:serving', v: HANDOVER_VERSION });
    process.off('message', this.#onMessage);
    process.off('disconnect', this.#onDisconnect);
    const plane = this.predecessor;
    if (plane === null) return;
    const link = parentLink();
    link.onClose((reason) => {
      plane.detach(reason, true);
      this.#options.log({ event: 'restart:predecessor-done', predecessor: this.predecessorPid, reason });
      // Nothing more comes from it: the channel must not hold this process's event loop.
      process.channel?.unref();
    });
    void plane.attach(link);
  }

  /** This ebb has started: the predecessor stops accepting and finishes its work within `deadlineMs`, then exits. */
  started(deadlineMs: number): void {
    void this.predecessor?.close(deadlineMs);
  }

  /** This ebb cannot start: said to the predecessor, which serves on (or, past the state, stops). */
  failed(error: string): void {
    if (this.#serving) return;
    this.#send({ type: 'handover:failed', v: HANDOVER_VERSION, error });
    this.predecessor?.stopExpecting();
  }

  #send(message: object): void {
    if (this.#closed === null && process.connected) process.send?.(message);
  }

  #receive(raw: unknown, handle: unknown): void {
    let message: ToSuccessor;
    try {
      message = decodeToSuccessor(raw);
    } catch (error) {
      this.#lost(error instanceof HandoverProtocolError ? error.message : String(error));
      return;
    }
    if (message.type === 'handover:socket') {
      if (handle !== undefined && handle !== null) (message.role === 'admin' ? this.adminSockets : this.sockets).add(message.address, message.port, handle as SocketHandle);
      return;
    }
    if (message.type === 'handover:abort') {
      this.#lost(`the ebb that started this one called the restart off: ${message.reason}`);
      return;
    }
    this.#received.push(message);
    this.#wake();
  }

  #next(type: ToSuccessor['type'], what: string): Promise<ToSuccessor> {
    const ms = this.#options.stepTimeoutMs ?? 30_000;
    return new Promise<ToSuccessor>((resolve, reject) => {
      const timer = this.#options.clock.setTimer(ms, () => {
        this.#waiter = null;
        reject(ebbError('RestartFailed', `the running ebb did not ${what} within ${ms} ms; it serves on, and nothing was changed`));
      });
      this.#waiter = {
        resolve: (m) => {
          timer.cancel();
          if (m.type === type) resolve(m);
          else reject(ebbError('RestartFailed', `the running ebb sent ${m.type} where ${type} was expected`));
        },
        reject: (e) => {
          timer.cancel();
          reject(e);
        },
      };
      this.#wake();
    });
  }

  #wake(): void {
    const waiter = this.#waiter;
    if (waiter === null) return;
    if (this.#closed !== null) {
      this.#waiter = null;
      waiter.reject(ebbError('RestartFailed', `${this.#closed}; start ebb again`));
      return;
    }
    const message = this.#received.shift();
    if (message === undefined) return;
    this.#waiter = null;
    waiter.resolve(message);
  }

  #lost(reason: string): void {
    if (this.#closed !== null) return;
    this.#closed = reason;
    this.predecessor?.stopExpecting();
    this.#wake();
  }
}
