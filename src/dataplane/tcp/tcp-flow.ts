import net from 'node:net';
import type { Socket } from 'node:net';
import type { ListenerRoute } from '../../domain/routing-snapshot.ts';
import { flowEndChannel, flowOpenChannel, upstreamErrorChannel } from '../channels.ts';
import type { FlowEndMessage, FlowEndReason, FlowOpenMessage, TlsFacts, UpstreamErrorMessage } from '../channels.ts';
import type { ProxyHost } from '../http-proxy.ts';
import { pickTarget } from '../pickers/index.ts';
import type { OpenTunnel, TargetEntry } from '../target-entry.ts';
import type { IdleWatched } from './idle-sweep.ts';
import type { ProxiedClient } from './inbound-proxy.ts';
import { resetSocket } from './reset-socket.ts';
import { DirectReader, DirectWriter } from './direct-reads.ts';
import type { DirectReadSink, ReadOutcome } from './direct-reads.ts';
import { encodeProxyV2 } from './proxy-protocol.ts';

/** What a flow needs of the listener it came through. */
export interface FlowListener {
  /** The current route (its settings and group are read when the flow starts). */
  readonly route: ListenerRoute;
  /** The bound port (`route.port` may be 0). */
  readonly localPort: number;
  /** The listener is closing (removed, or ebb stops): a flow closed by ebb now is closed for 'shutdown'. */
  readonly closing: boolean;
  readonly protocol: 'tcp' | 'tls';
  /** The flow has ended (both sockets closed). */
  flowClosed(flow: TcpFlow): void;
}

const enum Phase {
  Connecting,
  Open,
  /** ebb sent FIN both ways and waits for the peers to close. */
  Closing,
  Closed,
}

/** The two sockets a flow reads, as its readers name them to `directRead`. */
const CLIENT_SIDE = 0;
const TARGET_SIDE = 1;

/**
 * One TCP flow, as an NLB carries it: accepted from a client, pinned to one target of the listener's
 * group for its whole life, bytes piped both ways with back-pressure, each side's FIN passed to the
 * other (half-close), a reset on one side passed on as a reset of the other. It counts as an open
 * tunnel of its target's entry from the pick to its end, so a drain waits for it and ends early when
 * it closes.
 *
 * It ends when both sockets have closed. ebb closes it on an idle timeout (RST both ways, as NLB),
 * at a drain deadline or a listener's close deadline (`terminate`: FIN both ways first, then RST
 * after the grace), and at once on `close`.
 */
export class TcpFlow implements OpenTunnel, IdleWatched, DirectReadSink {
  moved = false;
  /** The idle sweep's record: when it last saw this flow move, and its index there (idle-sweep.ts). */
  quietSince = 0;
  sweepSlot = -1;
  /** Its index in its listener's flows, and in its target entry's open tunnels (shared/slot-set.ts). */
  listenerSlot = -1;
  tunnelSlot = -1;
  readonly clientAddress: string;
  readonly clientPort: number;
  entry: TargetEntry | null = null;
  #target: Socket | null = null;
  #toTarget: DirectWriter | null = null;
  readonly #toClient: DirectWriter;
  #phase = Phase.Connecting;
  #reason: FlowEndReason | null = null;
  #resetByEbb = false;
  #groupArn: string | null = null;
  #targetAddress: string | null = null;
  #clientClosed = false;
  #targetClosed = true;
  #receivedBytes = 0;
  #sentBytes = 0;
  readonly #startedAt = performance.now();
  readonly #startTime = Date.now();
  #connectMs = -1;
  #graceTimer: NodeJS.Timeout | null = null;
  #done: Promise<void> | null = null;
  #resolveDone: (() => void) | null = null;

  readonly #client: Socket;
  readonly #host: ProxyHost;
  readonly #listener: FlowListener;
  readonly #tls: TlsFacts | null;

