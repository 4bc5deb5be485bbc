/**
 * EbbMetrics against a stub control plane and data plane: what each request-end message, drain and
 * health observation counts, where each series is labelled, and that the series of a target, group
 * or load balancer that is gone disappear. The exposition is read back with parse-prometheus-text-format.
 */
import assert from 'node:assert/strict';
import type { AutoScalingApi } from '../../autoscaling/autoscaling-api.ts';
import type { AutoScalingEvents } from '../../autoscaling/events.ts';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { Histogram } from 'prom-client';
import type { ControlApi } from '../../control/control-api.ts';
import type { ControlEvents } from '../../control/events.ts';
import type { DrainRecord, TargetHealthDescription } from '../../control/outputs.ts';
import { requestEndChannel, type RequestEndMessage } from '../../dataplane/channels.ts';
import { attachConnectionLimit, ConnectionLimit } from '../../dataplane/connection-limit.ts';
import type { HttpDataPlane } from '../../dataplane/http-data-plane.ts';
import type { ListenerRecord, LoadBalancerRecord, TargetGroupRecord } from '../../domain/resources.ts';
import { targetKey } from '../../domain/resources.ts';
import { ACCESS_LOG_COUNTERS, type AccessLogCounters } from '../access-log/counters.ts';
import { TypedEmitter } from '../../shared/typed-emitter.ts';
import { Scrape } from '../../../test/integration/metrics-scrape.ts';
import { EbbMetrics } from './ebb-metrics.ts';

const P = 'arn:aws:elasticloadbalancing:us-east-1:123456789012';
const LB_ARN = `${P}:loadbalancer/app/web/1111111111111111`;
const LISTENER_ARN = `${P}:listener/app/web/1111111111111111/aaaaaaaaaaaaaaaa`;
const TG_ARN = `${P}:targetgroup/web/2222222222222222`;
const LB = 'app/web/1111111111111111';
const TG = 'targetgroup/web/2222222222222222';
const PAIR = { load_balancer: LB, target_group: TG };

/** The control plane as the metrics read it: one load balancer, one listener, one group, its targets settable. */
class StubControl {
  readonly events = new TypedEmitter<ControlEvents>();
  loadBalancers: Array<Pick<LoadBalancerRecord, 'arn'>> = [{ arn: LB_ARN }];
  listeners: Array<Pick<ListenerRecord, 'arn' | 'address' | 'port' | 'loadBalancerArn'>> = [];
  groups: Array<Pick<TargetGroupRecord, 'arn'>> = [{ arn: TG_ARN }];
  targets: TargetHealthDescription[] = [];

  describeLoadBalancers(filter?: { type?: string }): unknown[] {
    return filter?.type === 'classic' ? [] : this.loadBalancers;
  }
  describeListeners(filter: { loadBalancerArn?: string }): unknown[] {
    return this.listeners.filter((l) => l.loadBalancerArn === filter.loadBalancerArn);
  }
  describeTargetGroups(): unknown[] {
    return this.groups;
  }
  loadBalancersOfTargetGroup(): string[] {
    return this.loadBalancers.map((l) => l.arn);
  }
  describeTargetHealth(arn: string): TargetHealthDescription[] {
    return this.groups.some((g) => g.arn === arn) ? this.targets : [];
  }
}

class StubDataPlane {
  readonly activityByKey = new Map<string, { requests: number; tunnels: number; completed: number; connections?: number }>();
  readonly connectionLimit = { maxConnections: 456 };
  activity(key: string): { requests: number; tunnels: number; completed: number; connections?: number } {
    return this.activityByKey.get(key) ?? { requests: 0, tunnels: 0, completed: 0 };
  }
}

