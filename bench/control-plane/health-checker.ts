/**
 * One side of the health-check benchmark, run as a child process so that its CPU is its own. Its
 * only argument is a JSON `HealthRunSpec`; it prints one JSON `HealthRunResult` line and exits.
 *
 * - `ebb`: ebb's control plane (in-memory store, no data plane) with its real ActiveHealthChecker on
 *   the real clock: one load balancer, one listener per target group (so every group is in use and
 *   checked), `groups` target groups of `perGroup` IP targets each, registered one group at a time
 *   across one interval, as targets arrive in a running system. Every check's outcome travels the
 *   path it travels in `ebb serve`: the checker, then the control plane's target lifecycles.
 * - `bare-http`: the same checks at the same rate by a bare loop: `http.request` with no agent (a new
 *   connection each time), `GET`, the body read to its end, the connection closed.
 * - `bare-net`: the same with `net.connect` and a hand-written request, the status line read from
 *   the first bytes: the least a Node program can spend on a connect–GET–close.
 *
 * The window measured starts after `warmupS` seconds (for `ebb`: once every target is healthy and a
 * whole interval has passed since), and lasts `measureS` seconds.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { Session } from 'node:inspector/promises';
import net from 'node:net';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { ActiveHealthChecker } from '../../src/health/active-health-checker.ts';
import { realClock } from '../../src/shared/clock.ts';
import { InMemoryStateStore } from '../../src/store/in-memory-state-store.ts';

export type HealthMode = 'ebb' | 'bare-http' | 'bare-net';

export interface HealthRunSpec {
  readonly mode: HealthMode;
  /** Backend ports on 127.0.0.1; target `t` of every group is checked on `ports[t % ports.length]`. */
  readonly ports: readonly number[];
  readonly groups: number;
  readonly perGroup: number;
  readonly intervalS: number;
  readonly warmupS: number;
  readonly measureS: number;
  /** When set, a CPU profile of the window is written to this file (`.cpuprofile`, for Chrome's DevTools or speedscope). */
  readonly profile?: string;
}

export interface HealthRunResult {
  readonly mode: HealthMode;
  /** Checks finished inside the window. */
  readonly checks: number;
  /** Of those, how many did not find the target healthy. */
  readonly failures: number;
  /** CPU of this process over the window, µs (user + system). */
  readonly cpuUs: number;
  readonly wallMs: number;
  /** For `ebb`: targets healthy at the end, of all. */
  readonly healthy?: number;
  readonly targets: number;
  /** For `ebb`: ms from the first registration until every target was healthy, and the CPU that took, µs. */
  readonly settleMs?: number;
  readonly settleCpuUs?: number;
  /** Heap in use at the end, MiB. */
  readonly heapMiB: number;
}

const PATH = '/health';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Counts finished checks while the window is open. */
class Window {
  open = false;
  checks = 0;
  failures = 0;
  count(ok: boolean): void {
    if (!this.open) return;
    this.checks += 1;
    if (!ok) this.failures += 1;
  }

  async measure(seconds: number, profile: string | undefined): Promise<{ cpuUs: number; wallMs: number }> {
    const session = profile === undefined ? null : new Session();
    if (session !== null) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    this.open = true;
    await sleep(seconds * 1000);
    this.open = false;
    const c = process.cpuUsage(c0);
    const wallMs = performance.now() - t0;
    if (session !== null && profile !== undefined) {
      const { profile: taken } = await session.post('Profiler.stop');
      writeFileSync(profile, JSON.stringify(taken));
      session.disconnect();
    }
    return { cpuUs: c.user + c.system, wallMs };
  }
}

