/**
 * The benchmark's pure parts: reading wrk's output, /proc's stat and status lines, a .cpuprofile's
 * top self-time functions and its load window, the command line, and the medians and ratios.
 * Run: node --import tsx --test bench/run/parsing.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { busiestWindow, topSelfTime, type CpuProfile } from './cpuprofile.ts';
import type { Sample } from './measure.ts';
import { parseRunArgs } from './options.ts';
import { parseProcStat, parseVmHwmKib } from './proc.ts';
import { sumCounter } from './setup.ts';
import { median, scalingTable, summarise } from './table.ts';
import { parseWrk, wrkCommand } from './wrk.ts';

const WRK = `Running 1s test @ http://127.0.0.1:18999/
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.03ms    4.86ms  38.31ms   93.83%
    Req/Sec    12.13k     5.69k   22.82k    70.00%
  Latency Distribution
     50%  396.00us
     75%    1.44ms
     90%    4.15ms
     99%    1.02s
  12086 requests in 1.01s, 1.44MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:  11995.27
Transfer/sec:      1.43MB
`;

test('wrk: req/s, requests, p50, p99 and the slowest in ms whatever unit wrk chose, socket errors and non-2xx counted as errors', () => {
  assert.deepEqual(parseWrk(WRK), { requestsPerSecond: 11995.27, p50Ms: 0.396, p99Ms: 1020, maxMs: 38.31, requests: 12086, errors: 11 });
  assert.equal(parseWrk(WRK.replace('38.31ms', '1.17s')).maxMs, 1170);
  const clean = parseWrk(WRK.replace(/ {2}Socket errors.*\n {2}Non-2xx.*\n/, '').replace('99%    1.02s', '99%   28.30ms'));
  assert.equal(clean.errors, 0);
  assert.equal(clean.p99Ms, 28.3);
});

test('wrk command: pinned with taskset when given CPUs; Connection: close sent only for --new-connections', () => {
  assert.deepEqual(wrkCommand('http://127.0.0.1:1/', 64, 5, null), ['wrk', '-t1', '-c64', '-d5s', '--timeout', '5s', '--latency', 'http://127.0.0.1:1/']);
  assert.deepEqual(wrkCommand('http://127.0.0.1:1/', 16, 3, '0', true), ['taskset', '-c', '0', 'wrk', '-t1', '-c16', '-d3s', '--timeout', '5s', '--latency', '-H', 'Connection: close', 'http://127.0.0.1:1/']);
});

test('wrk: output without results (it failed) gives NaN, not zero', () => {
  const r = parseWrk('unable to connect to 127.0.0.1:1 Connection refused\n');
  assert.ok(Number.isNaN(r.requestsPerSecond) && Number.isNaN(r.p99Ms) && Number.isNaN(r.maxMs) && Number.isNaN(r.requests));
});

test('/proc/PID/stat: pgid and utime+stime, counted from the last parenthesis of the command name', () => {
  const line = '4242 (node (x) y) S 1 4200 4200 0 -1 4194560 100 0 0 0 731 129 0 0 20 0 11 0 3448557 1 2 3';
  assert.deepEqual(parseProcStat(line), { pid: 4242, pgid: 4200, cpuTicks: 860 });
  assert.equal(parseProcStat('garbage'), null);
});

test('/proc/PID/status: VmHWM in KiB; none for a zombie', () => {
  assert.equal(parseVmHwmKib('Name:\tnode\nVmPeak:\t 999 kB\nVmHWM:\t  121148 kB\nVmRSS:\t 1 kB\n'), 121148);
  assert.equal(parseVmHwmKib('Name:\tnode\nState:\tZ (zombie)\n'), null);
});

/** A profile sampled every 10 ms from its start: `count` samples of each named function in turn. */
function profileOf(parts: readonly (readonly [string, number])[]): CpuProfile {
  const names = ['(root)', '(idle)', 'startup', 'handle', 'parse', '(garbage collector)'];
  const nodes = names.map((functionName, i) => ({ id: i + 1, callFrame: { functionName, url: i >= 2 && i <= 4 ? 'file:///repo/src/x.ts' : '', lineNumber: i, columnNumber: 0 } }));
  const samples: number[] = [];
  for (const [name, count] of parts) for (let i = 0; i < count; i++) samples.push(names.indexOf(name) + 1);
  return { nodes, startTime: 0, endTime: samples.length * 10_000, samples, timeDeltas: samples.map((_, i) => (i === 0 ? 0 : 10_000)) };
}

test('cpuprofile: top functions by self time, idle left out of the percentages, locations shortened', () => {
  const p = profileOf([['handle', 6], ['parse', 3], ['(idle)', 10], ['handle', 1]]);
  const s = topSelfTime(p, 2, '/repo');
  assert.equal(s.totalMs, 200);
  assert.equal(s.idleMs, 100);
  assert.deepEqual(s.top, [
    { functionName: 'handle', location: 'src/x.ts:4', selfMs: 70, percent: 70 },
    { functionName: 'parse', location: 'src/x.ts:5', selfMs: 30, percent: 30 },
  ]);
});

test('cpuprofile: the longest busy stretch is the load round, and only it is counted', () => {
  // startup (busy 0.3 s), idle 1 s, the round (busy 1 s), idle 1 s, shutdown (busy 0.1 s)
  const p = profileOf([['startup', 30], ['(idle)', 100], ['handle', 80], ['(garbage collector)', 20], ['(idle)', 100], ['startup', 10]]);
  const w = busiestWindow(p);
  assert.deepEqual(w, { start: 1_300_000, end: 2_300_000 });
  const s = topSelfTime(p, 5, '/repo', w);
  assert.deepEqual(s.top.map((e) => [e.functionName, e.selfMs]), [['handle', 800], ['(garbage collector)', 200]]);
});