function setup(t: { after(fn: () => void): void }): { control: StubControl; dataPlane: StubDataPlane; metrics: EbbMetrics; scrape: () => Promise<Scrape> } {
  const control = new StubControl();
  const dataPlane = new StubDataPlane();
  // Auto Scaling with no groups: its metrics are registered (autoscaling-metrics.test.ts has them with groups).
  const autoscaling = { events: new TypedEmitter<AutoScalingEvents>(), describeAutoScalingGroups: () => [] } as unknown as AutoScalingApi;
  const metrics = new EbbMetrics({
    control: control as unknown as ControlApi,
    autoscaling,
    dataPlanes: [dataPlane as unknown as HttpDataPlane],
    // As with --workers 2 (worker-metrics.test.ts has their values), so every metric the docs name is served.
    workers: () => ({ restarts: 0, connectionsLost: 0, telemetryDropped: 0, telemetryRefused: 0 }),
    processMetrics: false,
  });
  t.after(() => metrics.close());
  return { control, dataPlane, metrics, scrape: async () => new Scrape((await metrics.render()).body) };
}

function ended(over: Partial<RequestEndMessage>): void {
  requestEndChannel.publish({
    dataPlaneId: 'dp-test',
    listenerArn: LISTENER_ARN,
    listenerPort: 8080,
    targetGroupArn: TG_ARN,
    targetKey: targetKey(TG_ARN, '10.0.0.5', 80),
    target: '10.0.0.5:80',
    clientAddress: '192.0.2.10',
    clientPort: 50000,
    method: 'GET',
    url: '/private/path?user=42',
    version: 'HTTP/1.1',
    host: 'example.com',
    userAgent: 'curl/8',
    status: 200,
    targetStatus: 200,
    fromTarget: true,
    requestTime: 0,
    durationMs: 12,
    requestProcessingMs: 0.1,
    targetResponseMs: 10,
    responseProcessingMs: 0,
    receivedBytes: 100,
    sentBytes: 200,
    classification: 'Compliant',
    classificationReason: null,
    errorReason: null,
    tls: null,
    ...over,
  } satisfies RequestEndMessage);
}

/** A histogram's samples as prom-client holds them (the text parser flattens labelled histograms). */
async function histogram(metrics: EbbMetrics, name: string): Promise<ReadonlyArray<{ metricName?: string; labels: Partial<Record<string, string | number>>; value: number }>> {
  const h = metrics.registry.getSingleMetric(name) as Histogram | undefined;
  return (await h?.get())?.values ?? [];
}

function healthy(id: string, port: number, state: TargetHealthDescription['health'] = { state: 'healthy' }): TargetHealthDescription {
  return { id, port, healthCheckPort: String(port), health: state };
}

test("each request counts where CloudWatch counts it: the targets' codes apart from ebb's own", async (t) => {
  const { scrape } = setup(t);
  ended({}); // target 200
  ended({ status: 500, targetStatus: 500 }); // the target's 500
  ended({ status: 404, targetStatus: 404, targetResponseMs: 3 });
  ended({ status: 502, targetStatus: null, fromTarget: false, targetResponseMs: -1, errorReason: 'connect-refused:ECONNREFUSED' });
  ended({ status: 504, targetStatus: null, fromTarget: false, targetResponseMs: -1, errorReason: 'response-timeout' });
  ended({ status: 502, targetStatus: null, fromTarget: false, targetResponseMs: 50, errorReason: 'terminated' });
  // Answered by ebb before any target was chosen: not in RequestCount (CloudWatch's definition).
  ended({ status: 503, targetKey: null, target: null, targetStatus: null, fromTarget: false, targetResponseMs: -1, errorReason: 'no-target' });
  ended({ status: 400, targetKey: null, target: null, targetGroupArn: TG_ARN, targetStatus: null, fromTarget: false, targetResponseMs: -1, errorReason: 'bad-head' });
  // Cut mid-body after the target's 200 head: the code is the target's.
  ended({ status: 200, targetStatus: 200, fromTarget: false, errorReason: 'upstream-reset:ECONNRESET' });
  // The client went away before any answer.
  ended({ status: 0, targetStatus: null, fromTarget: false, targetResponseMs: -1, errorReason: 'client-aborted' });

  const s = await scrape();
  assert.equal(s.value('ebb_request_count', PAIR), 8);
  assert.equal(s.value('ebb_httpcode_target_2xx_count', PAIR), 2);
  assert.equal(s.value('ebb_httpcode_target_4xx_count', PAIR), 1);
  assert.equal(s.value('ebb_httpcode_target_5xx_count', PAIR), 1);
  assert.equal(s.value('ebb_httpcode_target_3xx_count', PAIR), undefined);
  assert.equal(s.value('ebb_httpcode_elb_5xx_count', { load_balancer: LB }), 4);
  assert.equal(s.value('ebb_httpcode_elb_502_count', { load_balancer: LB }), 2);
  assert.equal(s.value('ebb_httpcode_elb_503_count', { load_balancer: LB }), 1);
  assert.equal(s.value('ebb_httpcode_elb_504_count', { load_balancer: LB }), 1);
  assert.equal(s.value('ebb_httpcode_elb_500_count', { load_balancer: LB }), undefined);
  assert.equal(s.value('ebb_httpcode_elb_4xx_count', { load_balancer: LB }), 1);
  assert.equal(s.value('ebb_target_connection_error_count', PAIR), 1);
  assert.equal(s.value('ebb_processed_bytes', { load_balancer: LB }), 10 * 300);
  assert.equal(s.type('ebb_target_response_time_seconds'), 'HISTOGRAM');
  // No client address, no path, no host in any label.
  assert.doesNotMatch(s.text, /192\.0\.2\.10|private|example\.com/);
});

