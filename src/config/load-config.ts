import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import type { DeclaredAutoScaling } from '../autoscaling/declared-plan.ts';
import type { DeclaredLoadBalancer, DeclaredState, DeclaredTargetGroup } from '../control/declared-state.ts';
import { EbbError } from '../shared/errors.ts';
import { crossCheckAutoScaling, toDeclaredAutoScaling } from './autoscaling-declared.ts';
import { declaredCertificates, type DeclaredCertificates } from './certificates-declared.ts';
import { crossCheck, definedHealthCheck, inferTargetType } from './cross-checks.ts';
import { describeValue, formatPath, formatProblems, locate, type LocatedProblem, type PathSegment, type Problem } from './problems.ts';
import { configSchema, type ConfigShape } from './schema.ts';

/** The `admin:` block: how the admin API listens and authenticates, and where state is kept. */
export interface AdminConfig {
  /** `HOST:PORT` of the admin API. */
  readonly address?: string;
  readonly region?: string;
  readonly accountId?: string;
  readonly credentials?: ReadonlyArray<{ readonly accessKeyId: string; readonly secretAccessKey: string }>;
  /** `false` turns SigV4 authentication off (local use only). */
  readonly authentication?: boolean;
  /** Absolute: a relative `stateDir` is resolved against the configuration file's directory. */
  readonly stateDir?: string;
  /** `admin.metrics`: who may read `GET /metrics` (docs/metrics.md). */
  readonly metrics?: MetricsConfig;
}

/** `admin.metrics`: a bearer token file or `public: true` (they exclude each other). */
export interface MetricsConfig {
  /** Absolute: a relative path is resolved against the configuration file's directory. */
  readonly bearerTokenFile?: string;
  readonly public?: boolean;
}

export interface EbbConfig {
  readonly declared: DeclaredState;
  readonly admin: AdminConfig;
  /** `listenAddresses:`, where listeners created without an address listen, by scheme. */
  readonly listenAddresses?: { readonly 'internet-facing'?: string | undefined; readonly internal?: string | undefined };
  /** `accessLog:`, the node's access log (docs/access-logs.md); `path` absolute, resolved against the file's directory. */
  readonly accessLog?: AccessLogConfig;
  /** `launchTemplates:`, `autoScalingGroups:` and `autoScaling:` (an empty declaration when the file has none). */
  readonly autoScaling: AutoScalingConfig;
  /** The certificates the file declares (top level and listeners'), read from their files at start and every reload (certificates-declared.ts). */
  readonly certificates: DeclaredCertificates;
}

/** The Auto Scaling sections of the file. */
export interface AutoScalingConfig {
  readonly declared: DeclaredAutoScaling;
  /** `autoScaling.onShutdown`: what ebb's own shutdown does with its instances; unset: leave them (stop them when ebb is PID 1). */
  readonly onShutdown?: 'leave' | 'stop';
  /**
   * `file:line:col: field.path` for a field of the file, for problems found only against the state
   * (a name the state does not have, sizes the API set), so they point into the file as the others do.
   */
  readonly where: (path: readonly PathSegment[]) => string;
}

/** `accessLog:` with its defaults filled in. */
export interface AccessLogConfig {
  readonly output: 'stdout' | 'file';
  /** Absolute; present when `output` is `file`. */
  readonly path?: string;
  readonly format: 'alb' | 'json';
  readonly rotateBytes: number;
  readonly rotateSeconds: number;
  readonly keep: number;
  readonly bufferBytes: number;
}

/** Defaults of `accessLog:`: 100 MiB files, no time rotation, ten rotated files kept, a 4 MiB buffer. */
export const ACCESS_LOG_DEFAULTS = { format: 'alb', rotateBytes: 104_857_600, rotateSeconds: 0, keep: 10, bufferBytes: 4_194_304 } as const;

/** At most this many problems are listed; a file with more is usually not an ebb configuration at all. */
const MAX_PROBLEMS = 50;

/**
 * Reads and validates a configuration file. Throws EbbError `ConfigUnreadable` when the file cannot
 * be read, `ConfigInvalid` (every problem, one per line, as `file:line:col: field.path: what was
 * expected; got what`) when it is not valid.
 */
export async function loadConfigFile(path: string): Promise<EbbConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new EbbError('ConfigUnreadable', `Cannot read the configuration file ${path}: ${why}. Check the path given to --config.`, { cause: err });
  }
  return parseConfig(text, path);
}

/**
 * Validates configuration text. `fileName` is used in messages and to resolve a relative
 * `admin.stateDir`. An empty file is a valid configuration that declares nothing.
 *
 * Targets listed without a port get the target group's port here, so `declared` is complete.
 */
export function parseConfig(text: string, fileName: string): EbbConfig {
  const lineCounter = new LineCounter();
  // `merge` lets a file share blocks with anchors and `<<: *name` (a health check for several groups).
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e): LocatedProblem => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      const key = /^[^:\n]*/.exec(text.slice(e.pos[0]))?.[0].trim() ?? '';
      const what = e.code === 'DUPLICATE_KEY' && key !== '' ? ` (${JSON.stringify(key)})` : '';
      return { path: [], bare: true, message: `YAML syntax error: ${e.message}${what}`, line, col };
    });
    throw invalid(fileName, problems);
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 }) ?? {};
  } catch (err) {
    // Unresolvable aliases and alias bombs surface here.
    throw invalid(fileName, [{ path: [], bare: true, message: `YAML error: ${(err as Error).message}`, line: 1, col: 1 }]);
  }

  const parsed = configSchema.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    throw invalid(fileName, located(doc, lineCounter, parsed.error.issues.flatMap(fromIssue)));
  }
  const cfg = parsed.data;
  const problems = [...crossCheck(cfg), ...crossCheckAutoScaling(cfg)];
  if (problems.length > 0) throw invalid(fileName, located(doc, lineCounter, problems));
  const where = (path: readonly PathSegment[]): string => {
    const { line, col } = locate(doc, lineCounter, { path, message: '' });
    return `${fileName}:${line}:${col}: ${formatPath(path)}`;
  };
  return {
    declared: toDeclared(cfg, declaredCertificates(cfg, fileName, where).listenerArns),
    admin: toAdmin(cfg, fileName),
    ...(cfg.listenAddresses !== undefined && { listenAddresses: cfg.listenAddresses }),
    ...(cfg.accessLog !== undefined && { accessLog: toAccessLog(cfg.accessLog, fileName) }),
    autoScaling: {
      declared: toDeclaredAutoScaling(cfg, fileName),
      ...(cfg.autoScaling?.onShutdown !== undefined && { onShutdown: cfg.autoScaling.onShutdown }),
      where,
    },
    certificates: declaredCertificates(cfg, fileName, where),
  };
}