test('command line: defaults, flags, and errors that show the usage', () => {
  const d = parseRunArgs([], 2);
  assert.deepEqual([d.mode, d.seconds, d.rounds, d.connections, d.pin, d.accessLog, d.maxWorkers], ['per-core', 5, 3, [64, 256], true, false, 2]);
  const o = parseRunArgs(['-d', '2', '-r', '1', '-c', '64,128 512', '--no-pin', '--access-log', '--workers', '4'], 2);
  assert.deepEqual([o.mode, o.seconds, o.rounds, o.connections, o.pin, o.accessLog, o.maxWorkers], ['workers', 2, 1, [64, 128, 512], false, true, 4]);
  assert.equal(parseRunArgs(['--workers', '-d', '1'], 8).maxWorkers, 8);
  assert.equal(parseRunArgs(['--profile'], 2).mode, 'profile');
  assert.equal(parseRunArgs(['--node', '/opt/node24/bin/node'], 2).node, '/opt/node24/bin/node');
  assert.deepEqual(d.nodeFlags, []);
  assert.equal(d.newConnections, false);
  assert.equal(parseRunArgs(['--new-connections', '--haproxy-reuse', 'safe'], 2).newConnections, true);
  assert.throws(() => parseRunArgs(['--new-connections', '--workers'], 2), /not --workers.*Usage/s);
  assert.deepEqual([d.warmupWindows, parseRunArgs(['--warmup', '0'], 2).warmupWindows, parseRunArgs(['--warmup', '3'], 2).warmupWindows], [2, 0, 3]);
  assert.throws(() => parseRunArgs(['--warmup', '0.5'], 2), /--warmup needs a positive whole number/);
  assert.deepEqual(parseRunArgs(['--node-flags', '--max-semi-space-size=1  --trace-gc'], 2).nodeFlags, ['--max-semi-space-size=1', '--trace-gc']);
  assert.deepEqual(parseRunArgs(['--node-flags=--max-semi-space-size=2'], 2).nodeFlags, ['--max-semi-space-size=2']);
  assert.throws(() => parseRunArgs(['--node-flags', 'max-semi-space-size=1'], 2), /each starting with --/);
  assert.throws(() => parseRunArgs(['-r', '1.5'], 2), /-r needs a positive whole number.*Usage/s);
  assert.throws(() => parseRunArgs(['--workers', '1'], 2), /at least 2/);
  assert.throws(() => parseRunArgs(['--fast'], 2), /unknown option '--fast'/);
});

test('metrics text: a counter summed over its series', () => {
  const text = '# TYPE ebb_request_count counter\nebb_request_count{lb="a",tg="b"} 40\nebb_request_count{lb="c",tg="d"} 2\nebb_request_count_other 9\n';
  assert.equal(sumCounter(text, 'ebb_request_count'), 42);
  assert.equal(sumCounter(text, 'ebb_missing'), null);
});

test('medians, and ratios taken within a round before their median', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  const s = (target: string, round: number, rps: number, cpuSeconds: number): Sample => ({
    target, connections: 64, round, requestsPerSecond: rps, p50Ms: 1, p99Ms: rps / 1000, maxMs: rps / 100, requests: rps, errors: 0, cpuSeconds, leaderCpuSeconds: cpuSeconds / 4,
  });
  // HAProxy's round 2 is slow: the ratio within each round is 0.5 regardless
  const rows = summarise([s('haproxy', 1, 100_000, 1), s('ebb', 1, 50_000, 1), s('haproxy', 2, 60_000, 0.6), s('ebb', 2, 30_000, 0.6), s('haproxy', 3, 100_000, 1), s('ebb', 3, 50_000, 1)], 'haproxy', new Map());
  const ebb = rows.find((r) => r.target === 'ebb');
  assert.equal(ebb?.rps, 50_000);
  assert.equal(ebb?.rpsRatio, 0.5);
  assert.equal(ebb?.cpuRatio, 2);
  assert.equal(ebb?.cpuMicros, 20);
  assert.equal(ebb?.leaderCpuMicros, 5, "its first process's share, per request");
});

test("the scaling table gives a group's first process's CPU per request only where the group has several", () => {
  const s = (target: string, round: number): Sample => ({
    target, connections: 64, round, requestsPerSecond: 10_000, p50Ms: 1, p99Ms: 2, maxMs: 9, requests: 10_000, errors: 0, cpuSeconds: 0.3, leaderCpuSeconds: 0.02,
  });
  const memory = new Map([
    ['ebb --workers 2', { sumKib: 300 * 1024, maxKib: 110 * 1024, processes: 3 }],
    ['haproxy nbthread 2', { sumKib: 20 * 1024, maxKib: 20 * 1024, processes: 1 }],
  ]);
  const rows = summarise([s('ebb --workers 2', 1), s('haproxy nbthread 2', 1)], null, memory);
  const lines = scalingTable(rows, new Map([['ebb --workers 2', 2], ['haproxy nbthread 2', 2]])).split('\n');
  assert.match(lines[0] ?? '', /\| CPU µs\/req \| of which its first process \|/);
  assert.match(lines.find((l) => l.startsWith('| ebb --workers 2')) ?? '', /\| 30\.0 \| 2\.0 \|/);
  assert.match(lines.find((l) => l.startsWith('| haproxy nbthread 2')) ?? '', /\| 30\.0 \| - \|/);
});
