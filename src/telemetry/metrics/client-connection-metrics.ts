import { Gauge, type Registry } from 'prom-client';
import type { ConnectionLostMessage, ConnectionMessage, ConnectionRefusedMessage } from '../../dataplane/channels.ts';
import { listenerLoadBalancerDimension } from './dimensions.ts';
import { CounterFamily, type CounterSeries } from './series-set.ts';

/**
 * ELB's client-connection metrics (NewConnectionCount, ActiveConnectionCount, RejectedConnectionCount)
 * from the `ebb:connection:open`, `:close`, `:refused` and `:count` messages, which the connection
 * limit of every listener publishes (src/dataplane/connection-limit.ts). With `ebb serve --workers N`
 * they are each worker's, re-published in ebb's own process (src/workers/remote-data-plane.ts); at a
 * hot restart the retiring ebb's reach the new one the same way. So one count covers every process,
 * as one load balancer.
 *
 * The open count is kept per process and listener as each message states it (`open`), never added up
 * step by step: a message lost on a worker's full link is made good by that process's next one, and
 * the ebb retiring at a hot restart states its counts when it begins to report here (`:count`). A
 * process that has ended takes its connections with it and cannot say so: ebb's process says it
 * instead (`ebb:connection:lost`), when it learns that worker or retiring ebb is gone, and its counts
 * are forgotten then. Nothing here asks the system about a pid, which might be another node's, or
 * another process's by now.
 *
 * An NLB's connections are flows (./connection-metrics.ts) and not in New or Active; its refusals are
 * in RejectedConnectionCount, which the connection limit counts for every listener alike.
 */

const LB = ['load_balancer'] as const;
type LbLabel = (typeof LB)[number];
const MEMO_BOUND = 1024;

/** What is kept for one listener ARN, found without working out its dimension again. */
interface ListenerSeries {
  readonly labels: { readonly load_balancer: string };
  /** A Network Load Balancer's listener: its connections are flows, not counted here. */
  readonly network: boolean;
  newConnections: CounterSeries | null;
  rejected: CounterSeries | null;
}

export interface ClientConnectionMetricsOptions {
  readonly registers: readonly Registry[];
  /** Runs before any of these metrics is read (the scrape's pruning). */
  readonly beforeRead: () => void;
}

export class ClientConnectionMetrics {
  readonly #newConnections: CounterFamily<LbLabel>;
  readonly #rejected: CounterFamily<LbLabel>;
  /** By pid, then listener ARN: the connections the process last said are open (only counts above 0). */
  readonly #open = new Map<number, Map<string, number>>();
  /** By listener ARN; forgotten at each pruning (the series may have been removed). */
  readonly #listeners = new Map<string, ListenerSeries>();
  /** The load balancers there are (dimensions), as the last pruning saw them. */
  #loadBalancers: ReadonlySet<string> = new Set();

  constructor(options: ClientConnectionMetricsOptions) {
    const { registers, beforeRead } = options;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- collect() is called with the metric as `this`
    const self = this;
    // Help texts follow the CloudWatch definitions (AWS documentation, "CloudWatch metrics for your Application Load Balancer").
    new Gauge({
      name: 'ebb_active_connection_count',
      help: 'ActiveConnectionCount: client connections open to the load balancer now (ebb counts client connections; CloudWatch adds those to targets)',
      labelNames: LB,
      registers: [...registers],
      collect() {
        beforeRead();
        this.reset();
        for (const [load_balancer, n] of self.#active()) this.labels({ load_balancer }).set(n);
      },
    });
    this.#newConnections = new CounterFamily({
      name: 'ebb_new_connection_count',
      help: 'NewConnectionCount: client connections the load balancer accepted',
      labelNames: LB,
      registers,
      collect: beforeRead,
    });
    this.#rejected = new CounterFamily({
      name: 'ebb_rejected_connection_count',
      help: 'RejectedConnectionCount: client connections refused because the load balancer had reached its connection limit',
      labelNames: LB,
      registers,
      collect: beforeRead,
    });
  }

  /** A listener accepted a client connection. */
  opened(m: ConnectionMessage): void {
    const l = this.#of(m.listenerArn);
    if (l.network) return;
    (l.newConnections ??= this.#newConnections.series(l.labels)).inc();
    this.#setOpen(m);
  }

  /** A client connection closed, or a process said its count of a listener's (`ebb:connection:count`). */
  stated(m: ConnectionMessage): void {
    if (!this.#of(m.listenerArn).network) this.#setOpen(m);
  }

  /** A client connection was refused at the connection limit. */
  refused(m: ConnectionRefusedMessage): void {
    const l = this.#of(m.listenerArn);
    (l.rejected ??= this.#rejected.series(l.labels)).inc();
  }

  /** A process is gone (a worker, the ebb retiring at a hot restart): the connections it held are no longer open. */
  lost(m: ConnectionLostMessage): void {
    this.#open.delete(m.pid);
  }

  /** Removes the series and open counts of load balancers that are gone, and forgets the series kept (they may have been pruned). */
  prune(loadBalancers: ReadonlySet<string>): void {
    this.#loadBalancers = loadBalancers;
    this.#listeners.clear();
    for (const [pid, listeners] of this.#open) {
      for (const arn of listeners.keys()) if (!loadBalancers.has(listenerLoadBalancerDimension(arn))) listeners.delete(arn);
      if (listeners.size === 0) this.#open.delete(pid);
    }
    const kept = (l: { load_balancer: string }): boolean => loadBalancers.has(l.load_balancer);
    this.#newConnections.prune(kept);
    this.#rejected.prune(kept);
  }

  /** Open connections by load balancer, every ALB and Classic one written (0 when none). */
  #active(): Map<string, number> {
    const active = new Map<string, number>();
    for (const dim of this.#loadBalancers) if (!isNetwork(dim)) active.set(dim, 0);
    for (const listeners of this.#open.values()) {
      for (const [arn, n] of listeners) {
        const dim = listenerLoadBalancerDimension(arn);
        const sum = active.get(dim);
        if (sum !== undefined) active.set(dim, sum + n);
      }
    }
    return active;
  }

  #setOpen(m: ConnectionMessage): void {
    let listeners = this.#open.get(m.pid);
    if (m.open > 0) {
      if (listeners === undefined) this.#open.set(m.pid, (listeners = new Map()));
      listeners.set(m.listenerArn, m.open);
    } else if (listeners !== undefined) {
      listeners.delete(m.listenerArn);
      if (listeners.size === 0) this.#open.delete(m.pid);
    }
  }

  #of(listenerArn: string): ListenerSeries {
    let l = this.#listeners.get(listenerArn);
    if (l !== undefined) return l;
    if (this.#listeners.size >= MEMO_BOUND) this.#listeners.clear();
    const dim = listenerLoadBalancerDimension(listenerArn);
    l = { labels: { load_balancer: dim }, network: isNetwork(dim), newConnections: null, rejected: null };
    this.#listeners.set(listenerArn, l);
    return l;
  }
}

/** A Network Load Balancer's dimension (`net/NAME/ID`); a Classic one's is its name alone, which has no `/`. */
function isNetwork(dim: string): boolean {
  return dim.startsWith('net/');
}
