/**
 * NLB's flow metrics, the TLS handshake errors and the HTTP/2 connection counts, from messages
 * published on the data plane's channels, read back from the exposition.
 */
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { ControlApi } from '../../control/control-api.ts';
import type { ControlEvents } from '../../control/events.ts';
import {
  flowEndChannel,
  flowOpenChannel,
  http2SessionEndChannel,
  requestEndChannel,
  tlsErrorChannel,
  type FlowEndMessage,
  type Http2SessionEndMessage,
  type RequestEndMessage,
} from '../../dataplane/channels.ts';
import type { HttpDataPlane } from '../../dataplane/http-data-plane.ts';
import { TypedEmitter } from '../../shared/typed-emitter.ts';
import { Scrape } from '../../../test/integration/metrics-scrape.ts';
import { EbbMetrics } from './ebb-metrics.ts';

const P = 'arn:aws:elasticloadbalancing:us-east-1:123456789012';
const NLB_ARN = `${P}:loadbalancer/net/db/1111111111111111`;
const TCP_LISTENER = `${P}:listener/net/db/1111111111111111/aaaaaaaaaaaaaaaa`;
const TLS_LISTENER = `${P}:listener/net/db/1111111111111111/bbbbbbbbbbbbbbbb`;
const ALB_ARN = `${P}:loadbalancer/app/web/2222222222222222`;
const HTTPS_LISTENER = `${P}:listener/app/web/2222222222222222/cccccccccccccccc`;
const TG_ARN = `${P}:targetgroup/db/3333333333333333`;
const WEB_TG_ARN = `${P}:targetgroup/web/4444444444444444`;
const NLB = { load_balancer: 'net/db/1111111111111111' };
const ALB = { load_balancer: 'app/web/2222222222222222' };

function setup(t: { after(fn: () => void): void }): { control: { loadBalancers: unknown[]; listeners: unknown[] }; scrape: () => Promise<Scrape> } {
  const control = {
    events: new TypedEmitter<ControlEvents>(),
    loadBalancers: [
      { arn: NLB_ARN, type: 'network' },
      { arn: ALB_ARN, type: 'application' },
    ] as unknown[],
    listeners: [] as unknown[],
    describeLoadBalancers(filter?: { type?: string }): unknown[] {
      return filter?.type === 'classic' ? [] : this.loadBalancers;
    },
    describeListeners(filter: { loadBalancerArn?: string }): unknown[] {
      return this.listeners.filter((l) => (l as { loadBalancerArn: string }).loadBalancerArn === filter.loadBalancerArn);
    },
    describeTargetGroups: () => [{ arn: TG_ARN }, { arn: WEB_TG_ARN }],
    loadBalancersOfTargetGroup: () => [],
    describeTargetHealth: () => [],
  };
  const dataPlane = { connectionLimit: { maxConnections: 1, counters: { dropped: new Map() } }, boundPort: () => null, activity: () => ({ requests: 0, tunnels: 0, completed: 0 }) };
  const metrics = new EbbMetrics({ control: control as unknown as ControlApi, dataPlanes: [dataPlane as unknown as HttpDataPlane], processMetrics: false });
  t.after(() => metrics.close());
  return { control, scrape: async () => new Scrape((await metrics.render()).body) };
}

function opened(listenerArn = TCP_LISTENER): void {
  flowOpenChannel.publish({ dataPlaneId: 'dp', listenerArn, targetGroupArn: TG_ARN, targetKey: `${TG_ARN}|10.0.0.9|5432` });
}

function ended(over: Partial<FlowEndMessage> = {}): void {
  flowEndChannel.publish({
    dataPlaneId: 'dp',
    listenerArn: TCP_LISTENER,
    listenerPort: 5432,
    protocol: 'tcp',
    targetGroupArn: TG_ARN,
    targetKey: `${TG_ARN}|10.0.0.9|5432`,
    target: '10.0.0.9:5432',
    clientAddress: '192.0.2.7',
    clientPort: 51341,
    startTime: 0,
    durationMs: 10,
    connectMs: 1,
    receivedBytes: 100,
    sentBytes: 1000,
    reason: 'closed',
    resetByEbb: false,
    tls: null,
    ...over,
  } satisfies FlowEndMessage);
}

