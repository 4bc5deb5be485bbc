/**
 * `ebb serve` as a child process with admin credentials, for tests that kill and restart it:
 * the crash loop and the restart-during-drain tests.
 *
 * - `serve()`: spawns `node --import tsx src/main/cli.ts serve --admin 127.0.0.1:0 --state-dir DIR`
 *   with EBB_ACCESS_KEY_ID / EBB_SECRET_ACCESS_KEY set, waits for `ebb:started`, and returns the
 *   process with its admin endpoint and a JS SDK v3 ELBv2 client signed with those credentials.
 * - `kill()`: one signal to the process by its pid, then waits for it to exit.
 *
 * Everything started is registered with the harness's `Cleanup` (SIGKILL by pid if still running).
 */
import type { ChildProcess } from 'node:child_process';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY } from './api-harness.ts';
import { after, spawnEbb, type Cleanup } from './harness.ts';

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logs: Array<Record<string, unknown>>;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code, or the signal name, once the process has exited. */
  readonly exited: Promise<number | string>;
  exitCode(): number | string | null;
  /** Waits for a log line matching `pred`; returns it, or null after `ms` or once the process exited. */
  waitForLog(pred: (line: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown> | null>;
  /** Log lines at level error, and stdout lines that were not JSON. */
  problems(): Array<Record<string, unknown>>;
}

export interface Served {
  readonly proc: ServeProcess;
  readonly endpoint: string;
  readonly client: ElasticLoadBalancingV2Client;
  /** Milliseconds from spawn to the `ebb:started` line. */
  readonly startupMs: number;
  /** Wall time of the spawn. */
  readonly spawnedAt: number;
}

/** Spawns `ebb serve` with admin credentials in the environment; killed by pid at cleanup if still running. */
export function spawnServe(cleanup: Cleanup, args: readonly string[]): ServeProcess {
  const spawned = spawnEbb(cleanup, args, { EBB_ACCESS_KEY_ID: ACCESS_KEY_ID, EBB_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY });
  const pid = spawned.child.pid;
  if (pid === undefined) throw new Error('ebb serve could not be spawned');
  return {
    ...spawned,
    pid,
    problems: () => spawned.logs.filter((l) => l['level'] === 'error' || 'unparsed' in l),
  };
}

/** A JS SDK v3 ELBv2 client for `endpoint`, signed with the credentials `spawnServe` gives ebb, one attempt. */
export function sdkClient(endpoint: string): ElasticLoadBalancingV2Client {
  return new ElasticLoadBalancingV2Client({
    endpoint,
    region: REGION,
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
    maxAttempts: 1,
  });
}

/**
 * `ebb serve --admin 127.0.0.1:0 --state-dir stateDir [extra]`, resolved once it logged `ebb:started`
 * (its admin port is read from that line). The SDK client is destroyed at cleanup.
 */
export async function serve(cleanup: Cleanup, stateDir: string, extra: readonly string[] = [], startTimeoutMs = 15_000): Promise<Served> {
  const spawnedAt = Date.now();
  const proc = spawnServe(cleanup, ['--admin', '127.0.0.1:0', '--state-dir', stateDir, ...extra]);
  const started = await proc.waitForLog((l) => l['event'] === 'ebb:started', startTimeoutMs);
  if (started === null || typeof started['admin'] !== 'string') {
    throw new Error(`ebb serve did not start (exit ${String(proc.exitCode())}): ${proc.stderr()}${proc.stdout().slice(-2000)}`);
  }
  const startupMs = Date.now() - spawnedAt;
  const endpoint = `http://${started['admin']}`;
  const client = sdkClient(endpoint);
  cleanup.add(() => client.destroy());
  return { proc, endpoint, client, startupMs, spawnedAt };
}

/** Sends `signal` to the process by pid and waits up to `ms` for it to exit; resolves with how it exited. */
export async function kill(proc: ServeProcess, signal: NodeJS.Signals, ms = 10_000): Promise<number | string> {
  if (proc.exitCode() === null) process.kill(proc.pid, signal);
  const how = await Promise.race([proc.exited, after(ms, null)]);
  if (how === null) throw new Error(`ebb (pid ${proc.pid}) did not exit within ${ms} ms of ${signal}`);
  return how;
}

/** A small seeded PRNG (mulberry32), so a failing random run can be repeated with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
