import { Gauge, type Registry } from 'prom-client';
import type { FlowEndMessage, FlowOpenMessage, Http2SessionEndMessage, TlsErrorMessage } from '../../dataplane/channels.ts';
import { listenerLoadBalancerDimension } from './dimensions.ts';
import { CounterFamily, type CounterSeries } from './series-set.ts';

/**
 * What is counted per client connection rather than per request: NLB's flow metrics (AWS
 * documentation, Elastic Load Balancing, "CloudWatch metrics for your Network Load Balancer"), from
 * the data plane's `ebb:flow:open` and `ebb:flow:end` messages; the ClientTLSNegotiationErrorCount
 * that ALB and NLB both have, from `ebb:tls:error`; and ebb's own counts of HTTP/2 connections, from
 * `ebb:http2:session:end`. Labelled by `load_balancer`, the one dimension CloudWatch gives these
 * besides the Availability Zone.
 *
 * A flow is one TCP connection from a client carried to one target (a TLS flow: decrypted by ebb on
 * the way). Each message costs a Map lookup by its listener's ARN and a few additions: the load
 * balancer's state and series are kept per listener, as the request metrics keep theirs
 * (./request-metrics.ts), and forgotten at each scrape's pruning.
 */

const LB = ['load_balancer'] as const;
type LbLabel = (typeof LB)[number];
const MEMO_BOUND = 1024;

/** One load balancer's flows: the open ones counted here, its series made when first added to. */
interface LoadBalancerFlows {
  readonly labels: { readonly load_balancer: string };
  /** Flows given a target and not yet ended. */
  active: number;
  newFlows: CounterSeries | null;
  processedBytes: CounterSeries | null;
  clientResets: CounterSeries | null;
  targetResets: CounterSeries | null;
  elbResets: CounterSeries | null;
  tlsErrors: CounterSeries | null;
  http2ClientResets: CounterSeries | null;
  /** By end reason. */
  readonly http2Sessions: Map<string, CounterSeries>;
}

export interface ConnectionMetricsOptions {
  readonly registers: readonly Registry[];
  /** Runs before any of these metrics is read (the scrape's pruning). */
  readonly beforeRead: () => void;
  /** The ProcessedBytes series of a listener's load balancer: one metric for ALB's bytes and NLB's. */
  readonly processedBytesOf: (listenerArn: string) => CounterSeries;
}

export class ConnectionMetrics {
  readonly #newFlows: CounterFamily<LbLabel>;
  readonly #clientResets: CounterFamily<LbLabel>;
  readonly #targetResets: CounterFamily<LbLabel>;
  readonly #elbResets: CounterFamily<LbLabel>;
  readonly #tlsErrors: CounterFamily<LbLabel>;
  readonly #http2Sessions: CounterFamily<LbLabel | 'reason'>;
  readonly #http2ClientResets: CounterFamily<LbLabel>;
  readonly #processedBytesOf: (listenerArn: string) => CounterSeries;
  /** By load balancer dimension: kept across scrapes (the open flows are a state), dropped with the load balancer. */
  readonly #loadBalancers = new Map<string, LoadBalancerFlows>();
  /** By listener ARN: the same objects as #loadBalancers, found without working out the dimension. */
  readonly #listeners = new Map<string, LoadBalancerFlows>();

