import diagnosticsChannel from 'node:diagnostics_channel';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ControlApi } from '../../control/control-api.ts';
import type { ConfigReloadEvent } from '../../control/events.ts';
import type { DrainRecord } from '../../control/outputs.ts';
import { CHANNEL_NAMES, type ConnectionLostMessage, type ConnectionMessage, type ConnectionRefusedMessage, type FlowEndMessage, type FlowOpenMessage, type Http2SessionEndMessage, type RequestEndMessage, type TlsErrorMessage } from '../../dataplane/channels.ts';
import type { RequestDigestMessage } from '../../dataplane/request-digest.ts';
import type { HealthObservation } from '../../domain/health-port.ts';
import { ACCESS_LOG_COUNTERS, type AccessLogCounters } from '../access-log/counters.ts';
import { loadBalancerDimension, parseTargetKey, targetGroupDimension } from './dimensions.ts';
import { ClientConnectionMetrics } from './client-connection-metrics.ts';
import { ConnectionMetrics } from './connection-metrics.ts';
import { RequestMetrics } from './request-metrics.ts';
import { CounterFamily, HistogramFamily } from './series-set.ts';
import type { ObservedDataPlane } from './observed-data-plane.ts';
import { registerTargetGauges, type ScrapeView } from './target-gauges.ts';
import { registerAutoScalingMetrics } from './autoscaling-metrics.ts';
import type { AutoScalingApi } from '../../autoscaling/autoscaling-api.ts';
import { registerWorkerMetrics, type WorkerCounters } from './worker-metrics.ts';

/**
 * ebb's Prometheus metrics: ELB's CloudWatch metrics under their CloudWatch names, and what
 * CloudWatch does not have (targets by state, work in flight per target, drains), in one prom-client
 * registry. docs/metrics.md lists them all with their CloudWatch counterparts.
 *
 * Where the numbers come from:
 * - requests: the data plane's `ebb:request:end` channel, one message per request (counted as it
 *   ends, nothing kept per request: ./request-metrics.ts);
 * - flows of TCP and TLS listeners, failed TLS handshakes, HTTP/2 connections: the `ebb:flow:*`,
 *   `ebb:tls:error` and `ebb:http2:session:end` channels (./connection-metrics.ts);
 * - client connections accepted, closed and refused: the `ebb:connection:*` channels, which every
 *   listener's connection limit publishes, in this process or in a worker, and `ebb:connection:lost`,
 *   which this process publishes when a worker is gone (./client-connection-metrics.ts);
 * - drains: the control plane's `drain:end` events; health checks: each observation, as the control
 *   plane gets it;
 * - everything that is a state (targets by state, in flight, tunnels, healthy hosts) is read when
 *   Prometheus scrapes, through prom-client's `collect()` (prom-client README, "Gauge": "collect …
 *   invoked when the registry collects its metrics"), so it costs nothing between scrapes and the
 *   series of a target that is gone are simply not written (the gauges of targets: ./target-gauges.ts).
 *
 * Labels are bounded: load balancers, target groups, registered targets, status classes, outcomes and
 * reason codes; never a client address or a path.
 */

export interface EbbMetricsOptions {
  readonly control: ControlApi;
  /** Its group metrics join the registry (autoscaling-metrics.ts). */
  readonly autoscaling?: AutoScalingApi;
  readonly dataPlanes: readonly ObservedDataPlane[];
  /** The data-plane workers' counters (`--workers N`, N ≥ 2; ./worker-metrics.ts); absent in one process. */
  readonly workers?: () => WorkerCounters;
  /** prom-client's default process and Node.js metrics (`collectDefaultMetrics`); default true. */
  readonly processMetrics?: boolean;
}

/** How a configuration reload ended (SIGHUP), as the `config:reload` event says. */
type ReloadResult = ConfigReloadEvent['outcome'];
const RELOAD_RESULTS = ['applied', 'refused', 'restored', 'restore-failed'] as const satisfies readonly ReloadResult[];

