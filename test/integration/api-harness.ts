import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdminHandler } from '../../src/api/admin-server.ts';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import { ActiveHealthChecker } from '../../src/health/active-health-checker.ts';
import { realClock } from '../../src/shared/clock.ts';
import { InMemoryStateStore } from '../../src/store/in-memory-state-store.ts';
import { AutoScaling } from '../../src/autoscaling/auto-scaling.ts';
import { FakeInstanceRunner } from '../fakes/fake-instance-runner.ts';
import { request } from '../support/http-client.ts';
import { waitUntil } from '../support/timing.ts';

export { freePort } from '../support/ports.ts';

/**
 * An in-process ebb for API tests with real clients: a ControlPlane on an in-memory store, the HTTP
 * data plane, active health checks on the real clock, and the admin handler on 127.0.0.1:0 with one
 * access key. The `aws` CLI, boto3 and the JS SDK are pointed at `endpoint`.
 */
export interface ApiHarness {
  readonly endpoint: string;
  readonly control: ControlPlane;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  /** Environment for a client subprocess (credentials, region, one attempt, no config files). */
  readonly env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export const ACCESS_KEY_ID = 'AKIDEBBAPITEST000001';
export const SECRET_ACCESS_KEY = 'ebb-api-test-secret/with+signs';
export const REGION = 'us-east-1';

/** `region`: ebb's region (default REGION); clients are set up for it. */
export async function startApiHarness(options: { authentication?: boolean; region?: string } = {}): Promise<ApiHarness> {
  const region = options.region ?? REGION;
  const store = new InMemoryStateStore();
  const dataPlane = new HttpDataPlane({ id: 'api-test' });
  const healthChecker = new ActiveHealthChecker({ clock: realClock });
  const control = new ControlPlane({ clock: realClock, store, dataPlanes: [dataPlane], healthChecker, region, accountId: '123456789012' });
  await control.start();
  // Auto Scaling answers too; its instances come from a fake runner (no processes are started).
  const autoscaling = new AutoScaling({ clock: realClock, store, control, runner: new FakeInstanceRunner(realClock) });
  await autoscaling.start();
  const internalErrors: unknown[] = [];
  const handler = createAdminHandler({
    control,
    autoscaling,
    auth: { enabled: options.authentication !== false, credentials: [{ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }] },
    log: (entry) => {
      if (entry['level'] === 'error') internalErrors.push(entry);
    },
  });
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const env = cliEnv(ACCESS_KEY_ID, SECRET_ACCESS_KEY, region);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    control,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    region,
    env,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await autoscaling.close();
      await control.close();
      await dataPlane.close(200);
      if (internalErrors.length > 0) throw new Error(`admin API logged internal errors: ${JSON.stringify(internalErrors)}`);
    },
  };
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON (undefined when empty or not JSON). */
  readonly json: unknown;
}

/**
 * The environment the aws CLI and boto3 run with: these credentials and region, no retries, no pager,
 * no config or credentials file and no instance metadata, so nothing of the machine's own reaches them.
 */
export function cliEnv(accessKeyId: string, secretAccessKey: string, region: string = REGION): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '/tmp',
    PYENV_ROOT: process.env['PYENV_ROOT'],
    PYENV_VERSION: process.env['PYENV_VERSION'],
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_DEFAULT_REGION: region,
    AWS_MAX_ATTEMPTS: '1',
    AWS_RETRY_MODE: 'standard',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return env;
}

/** Runs `aws <args> --endpoint-url … --output json` and resolves with what it printed. */
export function aws(h: Pick<ApiHarness, 'endpoint' | 'env'>, args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return run('aws', [...args, '--endpoint-url', h.endpoint, '--output', 'json'], { ...h.env, ...extraEnv });
}

/** Runs a Python script (boto3) with the harness environment plus EBB_ENDPOINT. */
export function python(h: Pick<ApiHarness, 'endpoint' | 'env'>, script: string, args: readonly string[] = []): Promise<CliResult> {
  return run('python3', [script, ...args], { ...h.env, EBB_ENDPOINT: h.endpoint });
}

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 20_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      let json: unknown;
      try {
        json = stdout.trim() === '' ? undefined : JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

/** Why a client is not usable here, or null when it is. */
export function missingClient(which: 'aws' | 'boto3'): string | null {
  const r =
    which === 'aws'
      ? spawnSync('aws', ['--version'], { encoding: 'utf8', timeout: 15_000 })
      : spawnSync('python3', ['-c', 'import boto3'], { encoding: 'utf8', timeout: 15_000 });
  if (r.status === 0) return null;
  const why = `${which} is not installed (${(r.stderr ?? '').trim() || String(r.error)})`;
  // In CI the real clients are the judges of compatibility: their absence is a failure, not a skip.
  if (process.env['CI'] === 'true') throw new Error(`${why}; CI needs it to test API compatibility`);
  return why;
}

/** The JSON an `aws` call printed; fails the test with its stderr when it did not succeed. */
export function ok(r: CliResult): any {
  assert.equal(r.code, 0, `aws failed: ${r.stderr}`);
  return r.json;
}

/** Asserts that an `aws` call failed with this AWS error code (and a message matching `message`). */
export function failsWith(r: CliResult, code: string, message?: RegExp): void {
  assert.notEqual(r.code, 0, `expected ${code}, got success: ${r.stdout}`);
  assert.match(r.stderr, new RegExp(`An error occurred \\(${code}\\)`), r.stderr);
  if (message !== undefined) assert.match(r.stderr, message);
}

/**
 * `GET path` on 127.0.0.1:port (a listener the test created), on a fresh connection. Status and body
 * only, so a test can compare the whole answer; no time limit, as a request held through a drain
 * lasts as long as the CLI calls around it.
 */
export async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const { status, body } = await request(port, { path });
  return { status, body };
}

/**
 * A backend for drain tests: `GET /hold` requests are answered only when the test calls `release()` (or after
 * 30 s), so a drain lasts exactly as long as the test needs however slowly the CLI runs.
 */
export interface HoldingBackend {
  readonly port: number;
  /** How many /hold requests are waiting. */
  held(): number;
  release(): void;
  close(): Promise<void>;
}

export async function startHoldingBackend(name: string): Promise<HoldingBackend> {
  const waiting = new Set<ServerResponse>();
  const answer = (res: ServerResponse): void => {
    if (waiting.delete(res)) res.end(`${name} held done\n`);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/hold') {
      waiting.add(res);
      const t = setTimeout(() => answer(res), 30_000);
      res.on('close', () => {
        clearTimeout(t);
        waiting.delete(res);
      });
      return;
    }
    res.end(`${name}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    held: () => waiting.size,
    release: () => {
      for (const res of [...waiting]) answer(res);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls `fn` every 100 ms until it returns true; rejects, naming `what`, once `timeoutMs` has passed. */
export function waitFor(fn: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  return waitUntil(fn, what, timeoutMs, 100);
}