async function runEbb(spec: HealthRunSpec, window: Window): Promise<HealthRunResult> {
  const checker = new ActiveHealthChecker({ clock: realClock });
  const control = new ControlPlane({ clock: realClock, store: new InMemoryStateStore(), dataPlanes: [], healthChecker: checker });
  checker.onObservation((o) => window.count(o.ok));
  await control.start();
  const lb = await control.createLoadBalancer({ name: 'bench' });
  const healthCheck = { intervalSeconds: spec.intervalS, timeoutSeconds: 2, healthyThresholdCount: 2, unhealthyThresholdCount: 2, path: PATH };
  const groups: string[] = [];
  for (let g = 0; g < spec.groups; g++) {
    const tg = await control.createTargetGroup({ name: `bench-${g}`, protocol: 'HTTP', port: spec.ports[0] ?? 80, targetType: 'ip', healthCheck });
    await control.createListener({ loadBalancerArn: lb.arn, protocol: 'HTTP', port: 20000 + g, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
    groups.push(tg.arn);
  }
  const targets = Array.from({ length: spec.perGroup }, (_, t) => ({ id: '127.0.0.1', port: spec.ports[t % spec.ports.length] ?? 80 }));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const spacingMs = (spec.intervalS * 1000) / spec.groups;
  for (const [g, arn] of groups.entries()) {
    await sleep(Math.max(0, t0 + g * spacingMs - performance.now()));
    await control.registerTargets(arn, targets);
  }
  const healthyCount = (): number =>
    groups.reduce((n, arn) => n + control.describeTargetHealth(arn).filter((d) => d.health.state === 'healthy').length, 0);
  const total = spec.groups * spec.perGroup;
  const deadline = t0 + (spec.warmupS + 10 * spec.intervalS) * 1000;
  while (healthyCount() < total && performance.now() < deadline) await sleep(200);
  const settleMs = performance.now() - t0;
  const settle = process.cpuUsage(c0);
  await sleep(Math.max(spec.intervalS * 1000, t0 + spec.warmupS * 1000 - performance.now()));
  const { cpuUs, wallMs } = await window.measure(spec.measureS, spec.profile);
  const healthy = healthyCount();
  const heapMiB = process.memoryUsage().heapUsed / 2 ** 20;
  await control.close();
  return { mode: 'ebb', checks: window.checks, failures: window.failures, cpuUs, wallMs, healthy, targets: total, settleMs, settleCpuUs: settle.user + settle.system, heapMiB };
}

/** One check with node:http and no agent; resolves with whether it answered 200. */
function httpCheck(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'GET', path: PATH, agent: false, headers: { host: `127.0.0.1:${port}`, connection: 'close', 'user-agent': 'bench', accept: '*/*' } },
      (res) => {
        const ok = res.statusCode === 200;
        res.resume();
        res.once('end', () => {
          req.destroy();
          resolve(ok);
        });
        res.once('error', () => resolve(false));
      },
    );
    req.once('error', () => resolve(false));
    req.end();
  });
}

/** One check with a bare socket: connect, write the request, read until the server closes. */
function netCheck(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let first: Buffer | null = null;
    socket.once('connect', () => socket.write(`GET ${PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      first ??= chunk;
    });
    socket.once('end', () => socket.destroy());
    socket.once('close', () => resolve(first !== null && first.subarray(0, 12).toString('latin1') === 'HTTP/1.1 200'));
    socket.once('error', () => undefined);
  });
}

/** The checks of `targets` targets, each every interval, started evenly over the interval by one 5 ms tick. */
async function runBare(spec: HealthRunSpec, window: Window): Promise<HealthRunResult> {
  const check = spec.mode === 'bare-http' ? httpCheck : netCheck;
  const total = spec.groups * spec.perGroup;
  const perMs = total / (spec.intervalS * 1000);
  const portOf = (i: number): number => spec.ports[(i % spec.perGroup) % spec.ports.length] ?? 80;
  let started = 0;
  const t0 = performance.now();
  const tick = setInterval(() => {
    const due = Math.floor((performance.now() - t0) * perMs);
    for (; started < due; started++) void check(portOf(started % total)).then((ok) => window.count(ok));
  }, 5);
  await sleep(spec.warmupS * 1000);
  const { cpuUs, wallMs } = await window.measure(spec.measureS, spec.profile);
  clearInterval(tick);
  const heapMiB = process.memoryUsage().heapUsed / 2 ** 20;
  return { mode: spec.mode, checks: window.checks, failures: window.failures, cpuUs, wallMs, targets: total, heapMiB };
}

const spec = JSON.parse(process.argv[2] ?? '{}') as HealthRunSpec;
const window = new Window();
const result = spec.mode === 'ebb' ? await runEbb(spec, window) : await runBare(spec, window);
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
