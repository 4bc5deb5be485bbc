import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FakeClock } from '../../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../../test/fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../../../test/fakes/fake-health-checker.ts';
import { ControlPlane } from '../../control/control-plane.ts';
import { flowEndChannel, requestEndChannel, type FlowEndMessage, type RequestEndMessage } from '../../dataplane/channels.ts';
import { InMemoryStateStore } from '../../store/in-memory-state-store.ts';
import { AccessLogService } from './access-log-service.ts';
import type { Destination } from './line-writer.ts';

class MemoryDestination implements Destination {
  readonly lines: string[] = [];
  async write(data: string): Promise<void> {
    this.lines.push(...data.split('\n').filter((l) => l !== ''));
  }
  nextDeadline(): null {
    return null;
  }
  async tick(): Promise<void> {}
  async reopen(): Promise<void> {}
  async close(): Promise<void> {}
}

function message(listenerArn: string, targetGroupArn: string, url: string): RequestEndMessage {
  return {
    dataPlaneId: 'dp',
    listenerArn,
    listenerPort: 8080,
    targetGroupArn,
    targetKey: `${targetGroupArn}|127.0.0.1|9001`,
    target: '127.0.0.1:9001',
    clientAddress: '127.0.0.1',
    clientPort: 40000,
    method: 'GET',
    url,
    version: 'HTTP/1.1',
    host: 'example.test',
    userAgent: null,
    status: 200,
    targetStatus: 200,
    fromTarget: true,
    requestTime: Date.UTC(2026, 0, 1, 10, 0, 0),
    durationMs: 2,
    requestProcessingMs: 0,
    targetResponseMs: 1,
    responseProcessingMs: 0,
    receivedBytes: 40,
    sentBytes: 100,
    classification: 'Compliant',
    classificationReason: 'Compliant',
    errorReason: null,
    tls: null,
  };
}

test('the service maps a listener to its load balancer, follows access_logs.s3.* within a second, and stops at close', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ebb-access-log-service-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 10, 0, 0));
  const cp = new ControlPlane({ clock, store: new InMemoryStateStore(), dataPlanes: [new FakeDataPlane()], healthChecker: new FakeHealthChecker() });
  await cp.start();
  t.after(() => cp.close());
  const lb = await cp.createLoadBalancer({ name: 'web' });
  const tg = await cp.createTargetGroup({ name: 'web', protocol: 'HTTP', port: 80 });
  const listener = await cp.createListener({ loadBalancerArn: lb.arn, protocol: 'HTTP', port: 8080, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
  const node = new MemoryDestination();
  const logs: Array<Record<string, unknown>> = [];
  const svc = new AccessLogService({
    control: cp,
    clock,
    stateDir: dir,
    node: { output: 'stdout', format: 'json', rotateBytes: 0, rotateSeconds: 0, keep: 0, bufferBytes: 1 << 20 },
    nodeDestination: node,
    log: (e) => logs.push(e),
    nodeAddress: '10.0.0.5',
    random: () => 'rand0000',
  });
  svc.start();
  const elb = lb.arn.slice(lb.arn.indexOf(':loadbalancer/') + ':loadbalancer/'.length);
  const send = async (url: string, listenerArn = listener.arn): Promise<void> => {
    requestEndChannel.publish(message(listenerArn, tg.arn, url));
    clock.advance(200);
    await svc.flush();
  };

  await send('/one');
  assert.deepEqual(
    node.lines.map((l) => JSON.parse(l) as Record<string, unknown>).map((j) => [j['elb'], j['request_url']]),
    [[elb, 'http://example.test:8080/one']],
  );

  // Enabled without a bucket: refused, as AWS refuses it; nothing opens.
  await assert.rejects(cp.modifyLoadBalancerAttributes(lb.arn, { 'access_logs.s3.enabled': 'true' }), /access_logs\.s3\.bucket is required/);
  clock.advance(1000);
  assert.equal(svc.s3Writers.size, 0);

  // A bucket relative to the state directory: the next refresh opens the layout.
  await cp.modifyLoadBalancerAttributes(lb.arn, { 'access_logs.s3.enabled': 'true', 'access_logs.s3.bucket': 'logs', 'access_logs.s3.prefix': 'p' });
  clock.advance(1000);
  assert.equal(svc.s3Writers.size, 1);
  await send('/two');
  const folder = join(dir, 'logs/p/AWSLogs', cp.accountId, 'elasticloadbalancing', cp.region, '2026/01/01');
  const name = `${cp.accountId}_elasticloadbalancing_${cp.region}_${elb.replaceAll('/', '.')}_20260101T1005Z_10.0.0.5_rand0000.log`;
  assert.deepEqual(await readdir(folder), [name]);

  // Turned off: the open file is finished (.log.gz) at the next refresh.
  await cp.modifyLoadBalancerAttributes(lb.arn, { 'access_logs.s3.enabled': 'false' });
  clock.advance(1000);
  await svc.flush();
  assert.deepEqual(await readdir(folder), [`${name}.gz`]);
  assert.equal(svc.s3Writers.size, 0);

  // A listener deleted while its request ran: its ARN still names its load balancer.
  await cp.deleteListener(listener.arn);
  clock.advance(1000);
  await send('/three');
  assert.equal((JSON.parse(node.lines.at(-1) ?? '{}') as Record<string, unknown>)['elb'], elb);

  await svc.close();
  requestEndChannel.publish(message(listener.arn, tg.arn, '/after-close'));
  assert.equal(node.lines.length, 3);
  assert.deepEqual(svc.counters, { linesWritten: 4, linesDropped: 0, writeErrors: 0, filesRotated: 1 });
  assert.deepEqual(logs.filter((l) => l['event'] === 'access-log:error'), []);
});

