/**
 * ebb's own load benchmark: the same tiny backend measured directly and through ebb's data plane,
 * in the same run, with 64 keep-alive connections. `npm run bench` (about 40 s).
 *
 * Backend: nginx (1 worker, `return 200 "ok\n"`) when installed, else a node:http server in a child
 * process. Load: `wrk` when on PATH, else a small built-in keep-alive client loop (then ebb's CPU
 * figure includes the client's, and is marked so). ebb runs in this process with every feature on
 * (smuggling rules, X-Forwarded-*, hop-by-hop filtering, activity tracking, timeouts); CPU µs per
 * request comes from process.cpuUsage() over the measured window.
 *
 * Env: BENCH_SECONDS (default 8), BENCH_CONNECTIONS (default 64), BENCH_ROUNDS (default 2), BENCH_TELEMETRY (0: no metrics listening).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ControlApi } from '../src/control/control-api.ts';
import type { ControlEvents } from '../src/control/events.ts';
import { HttpDataPlane } from '../src/dataplane/http-data-plane.ts';
import { TypedEmitter } from '../src/shared/typed-emitter.ts';
import { EbbMetrics } from '../src/telemetry/metrics/ebb-metrics.ts';
import { singleGroupSnapshot } from './snapshot.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const WARMUP_S = 2;
/**
 * With ebb's metrics listening to the data plane's channels, as under `ebb serve` (default): the
 * request-end message is then built for every request, which a bench without listeners never pays.
 * BENCH_TELEMETRY=0 measures the bare data plane.
 */
const TELEMETRY = process.env.BENCH_TELEMETRY !== '0';

/** The little of a control plane the metrics read at a scrape (none happens here) or on a new listener. */
function benchControl(): ControlApi {
  return {
    events: new TypedEmitter<ControlEvents>(),
    describeLoadBalancers: () => [],
    describeListeners: () => [],
    describeTargetGroups: () => [],
    describeTargetHealth: () => [],
    loadBalancersOfTargetGroup: () => [],
  } as unknown as ControlApi;
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
}

function onPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin'])) {
    const p = path.join(dir, cmd);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitUp(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      http
        .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        })
        .on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing answered 200 on 127.0.0.1:${port} within 10 s`);
}

async function startBackend(): Promise<{ port: number; name: string; child: ChildProcess; dir: string | null }> {
  const port = await freePort();
  const nginx = onPath('nginx');
  if (nginx !== null) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebb-bench-'));
    fs.writeFileSync(
      path.join(dir, 'nginx.conf'),
      `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000; client_body_temp_path ${dir};
  proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server { listen 127.0.0.1:${port}; location = / { return 200 "ok\\n"; } } }\n`,
    );
    const child = spawn(nginx, ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
    await waitUp(port);
    return { port, name: 'nginx', child, dir };
  }
  const code = `require('http').createServer((q,s)=>s.end('ok\\n')).listen(${port},'127.0.0.1')`;
  const child = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  await waitUp(port);
  return { port, name: 'node:http', child, dir: null };
}

function runWrk(wrk: string, port: number, seconds: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(wrk, ['-t1', `-c${CONNS}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
      const ms = (re: RegExp): number => {
        const m = re.exec(out);
        if (m === null) return NaN;
        const v = Number(m[1]);
        return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
      };
      const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
      resolve({
        rps: num(/Requests\/sec:\s+([\d.]+)/),
        p50: ms(/50%\s+([\d.]+)(us|ms|s)/),
        p99: ms(/99%\s+([\d.]+)(us|ms|s)/),
        requests: num(/(\d+) requests in/),
        errors: (errs === null ? 0 : errs.slice(1).reduce((a, b) => a + Number(b), 0)) + (Number.isNaN(non2xx) ? 0 : non2xx),
      });
    });
  });
}

