import type { ChildProcess } from 'node:child_process';
import type { Worker as ClusterWorker } from 'node:cluster';

/**
 * One side of the conversation between the control plane's process and a worker (protocol.ts): JSON
 * messages in order, and one close. The link does not read messages; the side holding it decodes them.
 *
 * Bounded: a link counts the messages it has handed to the channel that are not yet written out. A peer
 * that stops reading lets that count grow, and past `maxUnsent` the link refuses (`send` returns false)
 * rather than queueing without end; the sender decides what a refusal means (telemetry drops a batch,
 * the control side gives up on the worker). The bound is a count, not bytes, because Node does not
 * expose the size of an IPC channel's write queue and measuring each message would serialize it twice;
 * messages are kept small by their senders (telemetry in batches of at most a few hundred events).
 */
export interface Link {
  /** Hands `message` to the channel; false when not sent: the link is closed or its peer is not reading. */
  send(message: object): boolean;
  /**
   * Hands `message` to the channel with a socket's handle (protocol.ts: only over a process's IPC
   * channel); resolves true once both are written out, so the sender may close its copy of the handle,
   * or false when not sent (the link is closed, or cannot carry handles).
   */
  sendHandle(message: object, handle: unknown): Promise<boolean>;
  /** Each message received, in order, as it arrived (not yet checked against the protocol), with the handle that came with it, if any. */
  onMessage(listener: (message: unknown, handle?: unknown) => void): void;
  /** Called once when the link closes, from either side or because the channel broke; at once (next tick) if it already has. */
  onClose(listener: (reason: string) => void): void;
  /** Closes the channel; the peer's link closes too. Idempotent. */
  close(): void;
}

export interface LinkOptions {
  /** Messages handed to the channel and not yet written out, past which `send` refuses. */
  readonly maxUnsent?: number;
}

export const DEFAULT_MAX_UNSENT = 64;

/** A process's IPC channel as both ends see it: a forked child from its parent, `process` from the child. */
interface IpcEndpoint {
  send?: ((message: unknown, sendHandle: unknown, options: undefined, callback: (error: Error | null) => void) => boolean) | undefined;
  readonly connected?: boolean;
  disconnect?: (() => void) | undefined;
  on(event: 'message', listener: (message: unknown, handle: unknown) => void): unknown;
  on(event: 'disconnect', listener: () => void): unknown;
  off(event: 'message', listener: (message: unknown, handle: unknown) => void): unknown;
  off(event: 'disconnect', listener: () => void): unknown;
}

/** What every link shares: its listeners, and one close that tells them. */
abstract class ListenedLink implements Link {
  readonly #messageListeners: Array<(message: unknown, handle?: unknown) => void> = [];
  readonly #closeListeners: Array<(reason: string) => void> = [];
  #closedReason: string | null = null;

  abstract send(message: object): boolean;

  abstract sendHandle(message: object, handle: unknown): Promise<boolean>;

  abstract close(): void;

  protected get isClosed(): boolean {
    return this.#closedReason !== null;
  }