test('the response time histogram observes the target response time in seconds', async (t) => {
  const { metrics } = setup(t);
  ended({ targetResponseMs: 30 });
  ended({ targetResponseMs: 700 });
  ended({ status: 503, targetKey: null, targetStatus: null, fromTarget: false, targetResponseMs: -1 });
  const h = await histogram(metrics, 'ebb_target_response_time_seconds');
  const of = (name: string, le?: number): number | undefined =>
    h.find((v) => v.metricName === name && (le === undefined || v.labels.le === le) && v.labels.target_group === TG)?.value;
  assert.equal(of('ebb_target_response_time_seconds_count'), 2);
  assert.equal(of('ebb_target_response_time_seconds_bucket', 0.05), 1);
  assert.equal(of('ebb_target_response_time_seconds_bucket', 1), 2);
  assert.ok(Math.abs((of('ebb_target_response_time_seconds_sum') ?? 0) - 0.73) < 1e-9);
});

test('targets by state and reason, healthy hosts, and in flight per target; a target gone has no series', async (t) => {
  const { control, dataPlane, scrape } = setup(t);
  control.targets = [
    healthy('10.0.0.5', 80),
    healthy('10.0.0.6', 80),
    healthy('10.0.0.7', 80, { state: 'unhealthy', reason: 'Target.Timeout' }),
    healthy('10.0.0.8', 80, { state: 'draining', reason: 'Target.DeregistrationInProgress' }),
  ];
  dataPlane.activityByKey.set(targetKey(TG_ARN, '10.0.0.8', 80), { requests: 3, tunnels: 1, completed: 0 });
  dataPlane.activityByKey.set(targetKey(TG_ARN, '10.0.0.5', 80), { requests: 2, tunnels: 0, completed: 9, connections: 5 });
  let s = await scrape();
  assert.equal(s.value('ebb_healthy_host_count', PAIR), 2);
  assert.equal(s.value('ebb_un_healthy_host_count', PAIR), 1);
  assert.equal(s.value('ebb_targets', { target_group: TG, state: 'healthy' }), 2);
  assert.equal(s.value('ebb_targets', { target_group: TG, state: 'unhealthy', reason: 'Target.Timeout' }), 1);
  assert.equal(s.value('ebb_targets', { target_group: TG, state: 'draining', reason: 'Target.DeregistrationInProgress' }), 1);
  assert.equal(s.value('ebb_target_requests_in_flight', { target_group: TG, target: '10.0.0.8:80' }), 3);
  assert.equal(s.value('ebb_target_tunnels_open', { target_group: TG, target: '10.0.0.8:80' }), 1);
  assert.equal(s.value('ebb_target_requests_in_flight', { target_group: TG, target: '10.0.0.6:80' }), 0);
  // 5 reported by the data plane (idle pooled ones too), and 4 for a target it gives no count for.
  assert.equal(s.value('ebb_target_connection_count', { target_group: TG }), 9);

  // The drain ends: the target is no longer registered, and its series go with it.
  control.targets = control.targets.filter((d) => d.id !== '10.0.0.8');
  s = await scrape();
  assert.equal(s.value('ebb_target_requests_in_flight', { target_group: TG, target: '10.0.0.8:80' }), undefined);
  assert.equal(s.value('ebb_target_tunnels_open', { target_group: TG, target: '10.0.0.8:80' }), undefined);
  assert.equal(s.value('ebb_targets', { target_group: TG, state: 'draining' }), undefined);
  assert.equal(s.samples('ebb_target_requests_in_flight').length, 3);
});

