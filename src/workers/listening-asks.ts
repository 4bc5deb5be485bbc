import type { SocketHandle } from '../dataplane/listen-mode.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';

/** A listening socket's handle, with the address and port its listener was declared with. */
export interface HandedSocket {
  readonly address: string;
  readonly port: number;
  readonly handle: SocketHandle;
}

/** How long a worker has to say its listening sockets at a hot restart before the restart goes on with what came. */
export const LISTENING_TIMEOUT_MS = 5000;

interface PendingAsk {
  readonly sockets: HandedSocket[];
  readonly resolve: (sockets: HandedSocket[]) => void;
  readonly timer: TimerHandle;
}

/**
 * The `listening` asks to one worker waiting for their `socket` answers (protocol.ts), each ended by the
 * worker's `listening` count, by its own timer (a worker slow to answer costs the restart that long, not
 * the worker), or when the worker goes: each resolves with the sockets that came.
 */
export class ListeningAsks {
  readonly #pending = new Map<number, PendingAsk>();
  readonly #clock: Clock;
  readonly #onTimeout: (timeoutMs: number, sockets: number) => void;

  constructor(clock: Clock, onTimeout: (timeoutMs: number, sockets: number) => void) {
    this.#clock = clock;
    this.#onTimeout = onTimeout;
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Waits for the answers to ask `seq`, which `send` sends (false: it could not, and nothing comes). */
  ask(seq: number, timeoutMs: number, send: () => boolean): Promise<HandedSocket[]> {
    return new Promise((resolve) => {
      const timer = this.#clock.setTimer(timeoutMs, () => {
        this.#onTimeout(timeoutMs, this.#pending.get(seq)?.sockets.length ?? 0);
        this.end(seq);
      });
      this.#pending.set(seq, { sockets: [], resolve, timer });
      if (!send()) this.end(seq);
    });
  }

  /** A `socket` answer; its handle is closed if no ask waits for it. */
  socket(seq: number, address: string, port: number, handle: SocketHandle): void {
    const pending = this.#pending.get(seq);
    if (pending === undefined) handle.close();
    else pending.sockets.push({ address, port, handle });
  }

  end(seq: number): void {
    const pending = this.#pending.get(seq);
    this.#pending.delete(seq);
    pending?.timer.cancel();
    pending?.resolve(pending.sockets);
  }

  endAll(): void {
    for (const seq of [...this.#pending.keys()]) this.end(seq);
  }
}