function toAccessLog(a: NonNullable<ConfigShape['accessLog']>, fileName: string): AccessLogConfig {
  return {
    output: a.output,
    ...(a.path !== undefined && { path: resolve(dirname(fileName), a.path) }),
    format: a.format ?? ACCESS_LOG_DEFAULTS.format,
    rotateBytes: a.rotateBytes ?? ACCESS_LOG_DEFAULTS.rotateBytes,
    rotateSeconds: a.rotateSeconds ?? ACCESS_LOG_DEFAULTS.rotateSeconds,
    keep: a.keep ?? ACCESS_LOG_DEFAULTS.keep,
    bufferBytes: a.bufferBytes ?? ACCESS_LOG_DEFAULTS.bufferBytes,
  };
}

/** `listenerArns[lb][listener]`: each listener's certificate ARNs, the default first (certificates-declared.ts). */
function toDeclared(cfg: ConfigShape, listenerArns: ReadonlyArray<ReadonlyArray<readonly string[]>>): DeclaredState {
  const loadBalancers = (cfg.loadBalancers ?? []).map(
    (lb, i): DeclaredLoadBalancer => ({
      name: lb.name,
      type: lb.type ?? 'application',
      attributes: { ...(lb.attributes ?? {}) },
      listeners: (lb.listeners ?? []).map((l, j) => {
        const certificateArns = listenerArns[i]?.[j] ?? [];
        return {
          protocol: l.protocol,
          port: l.port,
          address: l.address ?? '0.0.0.0',
          targetGroup: l.defaultActions[0]?.targetGroup ?? '',
          ...(certificateArns.length > 0 && { certificateArns: [...certificateArns] }),
          ...(l.sslPolicy !== undefined && { sslPolicy: l.sslPolicy }),
          ...(l.attributes !== undefined && Object.keys(l.attributes).length > 0 && { attributes: { ...l.attributes } }),
        };
      }),
    }),
  );
  const targetGroups = (cfg.targetGroups ?? []).map(
    (tg): DeclaredTargetGroup => ({
      name: tg.name,
      protocol: tg.protocol,
      port: tg.port,
      targetType: inferTargetType(tg),
      healthCheck: definedHealthCheck(tg.healthCheck ?? {}),
      attributes: { ...(tg.attributes ?? {}) },
      targets: (tg.targets ?? []).map((t) => ({ id: t.id, port: t.port ?? tg.port })),
    }),
  );
  const instances = (cfg.instances ?? []).map((x) => ({ id: x.id, address: x.address }));
  return { loadBalancers, targetGroups, instances };
}

function toAdmin(cfg: ConfigShape, fileName: string): AdminConfig {
  const a = cfg.admin;
  if (a === undefined) return {};
  return {
    ...(a.address !== undefined && { address: a.address }),
    ...(a.region !== undefined && { region: a.region }),
    ...(a.accountId !== undefined && { accountId: a.accountId }),
    ...(a.credentials !== undefined && { credentials: a.credentials.map((c) => ({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey })) }),
    ...(a.authentication !== undefined && { authentication: a.authentication }),
    ...(a.stateDir !== undefined && { stateDir: resolve(dirname(fileName), a.stateDir) }),
    ...(a.metrics !== undefined && {
      metrics: {
        ...(a.metrics.bearerTokenFile !== undefined && { bearerTokenFile: resolve(dirname(fileName), a.metrics.bearerTokenFile) }),
        ...(a.metrics.public !== undefined && { public: a.metrics.public }),
      },
    }),
  };
}

/** One zod issue as problems, worded from the expectation phrase the schema gave. */
function fromIssue(issue: z.core.$ZodIssue): Problem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: [...path, key], at: 'key' as const, message: `unknown key "${key}"; allowed keys: ${issue.message}` }));
  }
  if (issue.code === 'custom' && (issue.params as { sentence?: boolean } | undefined)?.sentence === true) {
    return [{ path, message: issue.message }];
  }
  if (!('input' in issue) || issue.input === undefined) {
    return [{ path, message: `is required (${issue.message})` }];
  }
  return [{ path, message: `must be ${issue.message}; got ${describeValue(issue.input)}` }];
}

function located(doc: Document, lineCounter: LineCounter, problems: readonly Problem[]): LocatedProblem[] {
  return problems.map((p) => ({ ...p, ...locate(doc, lineCounter, p) }));
}

function invalid(fileName: string, problems: readonly LocatedProblem[]): EbbError {
  const inOrder = [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
  let text = formatProblems(fileName, inOrder.slice(0, MAX_PROBLEMS));
  if (problems.length > MAX_PROBLEMS) text += `\n${fileName}: ... and ${problems.length - MAX_PROBLEMS} more problems`;
  return new EbbError('ConfigInvalid', text);
}
