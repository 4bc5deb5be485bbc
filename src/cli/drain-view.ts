import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import type { AdminClient } from './admin-client.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { duration, isTerminal, plural, type CliIo } from './output.ts';
import { waitUntil } from './waits.ts';
import type { DrainRecordView, DrainsAnswer, DrainView, WaitAnswer } from './wire.ts';

/** A drain to follow: the group (its ARN when known, else its name as given) and the target. */
export interface FollowedDrain {
  readonly groupArn: string;
  readonly groupName: string;
  /** `ID:PORT` as ebb writes it. */
  readonly target: string;
  /** The drain's delay, when known (the deregistration's answer); else read from ebb as it drains. */
  readonly timeoutSeconds?: number;
}

/** How often the view asks ebb for in-flight counts; the end itself comes from the wait barrier at once. */
const POLL_MS = 500;
/** Without a change, a plain-lines view still says where each drain is this often. */
const PLAIN_HEARTBEAT_MS = 10_000;

/** How a drain ended, in a few words: `idle after 3.0 s (3 requests completed)`. */
export function endedText(r: DrainRecordView): string {
  const after = duration(r.durationMs);
  switch (r.outcome) {
    case 'idle':
      return `ended idle after ${after}: ${plural(r.requestsCompleted, 'request')} completed, nothing cut`;
    case 'deadline': {
      const parts = [...(r.requestsCut > 0 || r.tunnelsClosed === 0 ? [plural(r.requestsCut, 'request')] : []), ...(r.tunnelsClosed > 0 ? [plural(r.tunnelsClosed, 'tunnel')] : [])];
      const cut = parts.join(' and ');
      const leftOpen = (r.flowsLeftOpen ?? 0) > 0 ? `, ${plural(r.flowsLeftOpen ?? 0, 'flow')} left open` : '';
      return `ended at its deadline after ${after}: ${cut} cut${leftOpen}, ${plural(r.requestsCompleted, 'request')} completed`;
    }
    case 'cancelled':
      return `cancelled after ${after}: registered again (or its group was deleted), ${plural(r.requestsCompleted, 'request')} completed`;
    default:
      return `ended (${String(r.outcome)}) after ${after}`;
  }
}

function progressText(d: DrainView): string {
  return `${plural(d.requestsInFlight, 'request')} in flight, ${plural(d.tunnelsOpen, 'tunnel')}, ${duration(d.timeLeftMs)} left`;
}

/**
 * Follows drains until each has ended and resolves with the wait barrier's answer for each, in order.
 * The end comes from `GET /ebb/v1/wait?for=drained` (answered the moment the drain ends); the view in
 * between polls `GET /ebb/v1/drains`. On a terminal the view is a cli-progress bar per drain (time
 * toward the deadline, with requests in flight, tunnels and time left); otherwise plain lines, one
 * when a count changes. With `quiet` (for --json) nothing is drawn.
 */
export async function followDrains(
  client: AdminClient,
  io: CliIo,
  drains: readonly FollowedDrain[],
  o: { readonly quiet: boolean; readonly timeoutSeconds?: number | undefined },
): Promise<WaitAnswer[]> {
  const ended: Array<WaitAnswer | null> = drains.map(() => null);
  const view = o.quiet ? null : isTerminal(io) ? new BarsView(io, drains) : new LinesView(io, drains);
  const stopPolling = new AbortController();
  const waits = drains.map((d, i) =>
    waitUntil(client, 'drained', d.groupArn, d.target, o.timeoutSeconds).then((answer) => {
      ended[i] = answer;
      view?.ended(i, answer);
      return answer;
    }),
  );
  const all = Promise.race([Promise.all(waits), interruption(io.signal, drains)]).finally(() => stopPolling.abort());
  const poll = view === null ? Promise.resolve() : pollDrains(client, drains, ended, view, stopPolling.signal, io.signal);
  try {
    const answers = await all;
    await poll;
    return answers;
  } finally {
    stopPolling.abort();
    view?.stop();
  }
}

async function pollDrains(
  client: AdminClient,
  drains: readonly FollowedDrain[],
  ended: ReadonlyArray<WaitAnswer | null>,
  view: DrainsView,
  stop: AbortSignal,
  interrupted: AbortSignal | undefined,
): Promise<void> {
  const groups = [...new Set(drains.map((d) => d.groupArn))];
  while (!stop.aborted && interrupted?.aborted !== true) {
    try {
      const answers = await Promise.all(groups.map((g) => client.getJson<DrainsAnswer>('drains', { targetGroup: g })));
      // An answer that arrives after the drains ended must not draw over how they ended.
      if (stop.aborted) break;
      const current = answers.flatMap((a) => a.drains);
      drains.forEach((d, i) => {
        if (ended[i] !== null) return;
        // The group and target as given on the command line: a name or an ARN, HOST:PORT or an id alone.
        const now = current.find((c) => (c.targetGroupArn === d.groupArn || c.targetGroupName === d.groupArn) && (c.target === d.target || c.targetId === d.target));
        if (now !== undefined) view.progress(i, now);
      });
    } catch {
      // The view is best effort; the wait barrier says how each drain ended, or why it could not.
    }
    await sleep(POLL_MS, undefined, { signal: stop }).catch(() => undefined);
  }
}

interface DrainsView {
  progress(i: number, d: DrainView): void;
  ended(i: number, answer: WaitAnswer): void;
  stop(): void;
}