/** Drain durations, in seconds: from a drain that ends at once up to the longest delay AWS allows (3600 s). */
/** Health checks: a local target answers in a millisecond; the default timeout is 5 s. */
const HEALTH_CHECK_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const DRAIN_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const DRAIN_OUTCOMES = ['idle', 'deadline', 'cancelled'] as const satisfies ReadonlyArray<DrainRecord['outcome']>;

/** The access-log writers' process-wide counters (src/telemetry/access-log/counters.ts), as Prometheus counters. */
const ACCESS_LOG_METRICS: ReadonlyArray<readonly [keyof AccessLogCounters, string, string]> = [
  ['linesWritten', 'ebb_access_log_lines_written_total', 'Access-log lines written'],
  [
    'linesDropped',
    'ebb_access_log_lines_dropped_total',
    'Access-log lines dropped: the bounded buffer was full (the disk or the reader slower than traffic) or their write failed; proxying never waits for the log',
  ],
  ['writeErrors', 'ebb_access_log_write_errors_total', 'Access-log writes, opens, renames or compressions that failed'],
  ['filesRotated', 'ebb_access_log_files_rotated_total', 'Access-log files closed and replaced (size or time rotation, S3-layout intervals)'],
];

export class EbbMetrics {
  /** The registry `/metrics` renders. */
  readonly registry = new Registry();
  readonly #control: ControlApi;
  readonly #dataPlanes: readonly ObservedDataPlane[];
  readonly #unsubscribe: Array<() => void> = [];

  // Client connections per load balancer (CloudWatch dimension LoadBalancer), of every process.
  readonly #clientConnections: ClientConnectionMetrics;
  // Requests, per load balancer and per load balancer and target group (./request-metrics.ts).
  readonly #requests: RequestMetrics;
  // NLB's flows, TLS handshakes that failed, HTTP/2 connections (./connection-metrics.ts).
  readonly #connections: ConnectionMetrics;

  // Per target group.
  readonly #drains: CounterFamily<'target_group' | 'outcome'>;
  readonly #drainDuration: HistogramFamily<'target_group' | 'outcome'>;
  readonly #drainCut: ReadonlyArray<readonly ['requestsCut' | 'tunnelsClosed' | 'connectionsClosed', CounterFamily<'target_group'>]>;
  readonly #healthChecks: CounterFamily<'target_group' | 'result'>;
  readonly #healthCheckDuration: HistogramFamily<'target_group' | 'result'>;
  readonly #reloads: Counter<'result'>;

  #view: ScrapeView | null = null;

