/**
 * What a running ebb hands to the one that takes its place at a hot restart (docs/restart.md),
 * besides the state directory: the drains it tracks, whose work it still reports, and the health its
 * checks settled, so targets keep their health across the restart instead of starting `initial`.
 */
import type { SettledHealth } from '../domain/target-lifecycle.ts';
import type { HandedOverDrain, TargetRegistry } from './registered-targets.ts';

export interface HandedOverHealth extends SettledHealth {
  readonly key: string;
}

export interface HandOver {
  readonly drains: readonly HandedOverDrain[];
  readonly health: readonly HandedOverHealth[];
}

export const NOTHING_HANDED_OVER: HandOver = { drains: [], health: [] };

/** Every registered target's settled health; `now` is this process's monotonic clock. */
export function healthToHandOver(targets: TargetRegistry, now: number): HandedOverHealth[] {
  const out: HandedOverHealth[] = [];
  for (const t of targets.all()) {
    const settled = t.life.settledHealth(now);
    if (settled !== null) out.push({ key: t.key, ...settled });
  }
  return out;
}

/** Takes up the handed-over health of the targets restored here; `now` is this process's monotonic clock. */
export function resumeHealth(targets: TargetRegistry, health: readonly HandedOverHealth[], now: number): void {
  for (const h of health) {
    const target = targets.get(h.key);
    if (target === undefined) continue;
    target.life.resumeHealth(h, now);
    target.lastView = target.life.view();
  }
}
