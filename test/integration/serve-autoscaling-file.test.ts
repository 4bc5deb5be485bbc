/**
 * Auto Scaling declared in the configuration file, with `ebb serve` as a process: a launch template
 * (a command run in a directory next to the file) and a group of two small Node servers behind a
 * target group and a listener. The group's desired capacity is then changed through the API
 * (SetDesiredCapacity) and the file reloaded (SIGHUP) with only the template's environment changed:
 * the API's desired capacity stays, the template gets a new default version, and no instance refresh
 * starts (the instances running are the same ones). `autoScaling.onShutdown: stop` makes ebb's SIGTERM
 * stop every instance it launched; their pids are checked gone.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { AutoScalingClient, DescribeAutoScalingGroupsCommand, DescribeInstanceRefreshesCommand, SetDesiredCapacityCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, DescribeLaunchTemplatesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeTargetGroupsCommand, DescribeTargetHealthCommand, ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { spawnEbb, waitForStart, type LogLine, type NodeProcess } from '../support/ebb-process.ts';
import { freePort } from '../support/ports.ts';
import { after, waitUntil } from '../support/timing.ts';
import { ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY } from './api-harness.ts';
import { alive } from '../support/processes.ts';

/** The instance: answers its instance id and APP_ENV; on SIGTERM stops accepting and exits once idle. */
const SERVER = `import { createServer } from 'node:http';
const server = createServer((req, res) => {
  res.writeHead(200, { 'x-instance': process.env.EBB_INSTANCE_ID ?? '', 'content-type': 'text/plain' });
  res.end(req.url === '/health' ? 'ok\\n' : (process.env.APP_ENV ?? '') + '\\n');
});
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
`;

function configYaml(listenerPort: number, appEnv: string): string {
  return `loadBalancers:
  - name: web
    listeners:
      - { protocol: HTTP, port: ${listenerPort}, address: 127.0.0.1, defaultActions: [ { type: forward, targetGroup: app } ] }
targetGroups:
  - name: app
    protocol: HTTP
    port: 80
    targetType: instance
    healthCheck: { path: /health, intervalSeconds: 5, timeoutSeconds: 2, healthyThresholdCount: 2, unhealthyThresholdCount: 2 }
    attributes: { deregistration_delay.timeout_seconds: 1 }
launchTemplates:
  - name: app
    command: [${JSON.stringify(process.execPath)}, server.mjs]
    workingDirectory: ./app
    environment: { APP_ENV: ${appEnv} }
    stopTimeoutSeconds: 5
autoScalingGroups:
  - name: web
    launchTemplate: app
    minSize: 1
    maxSize: 4
    desiredCapacity: 2
    targetGroups: [app]
autoScaling:
  onShutdown: stop
`;
}

function answer(port: number): Promise<{ instance: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/hello', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (ch: string) => (body += ch));
      res.on('end', () => resolve({ instance: String(res.headers['x-instance'] ?? ''), body: `${res.statusCode} ${body.trim()}` }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', reject);
  });
}