test('drains by outcome (every outcome written from the start), their duration, and what deadlines cut', async (t) => {
  const { control, metrics, scrape } = setup(t);
  let s = await scrape();
  for (const outcome of ['idle', 'deadline', 'cancelled']) assert.equal(s.value('ebb_drains_total', { target_group: TG, outcome }), 0, outcome);
  const record = (outcome: DrainRecord['outcome'], seconds: number, cut: number): DrainRecord => ({
    id: `d-${outcome}-${seconds}`,
    targetGroupArn: TG_ARN,
    targetGroupName: 'web',
    targetId: '10.0.0.5',
    port: 80,
    startedAt: 1_000_000,
    endedAt: 1_000_000 + seconds * 1000,
    timeoutSeconds: 30,
    outcome,
    requestsCompleted: 10,
    requestsCut: cut,
    tunnelsClosed: cut > 0 ? 1 : 0,
    connectionsClosed: cut * 2,
  });
  control.events.emit('drain:end', record('idle', 2, 0));
  control.events.emit('drain:end', record('idle', 4, 0));
  control.events.emit('drain:end', record('deadline', 30, 3));
  s = await scrape();
  assert.equal(s.value('ebb_drains_total', { target_group: TG, outcome: 'idle' }), 2);
  assert.equal(s.value('ebb_drains_total', { target_group: TG, outcome: 'deadline' }), 1);
  assert.equal(s.value('ebb_drains_total', { target_group: TG, outcome: 'cancelled' }), 0);
  assert.equal(s.value('ebb_drain_requests_cut_total', { target_group: TG }), 3);
  assert.equal(s.value('ebb_drain_tunnels_closed_total', { target_group: TG }), 1);
  assert.equal(s.value('ebb_drain_connections_closed_total', { target_group: TG }), 6);
  const idle = (await histogram(metrics, 'ebb_drain_duration_seconds')).filter((v) => v.labels.outcome === 'idle');
  assert.equal(idle.find((v) => v.metricName === 'ebb_drain_duration_seconds_count')?.value, 2);
  assert.equal(idle.find((v) => v.metricName === 'ebb_drain_duration_seconds_sum')?.value, 6);
  assert.equal(idle.find((v) => v.metricName === 'ebb_drain_duration_seconds_bucket' && v.labels.le === 2.5)?.value, 1);
});

