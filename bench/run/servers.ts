/**
 * The servers of a run, each configured here in a work directory of the run's own (never the
 * distro's services), listening on 127.0.0.1 only:
 *   backend  nginx, 1 worker, access log off: GET / -> "ok\n"
 *   haproxy  mode http, nbthread N, keep-alive both sides, http-reuse always (or safe: --haproxy-reuse), no log
 *   nginx    proxy_pass with an upstream keep-alive pool of 256, 1 worker, access log off
 *   node-floor  bench/node-floor.cjs: Node relaying each connection's bytes to a target connection of
 *            its own, no parsing, no bookkeeping: the least a Node proxy spends in CPU and memory
 *   ebb      `ebb serve` with the file below: health checks, drain accounting, X-Forwarded-*, strict
 *            parsing (its defaults) and its metrics; the access log only when asked for
 * The same settings as ../shared/bench/peers.sh and bench/protocols.sh, so the figures compare.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServerGroup, waitFor200 } from './processes.ts';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const READY_MS = 30_000;

/** An executable by name, on PATH or in the sbin directories a non-root PATH often lacks. */
export function findExecutable(name: string): string | null {
  const dirs = (process.env['PATH'] ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin', '/sbin']);
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** Where each server is pinned: null runs it unpinned. */
export interface Placement {
  /** The proxies (HAProxy, nginx as a proxy, ebb). */
  readonly proxy: string | null;
  /** wrk and the backend. */
  readonly load: string | null;
}

export interface Target {
  readonly name: string;
  readonly port: number;
  readonly group: ServerGroup;
}

function nginxTempPaths(work: string): string {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${work}/tmp/${t};`).join(' ');
}

export async function startBackend(work: string, port: number, cpus: string | null): Promise<Target> {
  const nginx = findExecutable('nginx');
  if (nginx === null) throw new Error('nginx is needed for the backend: apt-get install -y nginx');
  fs.mkdirSync(path.join(work, 'tmp'), { recursive: true });
  const conf = path.join(work, 'backend.conf');
  fs.writeFileSync(
    conf,
    `worker_processes 1; daemon off; pid ${work}/backend.pid; error_log ${work}/backend.err warn;
events { worker_connections 16384; }
http {
  ${nginxTempPaths(work)}
  access_log off; keepalive_requests 10000000; keepalive_timeout 120s; default_type text/plain;
  server { listen 127.0.0.1:${port} reuseport; location = / { return 200 "ok\\n"; } }
}
`,
  );
  const group = ServerGroup.start('backend', [nginx, '-c', conf, '-p', work], { cpus, logFile: path.join(work, 'backend.log') });
  await waitFor200(group, port, READY_MS);
  return { name: 'direct', port, group };
}

export async function startHaproxy(work: string, name: string, port: number, backendPort: number, threads: number, cpus: string | null, reuse: 'always' | 'safe' = 'always'): Promise<Target | null> {
  const haproxy = findExecutable('haproxy');
  if (haproxy === null) return null;
  const cfg = path.join(work, `${name}.cfg`);
  fs.writeFileSync(
    cfg,
    `global
  nbthread ${threads}
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse ${reuse}
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server s1 127.0.0.1:${backendPort}
`,
  );
  const group = ServerGroup.start(name, [haproxy, '-db', '-f', cfg], { cpus, logFile: path.join(work, `${name}.log`) });
  await waitFor200(group, port, READY_MS);
  return { name, port, group };
}

export async function startNginxProxy(work: string, port: number, backendPort: number, cpus: string | null): Promise<Target | null> {
  const nginx = findExecutable('nginx');
  if (nginx === null) return null;
  const conf = path.join(work, 'nginx-proxy.conf');
  fs.writeFileSync(
    conf,
    `worker_processes 1; daemon off; pid ${work}/nginx-proxy.pid; error_log ${work}/nginx-proxy.err warn;
events { worker_connections 16384; }
http {
  ${nginxTempPaths(work)}
  access_log off; keepalive_requests 10000000; keepalive_timeout 120s;
  upstream be { server 127.0.0.1:${backendPort}; keepalive 256; keepalive_requests 10000000; keepalive_timeout 120s; }
  server { listen 127.0.0.1:${port};
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_max_temp_file_size 0; } }
}
`,
  );
  const group = ServerGroup.start('nginx', [nginx, '-c', conf, '-p', work], { cpus, logFile: path.join(work, 'nginx.log') });
  await waitFor200(group, port, READY_MS);
  return { name: 'nginx', port, group };
}

/** bench/node-floor.cjs on the proxies' core, run by the node that runs ebb: Node's own floor. */
export async function startNodeFloor(work: string, port: number, backendPort: number, node: string, cpus: string | null): Promise<Target> {
  const group = ServerGroup.start('node-floor', [node, path.join(REPO, 'bench/node-floor.cjs'), String(port), String(backendPort)], { cpus, logFile: path.join(work, 'node-floor.log') });
  await waitFor200(group, port, READY_MS);
  return { name: 'node-floor', port, group };
}

/**
 * How ebb is run: compiled, as `ebb` runs it (`bin/ebb.js` runs `dist/`), into .bench/dist from the
 * sources as they are now, so a stale dist/ is never measured; or from the sources under tsx
 * (`--from-source`: no build, but tsx's compiler then adds to ebb's memory).
 */
export interface EbbBuild {
  /** The node binary, the script it runs, and what precedes the script. */
  readonly node: string;
  readonly script: string;
  readonly loader: readonly string[];
  readonly note: string;
}

/** The version a node binary reports, checked before anything is started with it. */
function nodeVersion(node: string): string {
  try {
    return execFileSync(node, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch (error) {
    throw new Error(`--node ${node}: not a node binary that runs (${(error as Error).message.split('\n')[0] ?? ''})`, { cause: error });
  }
}

export function buildEbb(fromSource: boolean, node: string): EbbBuild {
  const on = `node ${nodeVersion(node)}`;
  if (fromSource) return { node, script: path.join(REPO, 'src/main/cli.ts'), loader: ['--import', 'tsx'], note: `${on}, from the sources under tsx` };
  const outDir = path.join(REPO, '.bench', 'dist');
  fs.rmSync(outDir, { recursive: true, force: true });
  let note = `${on}, compiled by tsc into .bench/dist and run by bin/ebb.js (as the ebb command runs)`;
  try {
    execFileSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', path.join(REPO, 'tsconfig.build.json'), '--outDir', outDir], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 180_000,
    });
  } catch (error) {
    const e = error as { stdout?: Buffer; message: string };
    const report = e.stdout?.toString().slice(0, 4000) ?? e.message;
    if (!fs.existsSync(path.join(outDir, 'main/cli.js'))) throw new Error(`building ebb into ${outDir} failed (or pass --from-source):\n${report}`, { cause: error });
    // tsc emits despite type errors: a tree with work in progress elsewhere can still be measured
    process.stderr.write(`bench: tsc reported errors; measuring what it emitted:\n${report}\n`);
    note += ', despite type errors tsc reported';
  }
  // dist/ finds the dashboard's files at ../assets; so must .bench/dist
  const assets = path.join(REPO, '.bench', 'assets');
  if (!fs.existsSync(assets)) fs.symlinkSync(path.join(REPO, 'assets'), assets);
  // Run by bin/ebb.js, as `ebb` is (it may start node again with the young generation capped): a copy
  // beside .bench/dist finds it where bin/ finds dist/.
  const bin = path.join(REPO, '.bench', 'bin', 'ebb.js');
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'bin', 'ebb.js'), bin);
  return { node, script: bin, loader: [], note };
}

export interface EbbSettings {
  readonly name: string;
  readonly port: number;
  readonly adminPort: number;
  readonly backendPort: number;
  readonly accessLog: boolean;
  /** `--workers N`, or null to leave the option off (an ebb without it). */
  readonly workers: number | null;
  readonly build: EbbBuild;
  /** Node flags before the script (`--cpu-prof ...`). */
  readonly nodeFlags?: readonly string[];
}

/** ebb's file: one HTTP listener, one target group of the backend, health-checked every 5 s. */
export function ebbConfig(s: EbbSettings, work: string): string {
  const accessLog = s.accessLog ? `accessLog: { output: file, path: ${path.join(work, `${s.name}-access.log`)} }\n` : '';
  return `${accessLog}loadBalancers:
  - name: bench
    attributes: { ebb.shutdown_timeout.seconds: 1 }
    listeners:
      - protocol: HTTP
        port: ${s.port}
        address: 127.0.0.1
        defaultActions: [{ type: forward, targetGroup: bench }]
targetGroups:
  - name: bench
    protocol: HTTP
    port: ${s.backendPort}
    healthCheck: { path: /, intervalSeconds: 5, timeoutSeconds: 2, healthyThresholdCount: 2, unhealthyThresholdCount: 2, matcher: "200-399" }
    attributes: { deregistration_delay.timeout_seconds: 30 }
    targets: [{ id: 127.0.0.1 }]
`;
}

export function ebbCommand(s: EbbSettings, work: string): string[] {
  const config = path.join(work, `${s.name}.yaml`);
  fs.writeFileSync(config, ebbConfig(s, work));
  return [
    s.build.node,
    ...(s.nodeFlags ?? []),
    ...s.build.loader,
    s.build.script,
    'serve',
    '--config',
    config,
    '--no-auth',
    '--state-dir',
    path.join(work, `${s.name}-state`),
    '--admin',
    `127.0.0.1:${s.adminPort}`,
    ...(s.workers === null ? [] : ['--workers', String(s.workers)]),
  ];
}

export async function startEbb(s: EbbSettings, work: string, cpus: string | null): Promise<Target> {
  const group = ServerGroup.start(s.name, ebbCommand(s, work), { cpus, logFile: path.join(work, `${s.name}.log`), cwd: REPO });
  await waitFor200(group, s.port, READY_MS);
  return { name: s.name, port: s.port, group };
}
