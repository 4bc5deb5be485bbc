/**
 * Auto Scaling end to end: `ebb serve` as a process, driven by the AWS SDK's Auto Scaling, EC2 and
 * ELBv2 clients as a user's scripts drive it, with instances that are real processes
 * (test/fixtures/autoscaling/app.mjs) behind a real listener.
 *
 * - `startServe()`: writes a configuration file (one load balancer with an HTTP listener on
 *   127.0.0.1, one `instance` target group checked on /health every 5 s, healthy and unhealthy after
 *   2 checks, and the deregistration delay asked for), spawns `ebb serve --config … --state-dir …
 *   --admin 127.0.0.1:0` with admin credentials, and makes the three SDK clients.
 * - `userData()` / `createTemplate()` / `createTemplateVersion()` / `createGroup()`: the launch
 *   template whose script runs the app at a version, and a group of it in the target group.
 * - `waitServing()`: until the group has N instances InService and every one healthy in the target group.
 * - `appEvents()` / `sigtermAt()`: what an instance's app wrote to its log (its SIGTERM, its requests).
 * - `startLoad()`: a bounded keep-alive load through the listener that counts every failure.
 * - `drainRecords()`: ebb's records of finished drains (GET /ebb/v1/drain-records, signed).
 * - `teardown()`: the groups force-deleted and waited for, ebb stopped, the instance pids still
 *   alive returned (a test asserts there are none). It runs at cleanup too, then every instance pid
 *   seen that is still alive is killed with its process group.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DeleteAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeInstanceRefreshesCommand,
  type Instance,
  type InstanceRefresh,
  StartInstanceRefreshCommand,
} from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand, CreateLaunchTemplateVersionCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeTargetGroupsCommand, DescribeTargetHealthCommand, ElasticLoadBalancingV2Client, type TargetHealthDescription } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { Cleanup } from '../support/cleanup.ts';
import { REPO_ROOT, spawnEbb, waitForStart, type NodeProcess } from '../support/ebb-process.ts';
import { freePort } from '../support/ports.ts';
import { alive } from '../support/processes.ts';
import { after, sleep, waitFor } from '../support/timing.ts';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

/** Tests of instances ask whether a process runs as the harness does. */
export { alive };

export const APP = join(REPO_ROOT, 'test/fixtures/autoscaling/app.mjs');
export const TARGET_GROUP = 'app';
// The admin credentials ebb is given (EBB_ACCESS_KEY_ID / EBB_SECRET_ACCESS_KEY) and the clients sign with.
const CREDENTIALS = { accessKeyId: 'AKIDEBBAUTOSCALING01', secretAccessKey: 'ebb-autoscaling-test-secret/with+signs' };
const REGION = 'us-east-1';

export interface ServeOptions {
  readonly stateDir: string;
  readonly listenerPort: number;
  readonly deregistrationDelaySeconds: number;
  /** An earlier ebb on the same state directory (a restart): its groups and pids are carried over. */
  readonly restartOf?: Served;
}

export interface Served {
  readonly proc: NodeProcess;
  readonly endpoint: string;
  readonly as: AutoScalingClient;
  readonly ec2: EC2Client;
  readonly elb: ElasticLoadBalancingV2Client;
  readonly listenerPort: number;
  readonly tgArn: string;
  readonly stateDir: string;
  /** The groups made with createGroup, force-deleted at teardown. */
  readonly groups: Set<string>;
  /** Wall time of its `ebb:started` line. */
  readonly startedAt: number;
  /** Every instance pid DescribeInstances showed. */
  readonly pids: Set<number>;
}

/** The configuration file: the listener and the instance target group the groups register in. */
export function configYaml(o: Pick<ServeOptions, 'listenerPort' | 'deregistrationDelaySeconds'>): string {
  return [
    'loadBalancers:',
    '  - name: web',
    '    listeners:',
    `      - { protocol: HTTP, port: ${o.listenerPort}, address: 127.0.0.1, defaultActions: [ { type: forward, targetGroup: ${TARGET_GROUP} } ] }`,
    'targetGroups:',
    `  - name: ${TARGET_GROUP}`,
    '    protocol: HTTP',
    '    port: 80',
    '    targetType: instance',
    '    healthCheck: { path: /health, intervalSeconds: 5, timeoutSeconds: 2, healthyThresholdCount: 2, unhealthyThresholdCount: 2 }',
    `    attributes: { deregistration_delay.timeout_seconds: ${o.deregistrationDelaySeconds} }`,
    '',
  ].join('\n');
}

