import type { ResponseTimeSummary } from './response-times.ts';

/**
 * The recommended deregistration delay of a target group: the observed p99 of its target response time
 * plus a margin of 20 to 30 %, in whole seconds (the attribute's unit), rounded up. The margin covers
 * what a window of recent requests under-states: the slower tail a deploy meets under load, and requests
 * slower than those seen. The recommendation is the upper end; configured below it earns a warning.
 */
export const MARGIN_PERCENT = { low: 20, high: 30 } as const;

/** Fewer samples than this make the p99 little more than the slowest request seen: said in a warning. */
export const FEW_SAMPLES = 100;

export interface DelayWarning {
  /** no-samples, few-samples, delay-below-recommendation, requests-outlast-recommendation. */
  readonly kind: 'no-samples' | 'few-samples' | 'delay-below-recommendation' | 'requests-outlast-recommendation';
  readonly message: string;
}

export interface DelayAdvice {
  readonly recommendedDelaySeconds: number | null;
  readonly recommendedRangeSeconds: { readonly low: number; readonly high: number } | null;
  readonly warnings: DelayWarning[];
}

/** Seconds to cover `ms` with `percent` on top, rounded up, at least 1. */
function withMargin(ms: number, percent: number): number {
  return Math.max(1, Math.ceil((ms * (100 + percent)) / 100 / 1000));
}

export function adviseDelay(summary: ResponseTimeSummary, configuredSeconds: number, windowText: string): DelayAdvice {
  const warnings: DelayWarning[] = [];
  const p99 = summary.p99TargetResponseMs;
  if (p99 === null) {
    warnings.push({
      kind: 'no-samples',
      message: `No request answered by this group's targets in ${windowText}: there is nothing to recommend from yet. Send traffic through a listener that forwards to it.`,
    });
    return { recommendedDelaySeconds: null, recommendedRangeSeconds: null, warnings };
  }
  const low = withMargin(p99, MARGIN_PERCENT.low);
  const high = withMargin(p99, MARGIN_PERCENT.high);
  if (summary.sampleSize < FEW_SAMPLES) {
    warnings.push({
      kind: 'few-samples',
      message: `Only ${summary.sampleSize} requests in ${windowText} (fewer than ${FEW_SAMPLES}): the p99 is close to the slowest one seen; take the recommendation as a first guess.`,
    });
  }
  if (configuredSeconds < high) {
    warnings.push({
      kind: 'delay-below-recommendation',
      message: `The configured deregistration delay (${configuredSeconds} s) is below the recommended ${high} s: a drain may cut requests still running at its deadline. Raise deregistration_delay.timeout_seconds to at least ${high}.`,
    });
  }
  const duration = summary.p99RequestDurationMs;
  if (duration !== null && duration > high * 1000) {
    warnings.push({
      kind: 'requests-outlast-recommendation',
      message: `The p99 of whole requests (${Math.round(duration)} ms, until the response was sent) exceeds the recommendation: responses streamed or read slowly by clients outlast the target's response time, and a drain waits for them too.`,
    });
  }
  return { recommendedDelaySeconds: high, recommendedRangeSeconds: { low, high }, warnings };
}