  /** A message from the peer, to every listener (none once closed). */
  protected deliver(message: unknown, handle?: unknown): void {
    if (this.#closedReason !== null) {
      // Nobody will take it: a socket's handle that came too late is closed, not left open.
      (handle as { close?: () => void } | undefined)?.close?.();
      return;
    }
    for (const listener of this.#messageListeners) listener(message, handle);
  }

  onMessage(listener: (message: unknown, handle?: unknown) => void): void {
    this.#messageListeners.push(listener);
  }

  onClose(listener: (reason: string) => void): void {
    const reason = this.#closedReason;
    if (reason !== null) process.nextTick(listener, reason);
    else this.#closeListeners.push(listener);
  }

  /** Marks the link closed (once), lets go of what it holds, and tells the listeners. */
  protected closed(reason: string): void {
    if (this.#closedReason !== null) return;
    this.#closedReason = reason;
    this.released();
    this.#messageListeners.length = 0;
    for (const listener of this.#closeListeners.splice(0)) listener(reason);
  }

  /** What a link lets go of as it closes, before its listeners are told. */
  protected released(): void {}
}

/** A link over a process's IPC channel (both process links): the count of messages not yet written out. */
class ChannelLink extends ListenedLink {
  readonly #endpoint: IpcEndpoint;
  readonly #maxUnsent: number;
  #unsent = 0;
  #closedHere = false;
  /**
   * Messages with a handle handed to the channel and not yet written out (apart: not bounded), by the
   * resolver of each one's `sendHandle`: Node drops them unanswered if the channel closes before the
   * peer has taken the handle, so the link answers them false as it closes.
   */
  readonly #handlesUnsent = new Set<(sent: boolean) => void>();
  readonly #onMessage = (message: unknown, handle: unknown): void => this.deliver(message, handle ?? undefined);
  readonly #onDisconnect = (): void => this.closed('the IPC channel closed');

  constructor(endpoint: IpcEndpoint, options: LinkOptions) {
    super();
    this.#endpoint = endpoint;
    this.#maxUnsent = options.maxUnsent ?? DEFAULT_MAX_UNSENT;
    endpoint.on('message', this.#onMessage);
    endpoint.on('disconnect', this.#onDisconnect);
    if (endpoint.connected !== true) this.closed('the IPC channel was not open');
  }

  send(message: object): boolean {
    const send = this.#endpoint.send;
    if (this.isClosed || send === undefined || this.#unsent >= this.#maxUnsent) return false;
    this.#unsent++;
    // Node's own boolean only hints at a backlog and the message is queued anyway; the callback is when it is written out (or failed).
    send.call(this.#endpoint, message, undefined, undefined, () => {
      this.#unsent--;
      if (this.#closedHere) this.#disconnectWhenWritten();
    });
    return true;
  }

  sendHandle(message: object, handle: unknown): Promise<boolean> {
    const send = this.#endpoint.send;
    // Neither bounded by maxUnsent nor counted against it: a handle goes once per listening socket at a
    // restart, all of them before the `hello` that must not then be refused (however many addresses).
    if (this.isClosed || send === undefined) return Promise.resolve(false);
    return new Promise((resolve) => {
      const settle = (sent: boolean): void => {
        if (!this.#handlesUnsent.delete(settle)) return;
        if (this.#closedHere) this.#disconnectWhenWritten();
        resolve(sent);
      };
      this.#handlesUnsent.add(settle);
      send.call(this.#endpoint, message, handle, undefined, (error) => settle(error === null));
    });
  }

  close(): void {
    if (this.isClosed) return;
    this.#closedHere = true;
    this.closed('closed by this side');
    this.#disconnectWhenWritten();
  }

  /**
   * Disconnecting cancels writes still queued, so a last answer (`closed`) sent just before would be
   * lost; and Node breaks if the channel is disconnected from inside its own delivery of messages that
   * arrived before the first listener. So the channel is let go on a later turn, once nothing is unsent.
   */
  #disconnectWhenWritten(): void {
    if (this.#unsent + this.#handlesUnsent.size > 0) return;
    setImmediate(() => {
      if (this.#unsent + this.#handlesUnsent.size === 0 && this.#endpoint.connected === true) this.#endpoint.disconnect?.();
    });
  }

  protected override released(): void {
    this.#endpoint.off('message', this.#onMessage);
    this.#endpoint.off('disconnect', this.#onDisconnect);
    // A handle not yet taken by the peer is not waited for past the link's end (Node may drop it unanswered).
    for (const settle of [...this.#handlesUnsent]) settle(false);
  }
}

/** The control side's link to a worker: a forked child process or a `node:cluster` worker. */
export function childLink(child: ChildProcess | ClusterWorker, options: LinkOptions = {}): Link {
  const proc = 'process' in child ? child.process : child;
  const link = new ProcessChildLink(proc as unknown as IpcEndpoint, options);
  // The channel normally ends first; a late turn lets messages already read be delivered before an exit closes the link.
  proc.once('exit', (code, signal) => setImmediate(() => link.exited(code, signal)));
  return link;
}

class ProcessChildLink extends ChannelLink {
  exited(code: number | null, signal: NodeJS.Signals | null): void {
    this.closed(signal !== null ? `the worker was killed by ${signal}` : `the worker exited with code ${code ?? 'unknown'}`);
  }
}

/**
 * The worker's link to the control side: `process.send` and `process.on('message')`. Closes when the
 * IPC channel disconnects (the control process exited or let the worker go).
 *
 * In a `node:cluster` worker, messages that arrive before this is called are lost (cluster's own
 * listener takes them and no one hears), which is why the control side sends nothing until `ready`.
 */
export function parentLink(options: LinkOptions = {}): Link {
  if (process.send === undefined) {
    throw new Error('this process has no IPC channel to a parent; a data-plane worker is started by `ebb serve --workers N`, not run by hand');
  }
  return new ChannelLink(process as unknown as IpcEndpoint, options);
}

/**
 * Two links joined in memory, for tests: each message is copied through JSON (as IPC does) and
 * delivered on a later turn of the event loop, in order; `maxUnsent` bounds the messages in flight.
 */
export function memoryLinkPair(options: LinkOptions = {}): [Link, Link] {
  const a = new MemoryLink(options);
  const b = new MemoryLink(options);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class MemoryLink extends ListenedLink {
  peer: MemoryLink | null = null;
  readonly #maxUnsent: number;
  #unsent = 0;

  constructor(options: LinkOptions) {
    super();
    this.#maxUnsent = options.maxUnsent ?? DEFAULT_MAX_UNSENT;
  }

  send(message: object): boolean {
    const peer = this.peer;
    if (this.isClosed || peer === null || this.#unsent >= this.#maxUnsent) return false;
    const copy: unknown = JSON.parse(JSON.stringify(message));
    this.#unsent++;
    setImmediate(() => {
      this.#unsent--;
      peer.deliver(copy);
    });
    return true;
  }

  /** A memory link carries no handles: the message goes, the handle does not. */
  sendHandle(message: object): Promise<boolean> {
    return Promise.resolve(this.send(message));
  }

  close(): void {
    if (this.isClosed) return;
    this.closed('closed by this side');
    // The peer sees it after the messages already sent, as a channel's end comes after its data.
    const peer = this.peer;
    setImmediate(() => peer?.closed('the peer closed the link'));
  }
}
