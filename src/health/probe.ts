import type { HealthCheckTarget } from '../domain/health-port.ts';
import { parseMatcher } from '../domain/health-check.ts';
import { failed, type CheckOutcome } from './check-outcome.ts';
import type { CheckSignal } from './check-signal.ts';
import { httpCheck } from './http-check.ts';
import { tcpCheck } from './tcp-check.ts';

/** Runs one check of a target; settles once, and soon after `signal` aborts. */
export type ProbeFn = (target: HealthCheckTarget, signal: CheckSignal) => Promise<CheckOutcome>;


// Matchers are parsed once per distinct string; the set of strings in use is small and bounded by
// the configuration, but cap it anyway.
const matcherCache = new Map<string, (status: number) => boolean>();
const MATCHER_CACHE_MAX = 256;

function matcherFor(matcher: string): (status: number) => boolean {
  let fn = matcherCache.get(matcher);
  if (fn === undefined) {
    fn = parseMatcher(matcher);
    if (matcherCache.size >= MATCHER_CACHE_MAX) matcherCache.clear();
    matcherCache.set(matcher, fn);
  }
  return fn;
}

/** The standard probe: TCP connect, or HTTP(S) GET of the configured path, per `config.protocol`. */
export const defaultProbe: ProbeFn = (target, signal) => {
  const { config } = target;
  if (config.protocol === 'TCP') return tcpCheck(target, signal);
  let matches: (status: number) => boolean;
  try {
    matches = matcherFor(config.matcher);
  } catch (err) {
    // The control plane validates matchers; this only guards against a bad one slipping through.
    return Promise.resolve(failed('Target.FailedHealthChecks', `health check not run: ${(err as Error).message}`));
  }
  return httpCheck(
    { host: target.host, port: target.port, protocol: config.protocol, path: config.path, matcher: config.matcher, matches, caPem: target.caPem ?? null },
    signal,
  );
};