  constructor(options: EbbMetricsOptions) {
    this.#control = options.control;
    this.#dataPlanes = options.dataPlanes;
    const registers = [this.registry];
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- collect() is called with the metric as `this`
    const self = this;
    // Every family reads the scrape's view first, so what it shows is pruned (#scrape).
    const beforeRead = (): void => void this.#scrape();
    const family = <L extends string>(name: string, help: string, labelNames: readonly L[]): CounterFamily<L> =>
      new CounterFamily({ name, help, labelNames, registers, collect: beforeRead });

    // Help texts quote or follow the CloudWatch definitions (AWS documentation, "CloudWatch metrics for
    // your Application Load Balancer"), saying where ebb differs.
    this.#clientConnections = new ClientConnectionMetrics({ registers, beforeRead });
    this.#requests = new RequestMetrics(registers, beforeRead);
    this.#connections = new ConnectionMetrics({ registers, beforeRead, processedBytesOf: (arn) => this.#requests.processedBytesOf(arn) });
    // Scrape-time gauges of targets as they are now (./target-gauges.ts).
    registerTargetGauges(this.registry, () => this.#scrape(), this.#dataPlanes);
    if (options.autoscaling !== undefined) this.#unsubscribe.push(registerAutoScalingMetrics(this.registry, options.autoscaling));
    if (options.workers !== undefined) registerWorkerMetrics(this.registry, options.workers);

    // ebb's own.
    this.#drains = new CounterFamily({
      name: 'ebb_drains_total',
      help: 'Drains ended, by outcome: idle (nothing left in flight), deadline (the deregistration delay ran out and what was left was cut), cancelled (re-registered, or the group deleted)',
      labelNames: ['target_group', 'outcome'] as const,
      registers,
      collect: () => {
        // Every outcome of every group is written, 0 until it happens, so rate() and absent() work from
        // the first scrape (Prometheus documentation, Instrumentation, "Avoid missing metrics").
        for (const g of this.#scrape().groups) for (const outcome of DRAIN_OUTCOMES) this.#drains.series({ target_group: g.dim, outcome });
      },
    });
    this.#drainDuration = new HistogramFamily({
      name: 'ebb_drain_duration_seconds',
      help: 'How long drains took, from deregistration to their end, by outcome',
      labelNames: ['target_group', 'outcome'] as const,
      buckets: DRAIN_BUCKETS,
      registers,
      collect: beforeRead,
    });
    this.#drainCut = [
      ['requestsCut', family('ebb_drain_requests_cut_total', 'Requests cut when a drain reached its deadline', ['target_group'] as const)],
      ['tunnelsClosed', family('ebb_drain_tunnels_closed_total', 'WebSocket tunnels closed when a drain reached its deadline', ['target_group'] as const)],
      ['connectionsClosed', family('ebb_drain_connections_closed_total', 'Connections (to clients and targets) closed when a drain reached its deadline', ['target_group'] as const)],
    ];
    this.#healthChecks = family(
      'ebb_health_checks_total',
      'Active health checks, by result: success, or the failure reason code (Target.Timeout, Target.ResponseCodeMismatch, Target.FailedHealthChecks)',
      ['target_group', 'result'] as const,
    );
    this.#healthCheckDuration = new HistogramFamily({
      name: 'ebb_health_check_duration_seconds',
      help: 'How long active health checks took, from the start of the check to its answer (or its timeout), by result: success or failure',
      labelNames: ['target_group', 'result'] as const,
      buckets: HEALTH_CHECK_BUCKETS,
      registers,
      collect: beforeRead,
    });
    this.#reloads = new Counter({
      name: 'ebb_config_reloads_total',
      help: 
