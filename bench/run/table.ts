/**
 * Medians of interleaved rounds and the tables printed from them. A ratio is taken within a round
 * (ebb's figure over HAProxy's in the same round) and the median of those is reported, so a round in
 * which the whole machine was slower moves both sides of it.
 */
import type { GroupMemory } from './proc.ts';
import type { Sample } from './measure.ts';

export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

export const cpuMicrosPerRequest = (s: Sample): number => (s.requests > 0 ? (s.cpuSeconds * 1e6) / s.requests : NaN);
const leaderMicrosPerRequest = (s: Sample): number => (s.requests > 0 ? (s.leaderCpuSeconds * 1e6) / s.requests : NaN);

/** Median over rounds of `f(sample) / f(reference's sample of the same round)`. */
function ratioToReference(samples: readonly Sample[], of: readonly Sample[], reference: string, f: (s: Sample) => number): number {
  return median(
    of.map((s) => {
      const ref = samples.find((r) => r.target === reference && r.connections === s.connections && r.round === s.round);
      return ref === undefined ? NaN : f(s) / f(ref);
    }),
  );
}

export interface Row {
  readonly target: string;
  readonly connections: number;
  readonly rps: number;
  readonly rpsMin: number;
  readonly rpsMax: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuMicros: number;
  /** Of `cpuMicros`, the group's first process's (ebb's own process beside its workers). */
  readonly leaderCpuMicros: number;
  readonly errors: number;
  /** Against the reference (HAProxy, or ebb --workers 1 in the scaling table), same round. */
  readonly rpsRatio: number;
  readonly cpuRatio: number;
  readonly p99Ratio: number;
  readonly memory: GroupMemory | undefined;
}

export function summarise(samples: readonly Sample[], reference: string | null, memory: ReadonlyMap<string, GroupMemory>): Row[] {
  const rows: Row[] = [];
  const targets = [...new Set(samples.map((s) => s.target))];
  for (const connections of [...new Set(samples.map((s) => s.connections))]) {
    for (const target of targets) {
      const of = samples.filter((s) => s.target === target && s.connections === connections);
      if (of.length === 0) continue;
      const rps = of.map((s) => s.requestsPerSecond);
      const ratio = (f: (s: Sample) => number): number => (reference === null ? NaN : ratioToReference(samples, of, reference, f));
      rows.push({
        target,
        connections,
        rps: median(rps),
        rpsMin: Math.min(...rps),
        rpsMax: Math.max(...rps),
        p50Ms: median(of.map((s) => s.p50Ms)),
        p99Ms: median(of.map((s) => s.p99Ms)),
        cpuMicros: median(of.map(cpuMicrosPerRequest)),
        leaderCpuMicros: median(of.map(leaderMicrosPerRequest)),
        errors: of.reduce((sum, s) => sum + s.errors, 0),
        rpsRatio: ratio((s) => s.requestsPerSecond),
        cpuRatio: ratio(cpuMicrosPerRequest),
        p99Ratio: ratio((s) => s.p99Ms),
        memory: memory.get(target),
      });
    }
  }
  return rows;
}

const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const mib = (kib: number | undefined): string => (kib === undefined ? '-' : (kib / 1024).toFixed(1));

function markdown(header: readonly string[], lines: readonly (readonly string[])[]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...lines.map((l) => `| ${l.join(' | ')} |`)].join('\n');
}

/** The columns both tables open with: who, at how many connections, and what was measured. */
function measuredCells(r: Row): string[] {
  return [r.target, String(r.connections), fixed(r.rps, 0), `${fixed(r.rpsMin, 0)}–${fixed(r.rpsMax, 0)}`, fixed(r.p50Ms, 2), fixed(r.p99Ms, 2), fixed(r.cpuMicros, 1)];
}

/** The per-core table; `reference` names the column's divisor (HAProxy). */
export function perCoreTable(rows: readonly Row[], reference: string): string {
  return markdown(
    ['target', 'conns', 'req/s', 'min–max', 'p50 ms', 'p99 ms', 'CPU µs/req', `req/s ÷ ${reference}`, `CPU/req ÷ ${reference}`, `p99 ÷ ${reference}`, 'peak RSS MiB (group sum)', 'largest process MiB', 'errors'],
    rows.map((r) => [
      ...measuredCells(r),
      fixed(r.rpsRatio, 2),
      fixed(r.cpuRatio, 2),
      fixed(r.p99Ratio, 2),
      mib(r.memory?.sumKib),
      mib(r.memory?.maxKib),
      String(r.errors),
    ]),
  );
}

/** The scaling table: each row against its family's one-process (one-thread) row in the same round. */
export function scalingTable(rows: readonly Row[], units: ReadonlyMap<string, number>): string {
  return markdown(
    ['server', 'conns', 'req/s', 'min–max', 'p50 ms', 'p99 ms', 'CPU µs/req', 'of which its first process', '× its 1', '÷ N (goal ≥ 0.85)', 'peak RSS MiB (group sum)', 'largest process MiB', 'processes', 'errors'],
    rows.map((r) => {
      const n = units.get(r.target) ?? 1;
      // A group of one process spends all of it there: said only where there are several.
      const several = (r.memory?.processes ?? 1) > 1;
      return [
        ...measuredCells(r),
        several ? fixed(r.leaderCpuMicros, 1) : '-',
        fixed(r.rpsRatio, 2),
        n === 1 ? '-' : fixed(r.rpsRatio / n, 2),
        mib(r.memory?.sumKib),
        mib(r.memory?.maxKib),
        String(r.memory?.processes ?? '-'),
        String(r.errors),
      ];
    }),
  );
}