test("a Network Load Balancer's flows: ebb's tcp line in the node's log, NLB's own line in its S3-layout files", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ebb-access-log-flows-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 10, 0, 0));
  const cp = new ControlPlane({ clock, store: new InMemoryStateStore(), dataPlanes: [new FakeDataPlane()], healthChecker: new FakeHealthChecker() });
  await cp.start();
  t.after(() => cp.close());
  const lb = await cp.createLoadBalancer({ name: 'db', type: 'network' });
  const tg = await cp.createTargetGroup({ name: 'db', protocol: 'TCP', port: 5432 });
  const listener = await cp.createListener({ loadBalancerArn: lb.arn, protocol: 'TCP', port: 5432, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
  await cp.modifyLoadBalancerAttributes(lb.arn, { 'access_logs.s3.enabled': 'true', 'access_logs.s3.bucket': 'logs' });
  const node = new MemoryDestination();
  const svc = new AccessLogService({
    control: cp,
    clock,
    stateDir: dir,
    node: { output: 'stdout', format: 'alb', rotateBytes: 0, rotateSeconds: 0, keep: 0, bufferBytes: 1 << 20 },
    nodeDestination: node,
    log: () => {},
    nodeAddress: '10.0.0.5',
    random: () => 'rand0000',
  });
  svc.start();
  t.after(() => svc.close());
  flowEndChannel.publish({
    dataPlaneId: 'dp',
    listenerArn: listener.arn,
    listenerPort: 5432,
    protocol: 'tcp',
    targetGroupArn: tg.arn,
    targetKey: `${tg.arn}|10.0.0.9|5432`,
    target: '10.0.0.9:5432',
    clientAddress: '192.0.2.7',
    clientPort: 51341,
    startTime: Date.UTC(2026, 0, 1, 10, 0, 0),
    durationMs: 1500,
    connectMs: 2,
    receivedBytes: 98,
    sentBytes: 246,
    reason: 'target_reset',
    resetByEbb: false,
    tls: null,
  } satisfies FlowEndMessage);
  clock.advance(200);
  await svc.flush();
  const elb = lb.arn.slice(lb.arn.indexOf(':loadbalancer/') + ':loadbalancer/'.length);
  assert.equal(node.lines.length, 1);
  assert.match(node.lines[0] ?? '', new RegExp(`^tcp 2026-01-01T10:00:01\\.500000Z ${elb} 192\\.0\\.2\\.7:51341 10\\.0\\.0\\.9:5432 -1 0\\.002 -1 - - 98 246 "- - - " "-" - - ${tg.arn} `));
  assert.match(node.lines[0] ?? '', / "TargetConnectionReset" "10\.0\.0\.9:5432" "-" "-" "-" -$/);
  const folder = join(dir, 'logs/AWSLogs', cp.accountId, 'elasticloadbalancing', cp.region, '2026/01/01');
  const [file] = await readdir(folder);
  assert.ok(file?.includes(`_${elb.replaceAll('/', '.')}_`), file);
  const text = await readFile(join(folder, file ?? ''), 'utf8');
  // The listener is bound to every address: the node's own stands for it.
  assert.equal(text, `tcp 2.0 2026-01-01T10:00:01 ${elb} ${listener.arn.slice(listener.arn.lastIndexOf('/') + 1)} 192.0.2.7:51341 10.0.0.5:5432 1500 - 98 246 - - - - - - - - - - 2026-01-01T10:00:00\n`);
});