/**
 * `ebb serve` with the configuration file (written next to the state directory) and the SDK clients.
 * At cleanup, if the test did not: teardown() (ebb is SIGKILLed after it in any case), then every
 * instance pid seen that is still alive is killed with its process group.
 */
export async function startServe(c: Cleanup, o: ServeOptions): Promise<Served> {
  const pids = o.restartOf?.pids ?? new Set<number>();
  c.add(() => {
    // Each instance leads its own process group (docs/instances.md): the group takes what it started too.
    for (const pid of [...pids].filter(alive)) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  });
  const configPath = join(o.stateDir, '..', 'ebb.yaml');
  await writeFile(configPath, configYaml(o));
  const proc = spawnEbb(c, ['--config', configPath, '--state-dir', o.stateDir, '--admin', '127.0.0.1:0'], {
    EBB_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    EBB_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
  });
  const started = await waitForStart(proc);
  const startedAt = Date.now();
  const endpoint = `http://${String(started['admin'])}`;
  const common = { endpoint, region: REGION, credentials: CREDENTIALS, maxAttempts: 1 };
  const as = new AutoScalingClient(common);
  const ec2 = new EC2Client(common);
  const elb = new ElasticLoadBalancingV2Client(common);
  c.add(() => {
    as.destroy();
    ec2.destroy();
    elb.destroy();
  });
  const tgs = await elb.send(new DescribeTargetGroupsCommand({ Names: [TARGET_GROUP] }));
  const tgArn = tgs.TargetGroups?.[0]?.TargetGroupArn ?? '';
  assert.notEqual(tgArn, '', 'the configuration file declares the target group');
  const served: Served = { proc, endpoint, as, ec2, elb, listenerPort: o.listenerPort, tgArn, stateDir: o.stateDir, groups: o.restartOf?.groups ?? new Set(), pids, startedAt };
  c.add(() => teardown(served));
  return served;
}

/** The launch template's UserData: a shell script that runs the app at `version`, base64 as EC2 takes it. */
export function userData(version: number): string {
  return Buffer.from(`#!/bin/sh\nAPP_VERSION=${version} exec "${process.execPath}" "${APP}"\n`).toString('base64');
}

export async function createTemplate(s: Served, name: string, version = 1): Promise<string> {
  const r = await s.ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: name, LaunchTemplateData: { UserData: userData(version) } }));
  return r.LaunchTemplate?.LaunchTemplateId ?? '';
}

/** A new version of the template whose app says `version`; it becomes $Latest. */
export async function createTemplateVersion(s: Served, name: string, version: number): Promise<number> {
  const r = await s.ec2.send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateName: name, SourceVersion: '1', LaunchTemplateData: { UserData: userData(version) } }));
  return r.LaunchTemplateVersion?.VersionNumber ?? 0;
}

export async function startRefresh(s: Served, group: string, warmupSeconds: number): Promise<string> {
  const r = await s.as.send(
    new StartInstanceRefreshCommand({
      AutoScalingGroupName: group,
      Preferences: { MinHealthyPercentage: 100, MaxHealthyPercentage: 200, InstanceWarmup: warmupSeconds },
    }),
  );
  return r.InstanceRefreshId ?? '';
}

export async function describeRefresh(s: Served, group: string, id: string): Promise<InstanceRefresh | undefined> {
  const r = await s.as.send(new DescribeInstanceRefreshesCommand({ AutoScalingGroupName: group, InstanceRefreshIds: [id] }));
  return r.InstanceRefreshes?.[0];
}

/** Polls the refresh until it is no longer Pending or InProgress; returns it as it ended. */
export async function waitRefreshEnd(s: Served, group: string, id: string, ms: number): Promise<InstanceRefresh | undefined> {
  let last: InstanceRefresh | undefined;
  await waitFor(
    async () => {
      last = await describeRefresh(s, group, id);
      return last !== undefined && last.Status !== 'Pending' && last.Status !== 'InProgress';
    },
    ms,
    200,
  );
  return last;
}

