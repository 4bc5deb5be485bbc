/**
 * The PM2 side: examples/deploy/ecosystem.config.cjs (cluster mode, wait_ready, the app's SIGINT
 * handler: PM2's recommended setup for a graceful reload) with a PM2_HOME of its own, and the
 * deploy is `pm2 reload … --update-env` with APP_VERSION=2. The workers share the port through
 * Node's cluster module in PM2's daemon, so the load connects to them directly, with nothing in
 * front: how PM2 users run it.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { MARKER_ENV, type DeployHalf, type DeployOutcome, type HalfSettings, type Teardown } from './half.ts';
import { freePort, isRunning, ProcessWatch, run, shown, waitFor, type CommandResult } from './processes.ts';

interface Pm2Process {
  readonly pid: number;
  readonly pm2_env: { readonly status: string; readonly env?: Record<string, string> };
}

/**
 * `appDrainMs` 0 is the app as PM2's documentation has it (server.close() on SIGINT, which closes
 * idle keep-alive connections at once); above 0 the app keeps them until an answer closes each
 * (APP_DRAIN_MS in app.mjs).
 */
export function pm2Half(settings: HalfSettings, appDrainMs = 0): DeployHalf {
  const home = path.join(settings.dir, 'pm2-home');
  const ecosystem = path.join(settings.root, 'examples/deploy/ecosystem.config.cjs');
  let bin: string | null = null;
  let env: NodeJS.ProcessEnv = {};
  let watch: ProcessWatch | null = null;
  let daemonPid: number | null = null;

  const pm2 = async (args: readonly string[], extra: NodeJS.ProcessEnv = {}): Promise<CommandResult> => {
    if (bin === null) throw new Error('pm2 is not set up');
    const result = await run(process.execPath, [bin, ...args], { env: { ...env, ...extra }, timeoutMs: settings.phaseMs });
    if (result.code !== 0) throw new Error(`${shown('pm2', args)} exited ${result.code}:\n${result.stderr}${result.stdout}`);
    return result;
  };
  const list = async (): Promise<Pm2Process[]> => JSON.parse((await pm2(['jlist'])).stdout) as Pm2Process[];
  const versions = (ps: Pm2Process[]): string =>
    ps.map((p) => `pid ${p.pid} ${p.pm2_env.status} v${p.pm2_env.env?.['APP_VERSION'] ?? '?'}`).join(', ');

  return {
    tool: appDrainMs === 0 ? 'PM2' : `PM2, APP_DRAIN_MS=${appDrainMs}`,
    traffic:
      'clients connect straight to the cluster workers (PM2 has no load balancer in front); ' +
      (appDrainMs === 0
        ? 'a stopping worker closes its idle keep-alive connections at once (server.close())'
        : `a stopping worker keeps idle keep-alive connections up to ${appDrainMs} ms, until an answer with Connection: close closes each`),

    async setup(): Promise<string> {
      try {
        bin = path.join(path.dirname(createRequire(import.meta.url).resolve('pm2/package.json')), 'bin', 'pm2');
      } catch {
        throw new Error('pm2 is not installed: run npm install (pm2 is a devDependency)');
      }
      fs.mkdirSync(home, { recursive: true });
      // PM2 asks version.pm2.io for updates on its first run in a PM2_HOME (then writes `touch`) and
      // once a day from its daemon: neither here, where traffic stays on 127.0.0.1.
      fs.writeFileSync(path.join(home, 'touch'), String(Date.now()));
      const port = await freePort();
      env = {
        ...process.env,
        PM2_HOME: home,
        PM2_DISABLE_VERSION_CHECK: '1',
        APP_PORT: String(port),
        APP_VERSION: '1',
        APP_INSTANCES: String(settings.instances),
        APP_DELAY_MS: String(settings.delayMs),
        APP_DRAIN_MS: String(appDrainMs),
        [MARKER_ENV]: settings.marker,
      };
      watch = new ProcessWatch(MARKER_ENV, settings.marker);
      settings.log(`pm2 start ${path.relative(settings.root, ecosystem)} (APP_PORT=${port}, PM2_HOME ${home})`);
      await pm2(['start', ecosystem]);
      daemonPid = Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8'));
      const ps = await waitFor(`${settings.instances} PM2 workers online`, settings.phaseMs, async () => {
        const ps = await list();
        return ps.length === settings.instances && ps.every((p) => p.pm2_env.status === 'online') ? ps : undefined;
      });
      settings.log(`pm2: ${versions(ps)}`);
      return `http://127.0.0.1:${port}/`;
    },

    async deploy(version: number): Promise<DeployOutcome> {
      const t0 = performance.now();
      await pm2(['reload', ecosystem, '--update-env'], { APP_VERSION: String(version) });
      const seconds = (performance.now() - t0) / 1000;
      const ps = await list();
      if (!ps.every((p) => p.pm2_env.status === 'online' && p.pm2_env.env?.['APP_VERSION'] === String(version))) {
        throw new Error(`pm2 reload returned, but the workers are: ${versions(ps)}`);
      }
      return { seconds, ownSeconds: seconds, detail: `pm2 reload returned after ${seconds.toFixed(1)} s; ${versions(ps)}` };
    },

    async teardown(): Promise<Teardown> {
      const notes: string[] = [];
      if (bin !== null && fs.existsSync(path.join(home, 'pm2.pid'))) {
        daemonPid ??= Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8'));
        const killed = await run(process.execPath, [bin, 'kill'], { env, timeoutMs: settings.phaseMs });
        if (killed.code !== 0) notes.push(`pm2 kill exited ${killed.code}: ${killed.stderr.trim()}`);
        const pid = daemonPid;
        await waitFor('the PM2 daemon to exit', 10_000, () => (isRunning(pid) ? undefined : true)).catch((e: Error) => notes.push(e.message));
      }
      notes.push(oldWorkerExits(path.join(home, 'pm2.log')));
      const still = watch?.stop() ?? [];
      const leftovers = still.map((pid) => `${pid} ${watch?.seen.get(pid) ?? ''}`);
      // Nothing of this run may outlive it: what pm2 kill left is reported above, then stopped here.
      for (const pid of still) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      const seen = watch?.seen.size ?? 0;
      notes.unshift(`pm2 kill: daemon pid ${daemonPid ?? '?'} and ${watch?.count('app.mjs') ?? 0} worker pids seen during the run, ${still.length} processes still running`);
      return { leftovers, seen, detail: notes.join('; ') };
    },
  };
}

/** How the workers a reload replaced exited, from PM2's own log: `code 0 via SIGINT ×3`. */
function oldWorkerExits(logFile: string): string {
  let text: string;
  try {
    text = fs.readFileSync(logFile, 'utf8');
  } catch {
    return 'no PM2 log to read the old workers\' exits from';
  }
  const exits = new Map<string, number>();
  for (const m of text.matchAll(/App \[[^\]]*:_old_\d+\] exited with code \[(\w+)\] via signal \[(\w+)\]/g)) {
    const key = `code ${m[1]} via ${m[2]}`;
    exits.set(key, (exits.get(key) ?? 0) + 1);
  }
  const list = [...exits].map(([k, n]) => `${k} ×${n}`).join(', ');
  return `old workers exited: ${list === '' ? 'none logged' : list}`;
}