test('health-check results by group and reason; reloads by result', async (t) => {
  const { control, metrics, scrape } = setup(t);
  const key = targetKey(TG_ARN, '10.0.0.5', 80);
  metrics.healthObservation({ key, ok: true, durationMs: 2 });
  metrics.healthObservation({ key, ok: true, durationMs: 40 });
  metrics.healthObservation({ key, ok: false, reason: 'Target.Timeout', detail: 'no answer', durationMs: 5000 });
  control.events.emit('config:reload', { file: 'lb.yaml', outcome: 'refused', applied: [], kept: [], error: 'ConfigInvalid: …', at: 0 });
  const s = await scrape();
  assert.equal(s.value('ebb_health_checks_total', { target_group: TG, result: 'success' }), 2);
  assert.equal(s.value('ebb_health_checks_total', { target_group: TG, result: 'Target.Timeout' }), 1);
  const latency = await histogram(metrics, 'ebb_health_check_duration_seconds');
  const of = (result: string, name: string, le?: number) =>
    latency.find((v) => v.labels.result === result && v.metricName === `ebb_health_check_duration_seconds_${name}` && (le === undefined || v.labels.le === le))?.value;
  assert.equal(of('success', 'count'), 2);
  assert.equal(of('success', 'sum'), 0.042);
  assert.equal(of('success', 'bucket', 0.0025), 1, 'the 2 ms check');
  assert.equal(of('success', 'bucket', 0.05), 2);
  assert.equal(of('failure', 'count'), 1);
  assert.equal(of('failure', 'bucket', 2.5), 0);
  assert.equal(of('failure', 'bucket', 5), 1, 'the timeout at 5 s');
  assert.equal(s.value('ebb_config_reloads_total', { result: 'applied' }), 0);
  assert.equal(s.value('ebb_config_reloads_total', { result: 'refused' }), 1);
  assert.equal(s.value('ebb_config_reloads_total', { result: 'restore-failed' }), 0);
});

test("the access-log writers' counters, as counters that only add what is new", async (t) => {
  const { scrape } = setup(t);
  const counters = ACCESS_LOG_COUNTERS as AccessLogCounters;
  const before = { ...counters };
  let s = await scrape();
  assert.equal(s.value('ebb_access_log_lines_dropped_total'), before.linesDropped);
  counters.linesDropped += 3;
  counters.linesWritten += 10;
  s = await scrape();
  assert.equal(s.value('ebb_access_log_lines_dropped_total'), before.linesDropped + 3);
  assert.equal(s.value('ebb_access_log_lines_written_total'), before.linesWritten + 10);
  assert.equal(s.type('ebb_access_log_write_errors_total'), 'COUNTER');
});

test('the series of a target group or load balancer that no longer exists are removed', async (t) => {
  const { control, metrics, scrape } = setup(t);
  ended({ status: 500, targetStatus: 500 });
  ended({ status: 503, targetKey: null, targetStatus: null, fromTarget: false, targetResponseMs: -1 });
  metrics.healthObservation({ key: targetKey(TG_ARN, '10.0.0.5', 80), ok: true, durationMs: 1 });
  let s = await scrape();
  assert.equal(s.value('ebb_httpcode_target_5xx_count', PAIR), 1);
  control.groups = [];
  s = await scrape();
  assert.equal(s.value('ebb_httpcode_target_5xx_count', PAIR), undefined);
  assert.equal(s.value('ebb_request_count', PAIR), undefined);
  assert.equal(s.samples('ebb_drains_total').length, 0);
  assert.equal(s.samples('ebb_health_checks_total').length, 0);
  assert.equal(s.samples('ebb_health_check_duration_seconds_count').length, 0);
  assert.equal(s.value('ebb_httpcode_elb_503_count', { load_balancer: LB }), 1, 'the load balancer is still there');
  control.loadBalancers = [];
  s = await scrape();
  assert.equal(s.value('ebb_httpcode_elb_503_count', { load_balancer: LB }), undefined);
  assert.equal(s.value('ebb_processed_bytes', { load_balancer: LB }), undefined);
});

