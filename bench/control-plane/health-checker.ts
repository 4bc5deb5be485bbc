/**
 * One side of the health-check benchmark, run as a child process (with an IPC channel) so that its
 * CPU is its own. Its only argument is a JSON `HealthSideSpec`.
 *
 * - `ebb`: ebb's control plane (in-memory store, no data plane) with its real ActiveHealthChecker on
 *   the real clock: one load balancer, one listener per target group (so every group is in use and
 *   checked), `groups` target groups of `perGroup` IP targets each, registered one group at a time
 *   across one interval, as targets arrive in a running system. Every check's outcome travels the
 *   path it travels in `ebb serve`: the checker, then the control plane's target lifecycles.
 * - `bare-http`: the same checks at the same rate by a bare loop: `http.request` with no agent (a new
 *   connection each time), `GET`, the body read to its end, the connection closed.
 * - `bare-net`: the same with `net.connect` and a written request, the status line read from the
 *   first bytes: the least a Node program can spend on a connect–GET–close.
 *
 * Messages: the child sends `ready` once it is in its steady state (ebb: every target healthy, and
 * one more interval); the parent sends `run` (bare loops: start or stop checking), `window` (the child
 * answers with the checks it finished and the CPU it used over the next `ms`), and `exit`.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { Session } from 'node:inspector/promises';
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { ActiveHealthChecker } from '../../src/health/active-health-checker.ts';
import { realClock } from '../../src/shared/clock.ts';
import { InMemoryStateStore } from '../../src/store/in-memory-state-store.ts';

export type HealthMode = 'ebb' | 'bare-http' | 'bare-net';

export interface HealthSideSpec {
  readonly mode: HealthMode;
  /** Backend ports on 127.0.0.1; target `t` of every group is checked on `ports[t % ports.length]`. */
  readonly ports: readonly number[];
  readonly groups: number;
  readonly perGroup: number;
  readonly intervalS: number;
}

export interface ReadyMessage {
  readonly type: 'ready';
  /** For `ebb`: ms from the first registration until every target was healthy, and the CPU that took, µs. */
  readonly settleMs?: number;
  readonly settleCpuUs?: number;
  readonly healthy?: number;
}

export interface WindowResult {
  readonly type: 'window';
  /** Checks finished inside the window, and how many of them did not find the target healthy. */
  readonly checks: number;
  readonly failures: number;
  /** CPU of this process over the window, µs (user + system). */
  readonly cpuUs: number;
  readonly wallMs: number;
  readonly heapMiB: number;
  /** The longest the event loop was held up during the window, ms. */
  readonly loopDelayMaxMs: number;
  /** The most frequent reason a check failed, and how often (ebb's checker says why; a bare loop only that it failed). */
  readonly topFailure?: string;
}

export type ParentMessage =
  | { readonly type: 'run'; readonly on: boolean }
  | { readonly type: 'window'; readonly ms: number; readonly profile?: string }
  | { readonly type: 'exit' };

const PATH = '/health';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Counts finished checks while a window is open. */
class Counter {
  open = false;
  checks = 0;
  failures = 0;
  readonly #why = new Map<string, number>();
  count(ok: boolean, why = 'failed'): void {
    if (!this.open) return;
    this.checks += 1;
    if (ok) return;
    this.failures += 1;
    this.#why.set(why, (this.#why.get(why) ?? 0) + 1);
  }

  #topFailure(): string | undefined {
    const top = [...this.#why].sort((a, b) => b[1] - a[1])[0];
    return top === undefined ? undefined : `${top[1]} × ${top[0]}`;
  }

  async window(ms: number, profile: string | undefined): Promise<WindowResult> {
    const session = profile === undefined ? null : new Session();
    if (session !== null) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    this.checks = 0;
    this.failures = 0;
    this.#why.clear();
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    this.open = true;
    await sleep(ms);
    this.open = false;
    const c = process.cpuUsage(c0);
    const wallMs = performance.now() - t0;
    delay.disable();
    if (session !== null && profile !== undefined) {
      const { profile: taken } = await session.post('Profiler.stop');
      writeFileSync(profile, JSON.stringify(taken));
      session.disconnect();
    }
    const topFailure = this.#topFailure();
    return {
      type: 'window',
      checks: this.checks,
      failures: this.failures,
      cpuUs: c.user + c.system,
      wallMs,
      heapMiB: process.memoryUsage().heapUsed / 2 ** 20,
      loopDelayMaxMs: delay.max / 1e6,
      ...(topFailure === undefined ? {} : { topFailure }),
    };
  }
}

async function startEbb(spec: HealthSideSpec, counter: Counter): Promise<{ ready: ReadyMessage; close: () => Promise<void> }> {
  const checker = new ActiveHealthChecker({ clock: realClock });
  const control = new ControlPlane({ clock: realClock, store: new InMemoryStateStore(), dataPlanes: [], healthChecker: checker });
  // Why a check failed, without the port: the same reason for every target counts once.
  checker.onObservation((o) => counter.count(o.ok, o.ok ? undefined : `${o.reason}: ${o.detail.replace(/:\d+/g, ':PORT')}`));
  await control.start();
  const lb = await control.createLoadBalancer({ name: 'bench' });
  const healthCheck = { intervalSeconds: spec.intervalS, timeoutSeconds: Math.max(2, spec.intervalS - 1), healthyThresholdCount: 2, unhealthyThresholdCount: 2, path: PATH };
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
  const deadline = t0 + 20 * spec.intervalS * 1000;
  while (healthyCount() < total && performance.now() < deadline) await sleep(200);
  const settleMs = performance.now() - t0;
  const settle = process.cpuUsage(c0);
  await sleep(spec.intervalS * 1000);
  return { ready: { type: 'ready', settleMs, settleCpuUs: settle.user + settle.system, healthy: healthyCount() }, close: () => control.close() };
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

/** The checks of every target, each every interval, started evenly over the interval by a 5 ms tick while on. */
function bareLoop(spec: HealthSideSpec, counter: Counter): (on: boolean) => void {
  const check = spec.mode === 'bare-http' ? httpCheck : netCheck;
  const total = spec.groups * spec.perGroup;
  const perMs = total / (spec.intervalS * 1000);
  const portOf = (i: number): number => spec.ports[(i % spec.perGroup) % spec.ports.length] ?? 80;
  let tick: NodeJS.Timeout | null = null;
  return (on) => {
    if (tick !== null) clearInterval(tick);
    tick = null;
    if (!on) return;
    let started = 0;
    const t0 = performance.now();
    tick = setInterval(() => {
      const due = Math.floor((performance.now() - t0) * perMs);
      for (; started < due; started++) void check(portOf(started % total)).then((ok) => counter.count(ok));
    }, 5);
  };
}

const spec = JSON.parse(process.argv[2] ?? '{}') as HealthSideSpec;
const counter = new Counter();
const send = (message: ReadyMessage | WindowResult): void => void process.send?.(message);
let run: (on: boolean) => void = () => undefined;
let close: () => Promise<void> = () => Promise.resolve();
process.on('message', (message: ParentMessage) => {
  if (message.type === 'run') run(message.on);
  else if (message.type === 'window') void counter.window(message.ms, message.profile).then(send);
  else {
    run(false);
    void close().finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
if (spec.mode === 'ebb') {
  const started = await startEbb(spec, counter);
  close = started.close;
  send(started.ready);
} else {
  run = bareLoop(spec, counter);
  send({ type: 'ready' });
}
