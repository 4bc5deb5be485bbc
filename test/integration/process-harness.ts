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
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { Cleanup } from '../support/cleanup.ts';
import { spawnEbb, waitForStart, type NodeProcess } from '../support/ebb-process.ts';
import { after } from '../support/timing.ts';
import { ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY } from './api-harness.ts';

export { prng } from '../support/random.ts';

/** `ebb serve` started by `spawnServe()`. */
export type ServeProcess = NodeProcess;

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
  return spawnEbb(cleanup, args, { EBB_ACCESS_KEY_ID: ACCESS_KEY_ID, EBB_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY });
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
  const started = await waitForStart(proc, startTimeoutMs);
  if (typeof started['admin'] !== 'string') throw new Error(`ebb:started names no admin address: ${JSON.stringify(started)}`);
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