/** Plain lines: one when a drain's counts change (or every 10 s), one when it ends. */
class LinesView implements DrainsView {
  readonly #io: CliIo;
  readonly #drains: readonly FollowedDrain[];
  readonly #last: Array<{ key: string; at: number } | null>;

  constructor(io: CliIo, drains: readonly FollowedDrain[]) {
    this.#io = io;
    this.#drains = drains;
    this.#last = drains.map(() => null);
  }

  progress(i: number, d: DrainView): void {
    const key = `${d.requestsInFlight}/${d.tunnelsOpen}`;
    const last = this.#last[i];
    const now = Date.now();
    if (last !== null && last !== undefined && last.key === key && now - last.at < PLAIN_HEARTBEAT_MS) return;
    this.#last[i] = { key, at: now };
    this.#io.stdout.write(`draining ${this.#name(i)}: ${progressText(d)}\n`);
  }

  ended(i: number, answer: WaitAnswer): void {
    this.#io.stdout.write(`${endWord(answer)} ${this.#name(i)}: ${endText(answer)}\n`);
  }

  stop(): void {}

  #name(i: number): string {
    const d = this.#drains[i];
    return d === undefined ? '' : `${d.groupName} ${d.target}`;
  }
}

/** What the end of a wait says, for either view. */
export function endText(answer: WaitAnswer): string {
  if (answer.drain !== null) return endedText(answer.drain);
  switch (answer.outcome) {
    case 'timeout':
      return `still draining when the wait timed out: ${plural(answer.target.requestsInFlight, 'request')} in flight, ${plural(answer.target.tunnelsOpen, 'tunnel')}`;
    case 'not-draining':
      return `registered (${answer.target.state}) and not draining: there is no drain to wait for`;
    default:
      return 'not registered, and ebb keeps no record of a drain of it';
  }
}

/** The first word of a plain end line: whether the drain finished its work. */
function endWord(answer: WaitAnswer): string {
  if (answer.outcome === 'timeout' || answer.outcome === 'not-draining') return answer.outcome;
  return answer.drain === null || answer.drain.outcome === 'idle' ? 'drained' : answer.drain.outcome;
}

/** Rejects when the user interrupts: the drains go on in ebb, the client stops following them. */
function interruption(signal: AbortSignal | undefined, drains: readonly FollowedDrain[]): Promise<never> {
  const again = drains.map((d) => `ebb wait-drained ${d.groupName} ${d.target}`);
  return new Promise((_, reject) => {
    const stop = (): void =>
      reject(new CliError(EXIT.interrupted, 'Interrupted', `Stopped following; the drain${drains.length === 1 ? ' goes' : 's go'} on in ebb. Follow again with: ${again.join(' ; ')}`));
    if (signal?.aborted === true) stop();
    signal?.addEventListener('abort', stop, { once: true });
  });
}

/** A cli-progress bar per drain: time elapsed toward its deadline, and the counts beside it. */
class BarsView implements DrainsView {
  readonly #io: CliIo;
  readonly #drains: readonly FollowedDrain[];
  readonly #multi: cliProgress.MultiBar;
  readonly #bars: cliProgress.SingleBar[];
  readonly #endLines: Array<string | null>;

  constructor(io: CliIo, drains: readonly FollowedDrain[]) {
    this.#io = io;
    this.#drains = drains;
    this.#endLines = drains.map(() => null);
    const width = Math.max(...drains.map((d) => `${d.groupName} ${d.target}`.length));
    this.#multi = new cliProgress.MultiBar(
      {
        stream: io.stdout as unknown as NodeJS.WritableStream,
        format: `{name} {bar} {status}`,
        barsize: 20,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        fps: 5,
        // A line longer than the terminal would wrap and break the redraw; the whole end is printed below the bars.
        linewrap: false,
      },
      cliProgress.Presets.shades_classic,
    );
    this.#bars = drains.map((d) =>
      this.#multi.create(Math.max(1, d.timeoutSeconds ?? 1), 0, { name: `${d.groupName} ${d.target}`.padEnd(width), status: 'draining…' }),
    );
  }

  progress(i: number, d: DrainView): void {
    const bar = this.#bars[i];
    if (bar === undefined) return;
    bar.setTotal(Math.max(1, d.timeoutSeconds));
    bar.update(Math.min(d.timeoutSeconds, d.elapsedMs / 1000), { status: `${d.requestsInFlight} in flight · ${d.tunnelsOpen} tunnels · ${duration(d.timeLeftMs)} left` });
  }

  ended(i: number, answer: WaitAnswer): void {
    const bar = this.#bars[i];
    if (bar === undefined) return;
    const r = answer.drain;
    const ok = answer.reached && (r === null || r.outcome === 'idle');
    const word = r === null ? answer.outcome : r.outcome;
    bar.update(r === null ? bar.getTotal() : Math.min(bar.getTotal(), r.durationMs / 1000), { status: `${ok ? '✔' : '✖'} ${word}${r === null ? '' : ` after ${duration(r.durationMs)}`}` });
    const d = this.#drains[i];
    this.#endLines[i] = `${endWord(answer)} ${d === undefined ? '' : `${d.groupName} ${d.target}`}: ${endText(answer)}`;
  }

  stop(): void {
    this.#multi.stop();
    for (const line of this.#endLines) if (line !== null) this.#io.stdout.write(`${line}\n`);
  }
}