test('flows: new and active per load balancer, their bytes in ProcessedBytes, and resets by who sent them', async (t) => {
  const { scrape } = setup(t);
  for (let i = 0; i < 4; i++) opened();
  opened(TLS_LISTENER);
  let s = await scrape();
  assert.equal(s.value('ebb_new_flow_count', NLB), 5);
  assert.equal(s.value('ebb_active_flow_count', NLB), 5);
  assert.equal(s.value('ebb_processed_bytes', NLB), undefined, 'bytes are counted when a flow ends');

  ended();
  ended({ reason: 'client_reset', receivedBytes: 10, sentBytes: 0 });
  ended({ reason: 'target_reset', receivedBytes: 0, sentBytes: 0 });
  ended({ reason: 'idle_timeout', resetByEbb: true, listenerArn: TLS_LISTENER, protocol: 'tls' });
  // Never given a target: no flow was opened for it, so nothing to close; ebb reset the client.
  ended({ reason: 'no_target', resetByEbb: true, targetGroupArn: null, targetKey: null, target: null, connectMs: -1, receivedBytes: 0, sentBytes: 0 });
  s = await scrape();
  assert.equal(s.value('ebb_new_flow_count', NLB), 5);
  assert.equal(s.value('ebb_active_flow_count', NLB), 1);
  assert.equal(s.value('ebb_processed_bytes', NLB), 1100 + 10 + 1100);
  assert.equal(s.value('ebb_tcp_client_reset_count', NLB), 1);
  assert.equal(s.value('ebb_tcp_target_reset_count', NLB), 1);
  assert.equal(s.value('ebb_tcp_elb_reset_count', NLB), 2);
  assert.equal(s.type('ebb_active_flow_count'), 'GAUGE');

  // An end whose open was missed (the metrics started between the two) does not go below 0.
  ended();
  ended();
  s = await scrape();
  assert.equal(s.value('ebb_active_flow_count', NLB), 0);

  // The ALB's requests add to the same ProcessedBytes family, under their own load balancer.
  requestEndChannel.publish({ ...request(), receivedBytes: 7, sentBytes: 3 });
  s = await scrape();
  assert.equal(s.value('ebb_processed_bytes', ALB), 10);
  assert.equal(s.value('ebb_processed_bytes', NLB), 2210 + 2200);
});