test('a template and group in the file: instances serve through the listener; a reload keeps the API\'s desired capacity and makes a new default version without a refresh', { timeout: 40_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const pids = new Set<number>();
  // Whatever the test leaves behind: each instance's process group, by pid.
  c.add(() => {
    for (const pid of pids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  const dir = await tempDir(c);
  await mkdir(join(dir, 'app'));
  await writeFile(join(dir, 'app', 'server.mjs'), SERVER);
  const listenerPort = await freePort();
  const configPath = join(dir, 'ebb.yaml');
  await writeFile(configPath, configYaml(listenerPort, 'one'));
  const proc: NodeProcess = spawnEbb(c, ['--config', configPath, '--state-dir', join(dir, 'state'), '--admin', '127.0.0.1:0'], {
    EBB_ACCESS_KEY_ID: ACCESS_KEY_ID,
    EBB_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
  });
  const started = await waitForStart(proc);
  const common = { endpoint: `http://${String(started['admin'])}`, region: REGION, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }, maxAttempts: 1 };
  const as = new AutoScalingClient(common);
  const ec2 = new EC2Client(common);
  const elb = new ElasticLoadBalancingV2Client(common);
  c.add(() => [as, ec2, elb].forEach((client) => client.destroy()));

  const applied = proc.logs.find((l) => l['event'] === 'config:applied');
  assert.deepEqual((applied?.['applied'] as string[]).slice(-2), ['created launch template app', 'created Auto Scaling group web (desired capacity 2)']);
  const tgArn = (await elb.send(new DescribeTargetGroupsCommand({ Names: ['app'] }))).TargetGroups?.[0]?.TargetGroupArn ?? '';
  const group = async () => (await as.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['web'] }))).AutoScalingGroups?.[0];
  const instanceIds = async (): Promise<string[]> => ((await group())?.Instances ?? []).filter((i) => i.LifecycleState === 'InService').map((i) => i.InstanceId ?? '').sort();
  const rememberPids = async (): Promise<void> => {
    const r = await ec2.send(new DescribeInstancesCommand({}));
    for (const i of (r.Reservations ?? []).flatMap((x) => x.Instances ?? [])) {
      const pid = Number(i.Tags?.find((tag) => tag.Key === 'ebb:pid')?.Value);
      if (pid > 0) pids.add(pid);
    }
  };

  // Two instances in service and healthy behind the listener (the second health check is 5 s after the first).
  await waitUntil(
    async () => {
      const health = (await elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn }))).TargetHealthDescriptions ?? [];
      return (await instanceIds()).length === 2 && health.length === 2 && health.every((h) => h.TargetHealth?.State === 'healthy');
    },
    'two healthy instances of web',
    15_000,
    200,
  );
  await rememberPids();
  const first = await instanceIds();
  const replies = await Promise.all(Array.from({ length: 8 }, () => answer(listenerPort)));
  assert.deepEqual([...new Set(replies.map((r) => r.body))], ['200 one'], 'the instances run the template\'s command with its environment');
  assert.deepEqual([...new Set(replies.map((r) => r.instance))].sort(), first, 'both instances answer through the listener');

  // The API scales the group out.
  await as.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'web', DesiredCapacity: 3 }));
  await waitUntil(async () => (await instanceIds()).length === 3, 'a third instance in service', 10_000, 100);
  await rememberPids();
  const three = await instanceIds();

  // The file changes only the template's environment.
  await writeFile(configPath, configYaml(listenerPort, 'two'));
  const before = proc.logs.length;
  proc.child.kill('SIGHUP');
  const reloaded: LogLine | null = await proc.waitForLog((l) => proc.logs.indexOf(l) >= before && String(l['event']).startsWith('config:re'), 10_000);
  t.diagnostic(JSON.stringify(reloaded));
  assert.equal(reloaded?.['event'], 'config:reloaded', JSON.stringify(reloaded));
  assert.deepEqual(reloaded['applied'], ["launch template app: version 2, with the file's new data, is now the default (instances running keep theirs; no instance refresh is started)"]);
  assert.deepEqual(reloaded['kept'], ['Auto Scaling group web desiredCapacity 3, set through the API (the file says 2)']);
  assert.equal((await group())?.DesiredCapacity, 3, 'the desired capacity set through the API stays');
  const template = (await ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: ['app'] }))).LaunchTemplates?.[0];
  assert.deepEqual([template?.DefaultVersionNumber, template?.LatestVersionNumber], [2, 2]);
  assert.deepEqual((await as.send(new DescribeInstanceRefreshesCommand({ AutoScalingGroupName: 'web' }))).InstanceRefreshes ?? [], [], 'no instance refresh starts');
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await instanceIds(), three, 'the same instances run on');
  assert.deepEqual([...new Set((await Promise.all(Array.from({ length: 6 }, () => answer(listenerPort)))).map((r) => r.body))], ['200 one'], 'they keep the environment they started with');

  // onShutdown: stop. ebb's SIGTERM stops every instance it launched, after its data plane has finished.
  process.kill(proc.pid, 'SIGTERM');
  const code = await Promise.race([proc.exited, after(15_000, 'still running')]);
  assert.equal(code, 0, proc.stderr());
  const stopped = proc.logs.find((l) => l['event'] === 'autoscaling:instances-stopped');
  assert.equal(stopped?.['count'], 3);
  assert.ok(proc.logs.some((l) => l['event'] === 'ebb:stopped'), 'the shutdown runs to its end (the instances are not left to the kernel)');
  assert.equal(pids.size, 3);
  assert.deepEqual([...pids].filter(alive), [], 'no instance process is left');
  assert.deepEqual(proc.problems(), []);
});
