/**
 * The admin-API halves of the control-plane benchmark, each against a fresh `ebb serve` (SQLite
 * store in a new state directory, admin API on 127.0.0.1, signed calls):
 *
 * - `describeBench`: one target group of `targets` registered IP targets, forwarded to by a listener
 *   so they are health-checked (nothing listens on their ports: they are unhealthy, the longest
 *   description), then `calls` DescribeTargetHealth calls one after another.
 * - `registerBench`: `clients` clients of `connections` keep-alive connections each, every connection a
 *   loop that calls RegisterTargets with one new target, back to back, for `seconds`. ebb's admin API
 *   takes at most 8 requests at once from one client address, so each client sends from its own
 *   loopback address (127.0.0.1, 127.0.0.2, ...), as separate machines would. Afterwards ebb is killed
 *   with SIGKILL and started again on the same state directory, and every target whose registration
 *   was answered must be there (durable before its answer, at least against a crash of the process).
 *
 * ebb's CPU is read from /proc/<pid>/stat (Linux), so it is ebb's own, apart from the client's.
 */
import { readFileSync } from 'node:fs';
import { Cleanup, tempDir } from '../../test/support/cleanup.ts';
import { spawnEbb, waitForStart, type NodeProcess } from '../../test/support/ebb-process.ts';
import { freePort } from '../../test/support/ports.ts';
import { SignedQueryClient, xmlValue } from './signed-query.ts';

const CREDENTIALS = { accessKeyId: 'AKIDEBBBENCH00000001', secretAccessKey: 'ebb-bench-secret' };
const REGION = 'us-east-1';

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface DescribeResult {
  readonly targets: number;
  readonly latency: LatencySummary;
  /** ebb's CPU per call, µs (null where /proc is not there). */
  readonly cpuUsPerCall: number | null;
  readonly bytes: number;
}

export interface RegisterResult {
  readonly clients: number;
  readonly connections: number;
  readonly seconds: number;
  readonly answered: number;
  readonly errors: number;
  readonly callsPerSecond: number;
  readonly latency: LatencySummary;
  readonly cpuUsPerCall: number | null;
  /** Targets found after SIGKILL and a restart, and how many answered registrations were missing. */
  readonly foundAfterKill: number;
  readonly lostAfterKill: number;
  readonly firstError?: string;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? NaN;
  return { count: s.length, p50: q(0.5), p99: q(0.99), max: s[s.length - 1] ?? NaN };
}

/** ebb's CPU time so far, µs (utime + stime), or null without /proc. */
function processCpuUs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1e6) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

interface Served {
  readonly proc: NodeProcess;
  readonly client: SignedQueryClient;
  /** One client per loopback address 127.0.0.1 ... 127.0.0.<clients>. */
  readonly clients: SignedQueryClient[];
}

async function serve(cleanup: Cleanup, stateDir: string, connections: number, clients = 1): Promise<Served> {
  const proc = spawnEbb(cleanup, ['--admin', '127.0.0.1:0', '--state-dir', stateDir], {
    EBB_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    EBB_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
  });
  const started = await waitForStart(proc, 30_000);
  const all = Array.from({ length: clients }, (_, i) => new SignedQueryClient(`http://${String(started['admin'])}`, CREDENTIALS, REGION, connections, `127.0.0.${i + 1}`));
  for (const c of all) cleanup.add(() => c.close());
  return { proc, client: all[0] as SignedQueryClient, clients: all };
}

async function ok(client: SignedQueryClient, action: string, params: Readonly<Record<string, string>>): Promise<string> {
  const answer = await client.call(action, params);
  if (answer.status !== 200) throw new Error(`${action} answered ${answer.status}: ${answer.body.slice(0, 500)}`);
  return answer.body;
}

function targetParams(targets: ReadonlyArray<{ id: string; port: number }>): Record<string, string> {
  const params: Record<string, string> = {};
  targets.forEach((t, i) => {
    params[`Targets.member.${i + 1}.Id`] = t.id;
    params[`Targets.member.${i + 1}.Port`] = String(t.port);
  });
  return params;
}