  constructor(options: ConnectionMetricsOptions) {
    const { registers, beforeRead } = options;
    this.#processedBytesOf = options.processedBytesOf;
    const counter = (name: string, help: string): CounterFamily<LbLabel> => new CounterFamily({ name, help, labelNames: LB, registers, collect: beforeRead });
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- collect() is called with the metric as `this`
    const self = this;
    new Gauge({
      name: 'ebb_active_flow_count',
      help: 'ActiveFlowCount: TCP and TLS flows from clients to targets open now, from the target chosen (the connection to it being made) to the flow\'s end',
      labelNames: LB,
      registers: [...registers],
      collect() {
        beforeRead();
        this.reset();
        for (const [load_balancer, lb] of self.#loadBalancers) this.labels({ load_balancer }).set(lb.active);
      },
    });
    this.#newFlows = counter('ebb_new_flow_count', 'NewFlowCount: TCP and TLS flows from clients to targets, counted when the target is chosen');
    this.#clientResets = counter('ebb_tcp_client_reset_count', 'TCP_Client_Reset_Count: flows the client reset (ebb passed the reset on to the target)');
    this.#targetResets = counter('ebb_tcp_target_reset_count', 'TCP_Target_Reset_Count: flows the target reset (ebb passed the reset on to the client)');
    this.#elbResets = counter(
      'ebb_tcp_elb_reset_count',
      'TCP_ELB_Reset_Count: flows ebb itself reset (no target, the target unreachable, a drain deadline or shutdown after the grace)',
    );
    this.#tlsErrors = counter(
      'ebb_client_tls_negotiation_error_count',
      'ClientTLSNegotiationErrorCount: TLS handshakes from clients to HTTPS and TLS listeners that failed (no shared cipher or protocol, an unknown server name, not TLS, a timeout)',
    );
    // ebb's own: ALB has no metric of HTTP/2 connections (its streams are requests, in RequestCount).
    this.#http2Sessions = new CounterFamily({
      name: 'ebb_http2_sessions_total',
      help: 'HTTP/2 client connections ended, by reason: closed (by the client), idle_timeout, shutdown, rapid_reset (streams reset faster than the bound: GOAWAY ENHANCE_YOUR_CALM), error',
      labelNames: ['load_balancer', 'reason'] as const,
      registers,
      collect: beforeRead,
    });
    this.#http2ClientResets = counter('ebb_http2_client_stream_resets_total', 'HTTP/2 streams the client reset before ebb was done with them');
  }

  /** A flow was given a target. */
  flowOpened(m: FlowOpenMessage): void {
    const lb = this.#of(m.listenerArn);
    lb.active++;
    (lb.newFlows ??= this.#newFlows.series(lb.labels)).inc();
  }

  /** A flow ended (given a target or not). */
  flowEnded(m: FlowEndMessage): void {
    const lb = this.#of(m.listenerArn);
    // Only a flow that was given a target was opened (tcp-flow.ts publishes the open with the pick).
    if (m.targetKey !== null && lb.active > 0) lb.active--;
    const bytes = m.receivedBytes + m.sentBytes;
    if (bytes > 0) {
      (lb.processedBytes ??= this.#processedBytesOf(m.listenerArn)).inc(bytes);
    }
    if (m.reason === 'client_reset') (lb.clientResets ??= this.#clientResets.series(lb.labels)).inc();
    else if (m.reason === 'target_reset') (lb.targetResets ??= this.#targetResets.series(lb.labels)).inc();
    if (m.resetByEbb) (lb.elbResets ??= this.#elbResets.series(lb.labels)).inc();
  }

  /** A client's TLS handshake failed, on an HTTPS listener or a TLS one. */
  tlsFailed(m: TlsErrorMessage): void {
    const lb = this.#of(m.listenerArn);
    (lb.tlsErrors ??= this.#tlsErrors.series(lb.labels)).inc();
  }

  /** An HTTP/2 client connection ended. */
  http2SessionEnded(m: Http2SessionEndMessage): void {
    const lb = this.#of(m.listenerArn);
    let sessions = lb.http2Sessions.get(m.reason);
    if (sessions === undefined) {
      sessions = this.#http2Sessions.series({ load_balancer: lb.labels.load_balancer, reason: m.reason });
      lb.http2Sessions.set(m.reason, sessions);
    }
    sessions.inc();
    if (m.clientResets > 0) (lb.http2ClientResets ??= this.#http2ClientResets.series(lb.labels)).inc(m.clientResets);
  }

  /**
   * Removes the series and the open-flow counts of load balancers that are gone, and forgets the
   * series kept (they may have been pruned). The open-flow counts of the others stay.
   */
  prune(loadBalancers: ReadonlySet<string>): void {
    this.#listeners.clear();
    for (const [dim, lb] of this.#loadBalancers) {
      if (loadBalancers.has(dim)) {
        lb.newFlows = lb.processedBytes = lb.clientResets = lb.targetResets = lb.elbResets = lb.tlsErrors = lb.http2ClientResets = null;
        lb.http2Sessions.clear();
      } else {
        this.#loadBalancers.delete(dim);
      }
    }
    const kept = (l: { load_balancer: string }): boolean => loadBalancers.has(l.load_balancer);
    for (const f of [this.#newFlows, this.#clientResets, this.#targetResets, this.#elbResets, this.#tlsErrors, this.#http2ClientResets]) f.prune(kept);
    this.#http2Sessions.prune(kept);
  }

  #of(listenerArn: string): LoadBalancerFlows {
    let lb = this.#listeners.get(listenerArn);
    if (lb !== undefined) return lb;
    if (this.#listeners.size >= MEMO_BOUND) this.#listeners.clear();
    const dim = listenerLoadBalancerDimension(listenerArn);
    lb = this.#loadBalancers.get(dim);
    if (lb === undefined) {
      lb = {
        labels: { load_balancer: dim },
        active: 0,
        newFlows: null,
        processedBytes: null,
        clientResets: null,
        targetResets: null,
        elbResets: null,
        tlsErrors: null,
        http2ClientResets: null,
        http2Sessions: new Map(),
      };
      this.#loadBalancers.set(dim, lb);
    }
    this.#listeners.set(listenerArn, lb);
    return lb;
  }
}