'Configuration file reloads (SIGHUP), by result: applied, refused (nothing changed), restored (failed part-way, taken back), restore-failed',
      labelNames: ['result'] as const,
      registers,
    });
    for (const result of RELOAD_RESULTS) this.#reloads.labels({ result }).inc(0);
    new Gauge({
      name: 'ebb_client_connection_limit',
      help: 'Client connections allowed at once across all listeners (derived from the open-file limit unless configured; +Inf: none)',
      registers,
      collect() {
        const limit = self.#dataPlanes.reduce((n, dp) => n + dp.connectionLimit.maxConnections, 0);
        this.set(limit);
      },
    });
    for (const [field, name, help] of ACCESS_LOG_METRICS) {
      // The writers' counters are totals since the process started; each scrape adds what is new.
      let seen = 0;
      new Counter({
        name,
        help,
        registers,
        collect() {
          const total = ACCESS_LOG_COUNTERS[field];
          this.inc(Math.max(0, total - seen));
          seen = Math.max(seen, total);
        },
      });
    }
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });

    this.#subscribe(CHANNEL_NAMES.requestEnd, (m) => this.#requests.requestEnded(m as RequestEndMessage));
    // A worker's request ends, folded (its relay checked the digest's shape).
    this.#subscribe(CHANNEL_NAMES.requestDigest, (m) => this.#requests.digested(m as RequestDigestMessage));
    this.#subscribe(CHANNEL_NAMES.flowOpen, (m) => this.#connections.flowOpened(m as FlowOpenMessage));
    this.#subscribe(CHANNEL_NAMES.flowEnd, (m) => this.#connections.flowEnded(m as FlowEndMessage));
    this.#subscribe(CHANNEL_NAMES.tlsError, (m) => this.#connections.tlsFailed(m as TlsErrorMessage));
    this.#subscribe(CHANNEL_NAMES.http2SessionEnd, (m) => this.#connections.http2SessionEnded(m as Http2SessionEndMessage));
    this.#subscribe(CHANNEL_NAMES.connectionOpen, (m) => this.#clientConnections.opened(m as ConnectionMessage));
    this.#subscribe(CHANNEL_NAMES.connectionClose, (m) => this.#clientConnections.stated(m as ConnectionMessage));
    this.#subscribe(CHANNEL_NAMES.connectionCount, (m) => this.#clientConnections.stated(m as ConnectionMessage));
    this.#subscribe(CHANNEL_NAMES.connectionRefused, (m) => this.#clientConnections.refused(m as ConnectionRefusedMessage));
    this.#subscribe(CHANNEL_NAMES.connectionLost, (m) => this.#clientConnections.lost(m as ConnectionLostMessage));
    this.#unsubscribe.push(this.#control.events.on('drain:end', (r) => this.#drainEnded(r)));
    this.#unsubscribe.push(this.#control.events.on('config:reload', (e) => this.#reloads.labels({ result: e.outcome }).inc()));
  }

  /** One active health check's result (wired to the health checker by the composition root). */
  healthObservation(o: HealthObservation): void {
    const parts = parseTargetKey(o.key);
    if (parts === null) return;
    const target_group = targetGroupDimension(parts.targetGroupArn);
    this.#healthChecks.series({ target_group, result: o.ok ? 'success' : o.reason }).inc();
    if (o.durationMs !== undefined) this.#healthCheckDuration.series({ target_group, result: o.ok ? 'success' : 'failure' }).observe(o.durationMs / 1000);
  }

  /** The exposition, in the Prometheus text format (version 0.0.4), and its content type. */
  async render(): Promise<{ readonly contentType: string; readonly body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Stops listening to the channels and the control plane. */
  close(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
  }

  #subscribe(name: string, fn: (message: unknown) => void): void {
    const handler = (message: unknown): void => {
      try {
        fn(message);
      } catch (err) {
        // A metric must never break the request path that published the message.
        process.emitWarning(`ebb metrics: ${name} handler failed: ${String(err)}`, 'EbbMetricsWarning');
      }
    };
    diagnosticsChannel.subscribe(name, handler);
    this.#unsubscribe.push(() => diagnosticsChannel.unsubscribe(name, handler));
  }

  #drainEnded(r: DrainRecord): void {
    const tg = targetGroupDimension(r.targetGroupArn);
    this.#drains.series({ target_group: tg, outcome: r.outcome }).inc();
    this.#drainDuration.series({ target_group: tg, outcome: r.outcome }).observe(Math.max(0, r.endedAt - r.startedAt) / 1000);
    for (const [field, set] of this.#drainCut) {
      const n = r[field];
      if (n > 0) set.series({ target_group: tg }).inc(n);
    }
  }

  #allLoadBalancers(): ReturnType<ControlApi['describeLoadBalancers']> {
    return [...this.#control.describeLoadBalancers(), ...this.#control.describeLoadBalancers({ type: 'classic' })];
  }

  /**
   * What the control plane says, read once per scrape: prom-client calls every metric's `collect()`
   * in one synchronous pass (`Registry#metrics`), so the view is kept until the next microtask. Also
   * removes the series of load balancers and target groups that no longer exist.
   */
  #scrape(): ScrapeView {
    if (this.#view !== null) return this.#view;
    const loadBalancers = new Set(this.#allLoadBalancers().map((lb) => loadBalancerDimension(lb.arn)));
    const groups = this.#control.describeTargetGroups().map((tg) => ({
      arn: tg.arn,
      dim: targetGroupDimension(tg.arn),
      loadBalancers: this.#control.loadBalancersOfTargetGroup(tg.arn).map(loadBalancerDimension),
      targets: this.#control.describeTargetHealth(tg.arn),
    }));
    const view: ScrapeView = { loadBalancers, groups };
    this.#view = view;
    queueMicrotask(() => {
      this.#view = null;
    });
    this.#prune(view);
    return view;
  }

  #prune(view: ScrapeView): void {
    const groups = new Set(view.groups.map((g) => g.dim));
    this.#clientConnections.prune(view.loadBalancers);
    this.#requests.prune(view.loadBalancers, groups);
    this.#connections.prune(view.loadBalancers);
    for (const set of [this.#drains, this.#drainDuration, this.#healthChecks, this.#healthCheckDuration, ...this.#drainCut.map(([, s]) => s)]) {
      set.prune((l) => groups.has(l.target_group));
    }
  }
}