export async function describeBench(options: { targets: number; calls: number }): Promise<DescribeResult> {
  const cleanup = new Cleanup();
  try {
    const { proc, client } = await serve(cleanup, await tempDir(cleanup), 1);
    const lbArn = xmlValue(await ok(client, 'CreateLoadBalancer', { Name: 'bench' }), 'LoadBalancerArn');
    const tgArn = xmlValue(
      await ok(client, 'CreateTargetGroup', { Name: 'bench', Protocol: 'HTTP', Port: '80', TargetType: 'ip', VpcId: 'vpc-bench' }),
      'TargetGroupArn',
    );
    const listenerPort = await freePort();
    await ok(client, 'CreateListener', {
      LoadBalancerArn: lbArn,
      Protocol: 'HTTP',
      Port: String(listenerPort),
      'DefaultActions.member.1.Type': 'forward',
      'DefaultActions.member.1.TargetGroupArn': tgArn,
    });
    // Ports nobody listens on, from 1: each check is refused at once.
    const all = Array.from({ length: options.targets }, (_, i) => ({ id: '127.0.0.1', port: 1 + i }));
    for (let i = 0; i < all.length; i += 100) await ok(client, 'RegisterTargets', { TargetGroupArn: tgArn, ...targetParams(all.slice(i, i + 100)) });
    const describe = { TargetGroupArn: tgArn };
    for (let i = 0; i < 5; i++) await ok(client, 'DescribeTargetHealth', describe);
    const times: number[] = [];
    let bytes = 0;
    const cpu0 = processCpuUs(proc.pid);
    for (let i = 0; i < options.calls; i++) {
      const answer = await client.call('DescribeTargetHealth', describe);
      if (answer.status !== 200) throw new Error(`DescribeTargetHealth answered ${answer.status}: ${answer.body.slice(0, 500)}`);
      const described = answer.body.split('<TargetHealth>').length - 1;
      if (described !== options.targets) throw new Error(`DescribeTargetHealth described ${described} targets, not ${options.targets}`);
      times.push(answer.ms);
      bytes = answer.body.length;
    }
    const cpu1 = processCpuUs(proc.pid);
    return {
      targets: options.targets,
      latency: summarize(times),
      cpuUsPerCall: cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / options.calls,
      bytes,
    };
  } finally {
    await cleanup.run();
  }
}

/** 10.x.y.z for the nth target: distinct for the first 16 million. */
function nthAddress(n: number): string {
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

export async function registerBench(options: { clients: number; connections: number; seconds: number }): Promise<RegisterResult> {
  const cleanup = new Cleanup();
  try {
    const stateDir = await tempDir(cleanup);
    const first = await serve(cleanup, stateDir, options.connections, options.clients);
    const loops = first.clients.flatMap((client) => Array.from({ length: options.connections }, () => client));
    const tgArn = xmlValue(
      await ok(first.client, 'CreateTargetGroup', { Name: 'register', Protocol: 'HTTP', Port: '80', TargetType: 'ip', VpcId: 'vpc-bench' }),
      'TargetGroupArn',
    );
    // Warm the path (JIT, connections) with a few calls not counted.
    let next = 0;
    await Promise.all(loops.map((client) => ok(client, 'RegisterTargets', { TargetGroupArn: tgArn, ...targetParams([{ id: nthAddress(next++), port: 80 }]) })));
    const acknowledged = new Set<string>(Array.from({ length: next }, (_, i) => nthAddress(i)));
    const times: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    const cpu0 = processCpuUs(first.proc.pid);
    const t0 = performance.now();
    const end = t0 + options.seconds * 1000;
    await Promise.all(
      loops.map(async (client) => {
        while (performance.now() < end) {
          const id = nthAddress(next++);
          try {
            const answer = await client.call('RegisterTargets', { TargetGroupArn: tgArn, ...targetParams([{ id, port: 80 }]) });
            if (answer.status === 200) {
              acknowledged.add(id);
              times.push(answer.ms);
            } else {
              errors += 1;
              firstError ??= `${answer.status}: ${answer.body.slice(0, 300)}`;
            }
          } catch (error) {
            errors += 1;
            firstError ??= String(error);
          }
        }
      }),
    );
    const wallS = (performance.now() - t0) / 1000;
    const cpu1 = processCpuUs(first.proc.pid);
    // Every answered registration must survive a SIGKILL.
    process.kill(first.proc.pid, 'SIGKILL');
    await first.proc.exited;
    const second = await serve(cleanup, stateDir, 1);
    const body = await ok(second.client, 'DescribeTargetHealth', { TargetGroupArn: tgArn });
    const found = new Set([...body.matchAll(/<Id>([^<]*)<\/Id>/g)].map((m) => m[1] ?? ''));
    let lost = 0;
    for (const id of acknowledged) if (!found.has(id)) lost += 1;
    return {
      clients: options.clients,
      connections: options.connections,
      seconds: wallS,
      answered: times.length,
      errors,
      callsPerSecond: times.length / wallS,
      latency: summarize(times),
      cpuUsPerCall: cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / Math.max(1, times.length),
      foundAfterKill: found.size,
      lostAfterKill: lost,
      ...(firstError === undefined ? {} : { firstError }),
    };
  } finally {
    await cleanup.run();
  }
}