export interface GroupOptions {
  readonly name: string;
  readonly template: string;
  readonly size: number;
  readonly maxSize?: number;
  readonly healthCheckType?: 'EC2' | 'ELB';
  readonly gracePeriodSeconds?: number;
  /** Registered in the target group (default true). */
  readonly targetGroup?: boolean;
}

export async function createGroup(s: Served, g: GroupOptions): Promise<void> {
  s.groups.add(g.name);
  await s.as.send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: g.name,
      LaunchTemplate: { LaunchTemplateName: g.template, Version: '$Latest' },
      MinSize: 0,
      MaxSize: g.maxSize ?? 6,
      DesiredCapacity: g.size,
      ...(g.targetGroup === false ? {} : { TargetGroupARNs: [s.tgArn] }),
      HealthCheckType: g.healthCheckType ?? 'EC2',
      HealthCheckGracePeriod: g.gracePeriodSeconds ?? 0,
    }),
  );
}

export async function groupInstances(s: Served, group: string): Promise<Instance[]> {
  const r = await s.as.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [group] }));
  return r.AutoScalingGroups?.[0]?.Instances ?? [];
}

export async function desiredCapacity(s: Served, group: string): Promise<number | undefined> {
  const r = await s.as.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [group] }));
  return r.AutoScalingGroups?.[0]?.DesiredCapacity;
}

export async function targetHealth(s: Served): Promise<TargetHealthDescription[]> {
  const r = await s.elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: s.tgArn }));
  return r.TargetHealthDescriptions ?? [];
}

/** What DescribeInstances says of an instance: its state, pid, port and log file (ebb's tags). */
export interface Ec2Instance {
  readonly id: string;
  readonly state: string;
  readonly pid: number;
  readonly port: number;
  readonly logFile: string;
  readonly version: string;
}

export async function ec2Instances(s: Served, ids?: readonly string[]): Promise<Ec2Instance[]> {
  const r = await s.ec2.send(new DescribeInstancesCommand(ids === undefined ? {} : { InstanceIds: [...ids] }));
  const found = (r.Reservations ?? []).flatMap((res) =>
    (res.Instances ?? []).map((i) => {
      const tag = (k: string): string => i.Tags?.find((t) => t.Key === k)?.Value ?? '';
      return {
        id: i.InstanceId ?? '',
        state: i.State?.Name ?? '',
        pid: Number(tag('ebb:pid')),
        port: Number(tag('ebb:port')),
        logFile: tag('ebb:log-file'),
        version: tag('aws:ec2launchtemplate:version'),
      };
    }),
  );
  for (const i of found) if (i.pid > 0) s.pids.add(i.pid);
  return found;
}

/**
 * Waits until the group has exactly `n` instances, all InService, each healthy in the target group
 * (and nothing else registered there); returns their ids. The first health check runs at once, the
 * second 5 s later, so this takes about 5 s after the launches.
 */
export async function waitServing(s: Served, group: string, n: number, ms = 15_000): Promise<string[]> {
  let last = '';
  let ids: string[] = [];
  const held = await waitFor(
    async () => {
      const instances = await groupInstances(s, group);
      const health = await targetHealth(s);
      ids = instances.map((i) => i.InstanceId ?? '');
      last = `instances ${instances.map((i) => `${i.InstanceId}:${i.LifecycleState}`).join(' ')}; targets ${health.map((h) => `${h.Target?.Id}:${h.TargetHealth?.State}`).join(' ')}`;
      return (
        instances.length === n &&
        instances.every((i) => i.LifecycleState === 'InService') &&
        health.length === n &&
        health.every((h) => h.TargetHealth?.State === 'healthy' && ids.includes(h.Target?.Id ?? ''))
      );
    },
    ms,
    100,
  );
  if (!held) throw new Error(`timed out after ${ms} ms waiting for ${n} instances of ${group} in service and healthy; last: ${last}`);
  await ec2Instances(s);
  return ids;
}

/** One line the app wrote (see app.mjs). */
export interface AppEvent {
  readonly event: string;
  readonly at: number;
  readonly pid: number;
  readonly instance: string;
  readonly version: string;
  readonly n?: number;
  readonly path?: string;
}