/** Fallback load generator: CONNS keep-alive loops with node:http (less precise than wrk). */
async function runLoop(port: number, seconds: number): Promise<Result> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
  const lat: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      http
        .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode !== 200) errors++;
            lat.push(performance.now() - t0);
            resolve();
          });
        })
        .on('error', () => {
          errors++;
          resolve();
        });
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONNS }, async () => {
      while (performance.now() < end) await one();
    }),
  );
  agent.destroy();
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  return { rps: lat.length / ((performance.now() - t0) / 1000), p50: q(0.5), p99: q(0.99), errors, requests: lat.length };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function main(): Promise<void> {
  const wrk = onPath('wrk');
  const backend = await startBackend();
  const ebbPort = await freePort();
  const dp = new HttpDataPlane({ id: 'bench', log: (l) => process.stderr.write(`${JSON.stringify(l)}\n`) });
  const metrics = TELEMETRY ? new EbbMetrics({ control: benchControl(), dataPlanes: [dp], processMetrics: false }) : null;
  const stopAll = (): void => {
    metrics?.close();
    dp.destroy();
    backend.child.kill('SIGTERM');
    if (backend.dir !== null) fs.rmSync(backend.dir, { recursive: true, force: true });
  };
  try {
    const applied = await dp.apply(singleGroupSnapshot(ebbPort, [backend.port]));
    if (applied.listenerErrors.length > 0) throw new Error(JSON.stringify(applied.listenerErrors));
    await waitUp(ebbPort);
    const load = (port: number, s: number): Promise<Result> => (wrk !== null ? runWrk(wrk, port, s) : runLoop(port, s));
    process.stderr.write(
      `bench: backend ${backend.name} :${backend.port}, ebb :${ebbPort}, load ${wrk !== null ? 'wrk' : 'built-in loop'}, ` +
        `${CONNS} connections, ${ROUNDS} x ${SECONDS} s per target, ${TELEMETRY ? "ebb's metrics listening (as ebb serve)" : 'no listeners (BENCH_TELEMETRY=0)'}\n`,
    );
    await load(backend.port, WARMUP_S);
    await load(ebbPort, WARMUP_S);
    const direct: Result[] = [];
    const ebb: Result[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      direct.push(await load(backend.port, SECONDS));
      const c0 = process.cpuUsage();
      const res = await load(ebbPort, SECONDS);
      const c = process.cpuUsage(c0);
      ebb.push(res);
      cpu.push((c.user + c.system) / Math.max(1, res.requests));
      process.stderr.write(`  round ${r + 1}: direct ${direct[r]?.rps.toFixed(0)} req/s, ebb ${res.rps.toFixed(0)} req/s\n`);
    }
    const row = (name: string, rs: Result[], cpuUs: string, ratio: string): string =>
      `| ${name} | ${median(rs.map((x) => x.rps)).toFixed(0)} | ${median(rs.map((x) => x.p50)).toFixed(2)} | ` +
      `${median(rs.map((x) => x.p99)).toFixed(2)} | ${cpuUs} | ${ratio} | ${rs.reduce((a, x) => a + x.errors, 0)} |`;
    const ratio = median(ebb.map((x, i) => x.rps / (direct[i]?.rps ?? NaN)));
    console.log(
      `\nebb load benchmark: ${CONNS} connections, tiny body, backend ${backend.name}, ${wrk !== null ? 'wrk' : 'built-in client'}, ` +
        `medians of ${ROUNDS} x ${SECONDS} s, ${TELEMETRY ? 'with' : 'without'} ebb's metrics listening`,
    );
    console.log('| target | req/s | p50 ms | p99 ms | ebb CPU µs/req | ebb/direct | errors |');
    console.log('|---|---|---|---|---|---|---|');
    console.log(row('direct', direct, '-', '1.00'));
    console.log(row('ebb', ebb, `${median(cpu).toFixed(1)}${wrk === null ? ' (incl. client)' : ''}`, ratio.toFixed(2)));
    console.log(
      '\nFor the side-by-side with HAProxy and nginx (the whole ebb serve, built first with npm run build):\n' +
        "  ../shared/bench/peers.sh --candidate 'node bin/ebb.js serve --workers 1 --config bench/peers-ebb.yaml --no-auth " +
        "--state-dir $(mktemp -d) --admin 127.0.0.1:0' --candidate-port 18090 --candidate-name ebb",
    );
  } finally {
    stopAll();
  }
}

await main();