test('a target group deleted and made again under the same ARN counts from 0, in series the exposition shows', async (t) => {
  const { control, metrics, scrape } = setup(t);
  ended({});
  ended({ status: 503, targetKey: null, targetStatus: null, fromTarget: false, targetResponseMs: -1 });
  let s = await scrape();
  assert.equal(s.value('ebb_request_count', PAIR), 1);
  control.groups = [];
  s = await scrape();
  assert.equal(s.value('ebb_request_count', PAIR), undefined);
  control.groups = [{ arn: TG_ARN }];
  // The series the request path kept for the group were pruned with it: these requests go to new ones.
  ended({ targetResponseMs: 30 });
  ended({ status: 404, targetStatus: 404 });
  ended({ status: 503, targetKey: null, targetStatus: null, fromTarget: false, targetResponseMs: -1 });
  s = await scrape();
  assert.equal(s.value('ebb_request_count', PAIR), 2);
  assert.equal(s.value('ebb_httpcode_target_2xx_count', PAIR), 1);
  assert.equal(s.value('ebb_httpcode_target_4xx_count', PAIR), 1);
  const h = await histogram(metrics, 'ebb_target_response_time_seconds');
  assert.equal(h.find((v) => v.metricName === 'ebb_target_response_time_seconds_count' && v.labels.target_group === TG)?.value, 2);
  assert.equal(s.value('ebb_httpcode_elb_503_count', { load_balancer: LB }), 2, 'the load balancer stayed: its series too');
  control.loadBalancers = [];
  await scrape();
  control.loadBalancers = [{ arn: LB_ARN }];
  ended({ status: 503, targetKey: null, targetStatus: null, fromTarget: false, targetResponseMs: -1 });
  s = await scrape();
  assert.equal(s.value('ebb_httpcode_elb_503_count', { load_balancer: LB }), 1);
  assert.equal(s.value('ebb_processed_bytes', { load_balancer: LB }), 300);
});

test("client connections of this process: accepted, open and refused per load balancer, as the listeners' connection limit publishes them", async (t) => {
  const { scrape } = setup(t);
  // What an ebb listener does with its server (listener.ts, tcp-listener.ts): a limit of 2 here.
  const server = net.createServer();
  attachConnectionLimit(server, new ConnectionLimit({ maxConnections: 2 }), LISTENER_ARN, () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const accepted: net.Socket[] = [];
  server.on('connection', (s) => accepted.push(s));
  const clients = [net.connect(port, '127.0.0.1'), net.connect(port, '127.0.0.1')];
  t.after(() => clients.forEach((c) => c.destroy()));
  await Promise.all(clients.map((c) => new Promise((r) => c.once('connect', r))));
  while (accepted.length < 2) await new Promise((r) => setTimeout(r, 5));
  let s = await scrape();
  assert.equal(s.value('ebb_new_connection_count', { load_balancer: LB }), 2);
  assert.equal(s.value('ebb_active_connection_count', { load_balancer: LB }), 2);
  assert.equal(s.value('ebb_rejected_connection_count', { load_balancer: LB }), undefined);

  // A third is over the limit: Node closes it at accept, and it is refused, not accepted.
  const third = net.connect(port, '127.0.0.1');
  await new Promise((r) => third.once('close', r));
  s = await scrape();
  assert.equal(s.value('ebb_rejected_connection_count', { load_balancer: LB }), 1);
  assert.equal(s.value('ebb_new_connection_count', { load_balancer: LB }), 2);

  const closed = accepted.map((a) => new Promise((r) => a.once('close', r)));
  clients[0]?.destroy();
  await closed[0];
  s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', { load_balancer: LB }), 1);
  clients[1]?.destroy();
  await closed[1];
  s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', { load_balancer: LB }), 0, 'written as 0 once none is open');
  assert.equal(s.value('ebb_client_connection_limit'), 456);
});

test('every metric is in docs/metrics.md, and every ebb_ name the docs and the Grafana dashboard use is served', async (t) => {
  const { metrics } = setup(t);
  const served = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  const doc = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
  const dashboard = readFileSync(new URL('../../../examples/grafana-dashboard.json', import.meta.url), 'utf8');
  JSON.parse(dashboard);
  assert.deepEqual([...served].filter((name) => name.startsWith('ebb_') && !doc.includes(`\`${name}\``)), [], 'documented');
  const named = (text: string): string[] => [...new Set([...text.matchAll(/\bebb_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')))];
  const unknown = (text: string): string[] => named(text).filter((n) => !served.has(n) && !served.has(`${n}_count`));
  assert.deepEqual(unknown(doc), [], 'docs/metrics.md names only served metrics');
  assert.deepEqual(unknown(dashboard), [], 'the dashboard queries only served metrics');
});