/** What the instance's app wrote to its log so far (lines that are not its JSON are skipped). */
export function appEvents(stateDir: string, instanceId: string): AppEvent[] {
  let text: string;
  try {
    text = readFileSync(join(stateDir, 'instances', instanceId, 'output.log'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as AppEvent);
}

/** The wall time the app received SIGTERM, or undefined. */
export function sigtermAt(stateDir: string, instanceId: string): number | undefined {
  return appEvents(stateDir, instanceId).find((e) => e.event === 'sigterm')?.at;
}

/** A finished drain as GET /ebb/v1/drain-records answers it. */
export interface DrainRecord {
  readonly targetId: string;
  readonly port: number;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
  readonly outcome: string;
  readonly requestsCompleted: number;
  readonly requestsCut: number;
}

export async function drainRecords(s: Served): Promise<DrainRecord[]> {
  const url = new URL(`/ebb/v1/drain-records?targetGroup=${TARGET_GROUP}`, s.endpoint);
  // ebb's own API is signed as the ELB API is (docs/api.md).
  const signer = new SignatureV4({ credentials: CREDENTIALS, region: REGION, service: 'elasticloadbalancing', sha256: Sha256 });
  const signed = await signer.sign(
    new HttpRequest({ method: 'GET', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, query: { targetGroup: TARGET_GROUP }, headers: { host: url.host } }),
  );
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.request(url, { headers: signed.headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (ch: string) => (text += ch));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`drain-records answered ${res.statusCode}: ${text}`))));
    });
    req.on('error', reject);
    req.end();
  });
  return (JSON.parse(body) as { records: DrainRecord[] }).records;
}

/** An answer through the listener: status, which instance and version answered, the whole body. */
export interface AppReply {
  readonly status: number;
  readonly instance: string;
  readonly version: string;
  readonly body: string;
  readonly at: number;
}

/** One GET through `port` (a new connection unless an agent is given); rejects on a network error or after `timeoutMs`. */
export function fetchApp(port: number, path: string, agent: http.Agent | false = false, timeoutMs = 15_000): Promise<AppReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (ch: string) => (body += ch));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, instance: String(res.headers['x-instance'] ?? ''), version: String(res.headers['x-version'] ?? ''), body, at: Date.now() }),
      );
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface Load {
  readonly replies: AppReply[];
  readonly failures: string[];
  /** Stops the clients and resolves once each has finished its request. */
  stop(): Promise<void>;
}

/**
 * `clients` loops, each on its own keep-alive connection through the listener, sending
 * `/slow?ms=<requestMs>` one after another until stopped, at most `maxMs` and `maxRequests` each.
 */
export function startLoad(port: number, o: { clients: number; requestMs: number; maxMs: number; maxRequests?: number }): Load {
  const replies: AppReply[] = [];
  const failures: string[] = [];
  let stopped = false;
  const end = Date.now() + o.maxMs;
  const loops = Array.from({ length: o.clients }, async (_, k) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let n = 0; n < (o.maxRequests ?? 10_000) && !stopped && Date.now() < end; n++) {
        try {
          const r = await fetchApp(port, `/slow?ms=${o.requestMs}&client=${k}&n=${n}`, agent, 10_000);
          if (r.status === 200) replies.push(r);
          else failures.push(`client ${k} request ${n}: ${r.status} ${r.body.slice(0, 200)}`);
        } catch (e) {
          failures.push(`client ${k} request ${n}: ${(e as Error).message}`);
          await sleep(10);
        }
      }
    } finally {
      agent.destroy();
    }
  });
  const all = Promise.all(loops).then(() => undefined);
  return {
    replies,
    failures,
    stop: async () => {
      stopped = true;
      await all;
    },
  };
}

/**
 * The end of a test: every group force-deleted (its instances drain and stop) and waited for, then
 * ebb stopped with SIGTERM. Resolves with the pids seen that are still alive (none, if all went well).
 */
export async function teardown(s: Served, ms = 15_000): Promise<number[]> {
  if (s.proc.exitCode() === null) {
    for (const g of s.groups) {
      await s.as.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: g, ForceDelete: true })).catch(() => undefined);
    }
    const end = Date.now() + ms;
    for (const g of s.groups) {
      while (Date.now() < end) {
        const r = await s.as.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [g] })).catch(() => null);
        if (r === null || (r.AutoScalingGroups ?? []).length === 0) break;
        await sleep(100);
      }
    }
    process.kill(s.proc.pid, 'SIGTERM');
    await Promise.race([s.proc.exited, after(10_000, null)]);
  }
  return [...s.pids].filter(alive);
}

export { freePort };