  /**
   * `proxied`: the client a load balancer in front of ebb named in a PROXY header (the flow's client
   * address and port, in its messages and in the PROXY header ebb sends on); null: the connection's own.
   */
  constructor(client: Socket, host: ProxyHost, listener: FlowListener, tls: TlsFacts | null = null, proxied: ProxiedClient | null = null) {
    this.#client = client;
    this.#host = host;
    this.#listener = listener;
    this.#tls = tls;
    this.clientAddress = proxied?.address ?? client.remoteAddress ?? '';
    this.clientPort = proxied?.port ?? client.remotePort ?? 0;
    // A plain TCP client is read into a buffer of its own (direct-reads.ts); a TLS one as a stream.
    const reader = new DirectReader(this, CLIENT_SIDE);
    if (tls !== null || !reader.readInPlace(client)) {
      client.on('data', (b: Buffer) => {
        if (this.#fromClient(b) === 'held-full') this.#client.pause();
      });
    }
    // The client's bytes wait in its socket until the target is connected.
    client.pause();
    client.on('end', () => this.#clientEnded());
    client.on('error', (err: NodeJS.ErrnoException) => this.#sideFailed('client', err));
    client.on('close', () => this.#clientSocketClosed());
    const targetMayRead = (): void => {
      if (this.#phase === Phase.Open) this.#target?.resume();
    };
    client.on('drain', targetMayRead);
    this.#toClient = new DirectWriter(client, targetMayRead);
  }

  /** Picks a target and connects to it; the client is reset when there is none or it cannot be reached. */
  start(): void {
    const host = this.#host;
    const route = this.#listener.route;
    const arn = route.targetGroupArn;
    const group = arn === null ? undefined : host.snapshot.targetGroups.get(arn);
    if (group !== undefined) this.#groupArn = group.arn;
    const picked = group !== undefined && group.protocol === 'TCP' ? pickTarget(group, host.rotation(group.arn), host.pickInputs) : null;
    const entry = picked === null ? undefined : host.entries.get(picked.key);
    if (group === undefined || entry === undefined) {
      this.#reason = 'no_target';
      this.#resetByEbb = true;
      resetSocket(this.#client);
      return;
    }
    this.entry = entry;
    this.#targetAddress = entry.host.includes(':') ? `[${entry.host}]:${entry.port}` : `${entry.host}:${entry.port}`;
    entry.tunnelOpened(this);
    if (flowOpenChannel.hasSubscribers) {
      flowOpenChannel.publish({ dataPlaneId: host.id, listenerArn: route.arn, targetGroupArn: group.arn, targetKey: entry.key } satisfies FlowOpenMessage);
    }
    const proxyHeader = group.proxyProtocolV2
      ? encodeProxyV2({
          sourceAddress: this.clientAddress,
          sourcePort: this.clientPort,
          destinationAddress: this.#client.localAddress ?? '',
          destinationPort: this.#client.localPort ?? 0,
        })
      : null;
    this.#targetClosed = false;
    const reader = new DirectReader(this, TARGET_SIDE);
    const target = net.connect({ host: entry.host, port: entry.port, noDelay: true, allowHalfOpen: true, onread: reader.option });
    reader.takeOver(target);
    this.#target = target;
    target.setTimeout(route.settings.targetConnectTimeoutMs);
    target.once('timeout', () => {
      if (this.#phase === Phase.Connecting) this.#connectFailed('ETIMEDOUT');
    });
    target.once('connect', () => this.#connected(target, proxyHeader));
    target.on('end', () => this.#targetEnded());
    target.on('error', (err: NodeJS.ErrnoException) => this.#sideFailed('target', err));
    target.on('close', () => this.#targetSocketClosed());
    const clientMayRead = (): void => {
      if (this.#phase === Phase.Open) this.#client.resume();
    };
    target.on('drain', clientMayRead);
    this.#toTarget = new DirectWriter(target, clientMayRead);
  }

  #connected(target: Socket, proxyHeader: Buffer | null): void {
    if (this.#phase !== Phase.Connecting) return;
    this.#phase = Phase.Open;
    this.#connectMs = performance.now() - this.#startedAt;
    target.setTimeout(0);
    if (proxyHeader !== null) target.write(proxyHeader);
    this.#client.resume();
  }

  #connectFailed(code: string): void {
    const host = this.#host;
    const entry = this.entry;
    host.log({ level: 'warn', msg: 'flow could not reach its target', dataPlane: host.id, listener: this.#listener.route.arn, targetKey: entry?.key, error: code });
    if (upstreamErrorChannel.hasSubscribers && entry !== null) {
      const kind = code === 'ETIMEDOUT' ? 'connect-timeout' : 'connect-refused';
      upstreamErrorChannel.publish({ dataPlaneId: host.id, targetKey: entry.key, reason: `${kind}:${code}` } satisfies UpstreamErrorMessage);
    }
    this.#reason ??= 'connect_failed';
    this.#resetByEbb = true;
    this.#phase = Phase.Closed;
    this.#target?.destroy();
    resetSocket(this.#client);
  }

  /** A read of either socket (DirectReader): passed on to the other. */
  directRead(chunk: Buffer, side: number): ReadOutcome {
    return side === CLIENT_SIDE ? this.#fromClient(chunk) : this.#fromTarget(chunk);
  }

  #fromClient(b: Buffer): ReadOutcome {
    this.#receivedBytes += b.length;
    this.moved = true;
    // After ebb's FIN nothing more goes to the target; the client's bytes are read (so its FIN is seen) and dropped.
    const toTarget = this.#toTarget;
    if (this.#phase !== Phase.Open || toTarget === null) return 'free';
    return toTarget.write(b);
  }

  #fromTarget(b: Buffer): ReadOutcome {
    this.moved = true;
    if (this.#phase !== Phase.Open) return 'free';
    this.#sentBytes += b.length;
    return this.#toClient.write(b);
  }

  /** The client's FIN: passed to the target, whose answer may still come (half-close). */
  #clientEnded(): void {
    if (this.#phase === Phase.Open) this.#toTarget?.end();
  }

  /** The target's FIN: passed to the client. */
  #targetEnded(): void {
    if (this.#phase === Phase.Open) this.#toClient.end();
  }

  /** An error on one side (a reset, most often): the other side is reset too. */
  #sideFailed(side: 'client' | 'target', err: NodeJS.ErrnoException): void {
    if (side === 'target' && this.#phase === Phase.Connecting) {
      this.#connectFailed(err.code ?? 'EUNKNOWN');
      return;
    }
    if (this.#reason === null) {
      this.#reason = side === 'client' ? 'client_reset' : 'target_reset';
    }
    this.#phase = Phase.Closed;
    // Both sides, the failed one too: a TLS client's error (a renegotiation refused) leaves its socket
    // open, and the flow ends only once both sockets have closed. That one is destroyed, not reset: its
    // error comes from inside OpenSSL's handshake, and resetting the TCP socket beneath the TLS one
    // there crashes Node 24 (SIGSEGV).
    if (side === 'client') {
      this.#resetTarget();
      this.#client.destroy();
    } else resetSocket(this.#client);
  }

  #clientSocketClosed(): void {
    this.#clientClosed = true;
    if (this.#phase === Phase.Connecting) {
      // The client went away before the target answered: nothing to pass on.
      this.#reason ??= 'client_reset';
      this.#phase = Phase.Closed;
      this.#resetTarget();
    }
    this.#maybeFinished();
  }

  #targetSocketClosed(): void {
    this.#targetClosed = true;
    this.#maybeFinished();
  }

  /** The idle timeout: NLB resets both sides. */
  idleExpired(): void {
    if (this.#phase === Phase.Closed) return;
    this.#reason ??= 'idle_timeout';
    this.#resetByEbb = true;
    this.#resetBoth();
  }

  /**
   * Closes politely: FIN to both sides (what each was sent still arrives), then, if the flow has not
   * closed after `graceMs`, RST both. Resolves when the flow has ended.
   */
  terminate(graceMs: number): Promise<void> {
    if (this.#phase === Phase.Closed) return this.#whenDone();
    this.#reason ??= this.#listener.closing ? 'shutdown' : 'terminated';
    if (this.#phase === Phase.Connecting) {
      this.close();
      return this.#whenDone();
    }
    if (this.#phase === Phase.Open) {
      this.#phase = Phase.Closing;
      const target = this.#target;
      // Keep reading both sides, so each peer's FIN is seen and the sockets can close.
      this.#client.resume();
      target?.resume();
      // Each FIN after the write that side's writer has in flight (DirectWriter.end).
      this.#toClient.end();
      this.#toTarget?.end();
      this.#graceTimer = setTimeout(() => {
        this.#resetByEbb = true;
        this.#resetBoth();
      }, graceMs);
      this.#graceTimer.unref();
    }
    return this.#whenDone();
  }

  /** Both sides reset now. */
  close(): void {
    if (this.#clientClosed && this.#targetClosed) return;
    this.#reason ??= 'shutdown';
    this.#resetByEbb = true;
    this.#resetBoth();
  }

  #resetBoth(): void {
    this.#phase = Phase.Closed;
    this.#resetTarget();
    resetSocket(this.#client);
  }

  /** A target still connecting is dropped at once (a reset would wait for the connection). */
  #resetTarget(): void {
    const target = this.#target;
    if (target === null) return;
    if (target.connecting) target.destroy();
    else resetSocket(target);
  }

  #whenDone(): Promise<void> {
    if (this.#done === null) {
      this.#done = new Promise<void>((resolve) => {
        if (this.#clientClosed && this.#targetClosed) resolve();
        else this.#resolveDone = resolve;
      });
    }
    return this.#done;
  }

  #maybeFinished(): void {
    if (!this.#clientClosed || !this.#targetClosed) return;
    this.#phase = Phase.Closed;
    if (this.#graceTimer !== null) clearTimeout(this.#graceTimer);
    const entry = this.entry;
    if (entry !== null) {
      entry.tunnelClosed(this);
      this.#host.workEnded(entry);
    }
    this.#listener.flowClosed(this);
    if (flowEndChannel.hasSubscribers) this.#publishEnd();
    this.#resolveDone?.();
  }

  #publishEnd(): void {
    const route = this.#listener.route;
    const entry = this.entry;
    flowEndChannel.publish({
      dataPlaneId: this.#host.id,
      listenerArn: route.arn,
      listenerPort: this.#listener.localPort,
      protocol: this.#listener.protocol,
      targetGroupArn: this.#groupArn,
      targetKey: entry === null ? null : entry.key,
      target: this.#targetAddress,
      clientAddress: this.clientAddress,
      clientPort: this.clientPort,
      startTime: this.#startTime,
      durationMs: performance.now() - this.#startedAt,
      connectMs: this.#connectMs,
      receivedBytes: this.#receivedBytes,
      sentBytes: this.#sentBytes,
      reason: this.#reason ?? 'closed',
      resetByEbb: this.#resetByEbb,
      tls: this.#tls,
    } satisfies FlowEndMessage);
  }
}