test("TLS handshakes that failed, by load balancer (ALB's HTTPS and NLB's TLS); a target's TLS failure; HTTP/2 connections by how they ended", async (t) => {
  const { scrape } = setup(t);
  tlsErrorChannel.publish({ dataPlaneId: 'dp', listenerArn: HTTPS_LISTENER, reason: 'no_shared_cipher', message: 'no shared cipher' });
  tlsErrorChannel.publish({ dataPlaneId: 'dp', listenerArn: HTTPS_LISTENER, reason: 'not_tls', message: 'http request' });
  tlsErrorChannel.publish({ dataPlaneId: 'dp', listenerArn: TLS_LISTENER, reason: 'timeout', message: 'handshake timeout' });
  requestEndChannel.publish({ ...request(), status: 502, targetStatus: null, fromTarget: false, targetResponseMs: -1, errorReason: 'target-tls:DEPTH_ZERO_SELF_SIGNED_CERT' });
  const session = (over: Partial<Http2SessionEndMessage>): void => {
    http2SessionEndChannel.publish({ dataPlaneId: 'dp', listenerArn: HTTPS_LISTENER, clientAddress: '192.0.2.7', clientPort: 1, streams: 3, clientResets: 0, streamsCut: 0, reason: 'closed', durationMs: 5, ...over });
  };
  session({});
  session({});
  session({ reason: 'rapid_reset', streams: 500, clientResets: 120 });
  session({ reason: 'idle_timeout', clientResets: 1 });
  const s = await scrape();
  assert.equal(s.value('ebb_client_tls_negotiation_error_count', ALB), 2);
  assert.equal(s.value('ebb_client_tls_negotiation_error_count', NLB), 1);
  const pair = { ...ALB, target_group: 'targetgroup/web/4444444444444444' };
  assert.equal(s.value('ebb_target_tls_negotiation_error_count', pair), 1);
  assert.equal(s.value('ebb_target_connection_error_count', pair), undefined, 'a TLS failure is not a connection error');
  assert.equal(s.value('ebb_http2_sessions_total', { ...ALB, reason: 'closed' }), 2);
  assert.equal(s.value('ebb_http2_sessions_total', { ...ALB, reason: 'rapid_reset' }), 1);
  assert.equal(s.value('ebb_http2_sessions_total', { ...ALB, reason: 'idle_timeout' }), 1);
  assert.equal(s.value('ebb_http2_client_stream_resets_total', ALB), 121);
});

test("a load balancer deleted: its flow series and open count go; an NLB's connections are flows, not in ALB's connection counts", async (t) => {
  const { control, scrape } = setup(t);
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  control.listeners = [{ arn: TCP_LISTENER, address: '127.0.0.1', port, loadBalancerArn: NLB_ARN }];
  const accepted: net.Socket[] = [];
  server.on('connection', (c) => accepted.push(c));
  const client = net.connect(port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  while (accepted.length < 1) await new Promise((r) => setTimeout(r, 5));
  opened();
  opened();
  let s = await scrape();
  assert.equal(s.value('ebb_new_connection_count', NLB), undefined);
  assert.equal(s.value('ebb_active_connection_count', NLB), undefined);
  assert.equal(s.value('ebb_active_flow_count', NLB), 2);
  client.destroy();

  control.loadBalancers = control.loadBalancers.filter((l) => (l as { arn: string }).arn !== NLB_ARN);
  s = await scrape();
  assert.equal(s.value('ebb_active_flow_count', NLB), undefined);
  assert.equal(s.value('ebb_new_flow_count', NLB), undefined);
  // Made again under the same name and id: it starts from nothing.
  control.loadBalancers.push({ arn: NLB_ARN, type: 'network' });
  opened();
  ended({ reason: 'target_reset' });
  s = await scrape();
  assert.equal(s.value('ebb_new_flow_count', NLB), 1);
  assert.equal(s.value('ebb_active_flow_count', NLB), 0);
  assert.equal(s.value('ebb_tcp_target_reset_count', NLB), 1);
});

function request(): RequestEndMessage {
  return {
    dataPlaneId: 'dp',
    listenerArn: HTTPS_LISTENER,
    listenerPort: 443,
    targetGroupArn: WEB_TG_ARN,
    targetKey: `${WEB_TG_ARN}|10.0.0.5|443`,
    target: '10.0.0.5:443',
    clientAddress: '192.0.2.7',
    clientPort: 50000,
    method: 'GET',
    url: '/',
    version: 'HTTP/2.0',
    host: 'www.example.com',
    userAgent: null,
    status: 200,
    targetStatus: 200,
    fromTarget: true,
    requestTime: 0,
    durationMs: 1,
    requestProcessingMs: 0,
    targetResponseMs: 1,
    responseProcessingMs: 0,
    receivedBytes: 1,
    sentBytes: 1,
    classification: 'Compliant',
    classificationReason: null,
    errorReason: null,
    tls: { cipher: 'TLS_AES_128_GCM_SHA256', protocol: 'TLSv1.3', serverName: 'www.example.com', certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/x' },
  };
}
