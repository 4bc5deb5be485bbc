/**
 * The top functions by self time in a V8 .cpuprofile (what `node --cpu-prof` writes): each sample
 * names the node that was running, and lasts until the next sample (the last one until endTime), as
 * Chrome's DevTools counts it. Nodes of one function reached along different call paths are added up.
 */
export interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number };
}

export interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTime {
  readonly functionName: string;
  /** file:line (1-based), shortened to the repository or node_modules; empty for V8's own entries. */
  readonly location: string;
  readonly selfMs: number;
  /** Of the time the process was not idle. */
  readonly percent: number;
}

export interface ProfileSummary {
  readonly top: readonly SelfTime[];
  readonly totalMs: number;
  readonly idleMs: number;
}

function shortLocation(url: string, line: number, repo: string): string {
  if (url === '') return '';
  let file = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) file = file.slice(nm + 1);
  else if (repo !== '' && file.startsWith(`${repo}/`)) file = file.slice(repo.length + 1).replace(/^\.bench\//, '');
  return `${file}:${line + 1}`;
}

export function parseCpuProfile(text: string): CpuProfile {
  const p = JSON.parse(text) as Partial<CpuProfile>;
  if (!Array.isArray(p.nodes) || !Array.isArray(p.samples) || !Array.isArray(p.timeDeltas) || typeof p.startTime !== 'number' || typeof p.endTime !== 'number') {
    throw new Error('not a V8 .cpuprofile (nodes, samples, timeDeltas, startTime, endTime expected)');
  }
  return p as CpuProfile;
}

/** Each sample's start and duration, in the profile's own clock (µs). */
function sampleTimes(profile: CpuProfile): { start: number; duration: number }[] {
  let at = profile.startTime;
  const starts = profile.timeDeltas.map((delta) => (at += delta));
  return profile.samples.map((_, i) => {
    const start = starts[i] ?? profile.endTime;
    return { start, duration: Math.max(0, (starts[i + 1] ?? profile.endTime) - start) };
  });
}

export interface Window {
  readonly start: number;
  readonly end: number;
}

/**
 * The longest stretch in which the process was busy (not idle) at least a quarter of each `binMs`,
 * gaps of up to `gapBins` bins bridged (a proxy on one core under load still waits now and then): the
 * load round, when the profiled process was left idle a second before and after it, and the round
 * lasts longer than any other busy stretch. Found in the profile's own clock, which no other process
 * shares.
 */
export function busiestWindow(profile: CpuProfile, binMs = 100, gapBins = 3): Window {
  const bin = binMs * 1000;
  const bins = Math.max(1, Math.ceil((profile.endTime - profile.startTime) / bin));
  const busy = new Float64Array(bins);
  const idleIds = new Set(profile.nodes.filter((node) => node.callFrame.functionName === '(idle)').map((node) => node.id));
  sampleTimes(profile).forEach(({ start, duration }, i) => {
    if (idleIds.has(profile.samples[i] ?? -1)) return;
    const b = Math.min(bins - 1, Math.floor((start - profile.startTime) / bin));
    busy[b] = (busy[b] ?? 0) + duration;
  });
  let best = { from: 0, to: bins };
  let bestLength = 0;
  let from = -1;
  let lastBusy = -1;
  for (let b = 0; b <= bins; b++) {
    const isBusy = b < bins && (busy[b] ?? 0) >= bin / 4;
    if (isBusy) {
      if (from < 0 || b - lastBusy > gapBins + 1) from = b;
      lastBusy = b;
    }
    if (from >= 0 && lastBusy + 1 - from > bestLength) {
      bestLength = lastBusy + 1 - from;
      best = { from, to: lastBusy + 1 };
    }
  }
  return { start: profile.startTime + best.from * bin, end: profile.startTime + best.to * bin };
}

export function topSelfTime(profile: CpuProfile, n: number, repo = '', window?: Window): ProfileSummary {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, { functionName: string; location: string; micros: number }>();
  const times = sampleTimes(profile);
  let totalMicros = 0;
  let idleMicros = 0;
  profile.samples.forEach((id, i) => {
    const { start, duration } = times[i] ?? { start: 0, duration: 0 };
    if (window !== undefined && (start < window.start || start >= window.end)) return;
    const frame = nodes.get(id)?.callFrame;
    if (frame === undefined) return;
    totalMicros += duration;
    const functionName = frame.functionName === '' ? '(anonymous)' : frame.functionName;
    if (functionName === '(idle)') {
      idleMicros += duration;
      return;
    }
    const location = shortLocation(frame.url, frame.lineNumber, repo);
    const key = `${functionName}\0${location}:${frame.columnNumber}`;
    const entry = byFunction.get(key) ?? { functionName, location, micros: 0 };
    entry.micros += duration;
    byFunction.set(key, entry);
  });
  const busy = totalMicros - idleMicros;
  const top = [...byFunction.values()]
    .sort((a, b) => b.micros - a.micros)
    .slice(0, n)
    .map((e) => ({ functionName: e.functionName, location: e.location, selfMs: e.micros / 1000, percent: busy > 0 ? (100 * e.micros) / busy : 0 }));
  return { top, totalMs: totalMicros / 1000, idleMs: idleMicros / 1000 };
}

export function formatTop(summary: ProfileSummary): string {
  const lines = summary.top.map((e, i) => `${String(i + 1).padStart(3)}. ${e.percent.toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(7)} ms  ${e.functionName}  ${e.location}`);
  const busy = summary.totalMs - summary.idleMs;
  return [`self time, of ${busy.toFixed(0)} ms busy (${summary.idleMs.toFixed(0)} ms idle):`, ...lines].join('\n');
}
