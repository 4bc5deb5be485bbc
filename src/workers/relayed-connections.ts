import { CHANNEL_NAMES, connectionLostChannel } from '../dataplane/channels.ts';
import type { ConnectionLostMessage } from '../dataplane/channels.ts';

/** The connection messages that state a process's open count, which `ebb:connection:lost` takes back. */
const CONNECTION_STATES: ReadonlySet<string> = new Set([CHANNEL_NAMES.connectionOpen, CHANNEL_NAMES.connectionClose, CHANNEL_NAMES.connectionCount]);
/**
 * Pids kept from one worker's connection messages. A worker is one process, so they carry one pid; an
 * ebb retiring at a hot restart relays its own workers' too, one pid each. The bound only stops a
 * worker that sends others (a fault) from growing the set. Such messages past it are refused, so every
 * open count published from a worker is one its `detach` takes back.
 */
export const MAX_CONNECTION_PIDS = 256;
/** Listeners whose open count is kept per worker; past it the lost count undercounts (a fault: a worker has the snapshot's listeners). */
const MAX_LISTENERS = 4096;

/**
 * The client connections one worker's relayed messages say are open, so that when the worker is gone
 * ebb can say which processes' connections went with it (`ebb:connection:lost`) and how many there were.
 */
export class RelayedConnections {
  /** By pid, then listener ARN: the open count the worker last stated. */
  readonly #open = new Map<number, Map<string, number>>();

  /** Whether `message` on channel `name` may be published: a connection message must carry a pid within the bound. */
  accepts(name: string, message: { readonly pid?: unknown; readonly listenerArn?: unknown; readonly open?: unknown }): boolean {
    if (!CONNECTION_STATES.has(name)) return true;
    const { pid, listenerArn, open } = message;
    if (typeof pid !== 'number' || (!this.#open.has(pid) && this.#open.size >= MAX_CONNECTION_PIDS)) return false;
    let listeners = this.#open.get(pid);
    if (listeners === undefined) this.#open.set(pid, (listeners = new Map()));
    if (typeof listenerArn === 'string' && typeof open === 'number') {
      if (open > 0 && (listeners.has(listenerArn) || listeners.size < MAX_LISTENERS)) listeners.set(listenerArn, open);
      else listeners.delete(listenerArn);
    }
    return true;
  }

  /** Client connections open now, as the worker's messages last stated. */
  open(): number {
    let open = 0;
    for (const listeners of this.#open.values()) for (const n of listeners.values()) open += n;
    return open;
  }

  /** The worker is gone: says so for each of its pids, and returns how many client connections it last said were open. */
  lost(): number {
    let open = 0;
    for (const [pid, listeners] of this.#open) {
      for (const n of listeners.values()) open += n;
      if (connectionLostChannel.hasSubscribers) connectionLostChannel.publish({ pid } satisfies ConnectionLostMessage);
    }
    this.#open.clear();
    return open;
  }
}
