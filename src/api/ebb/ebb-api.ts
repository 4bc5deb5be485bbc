import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AutoScalingApi } from '../../autoscaling/autoscaling-api.ts';
import type { ControlApi } from '../../control/control-api.ts';
import type { TargetInput } from '../../control/inputs.ts';
import type { RoutingWatch } from '../../control/routing-watch.ts';
import type { TargetHealthView } from '../../domain/target-health.ts';
import { realClock, type Clock } from '../../shared/clock.ts';
import { ebbError } from '../../shared/errors.ts';
import type { AdminAuthOptions, AdminLog, AdminRoute } from '../admin-server.ts';
import { parseAuthorization, SigV4Verifier, unknownAccessKey } from '../sigv4.ts';
import { subscribeAutoScalingEvents } from './autoscaling-events.ts';
import { EventStream } from './event-stream.ts';
import { iso, parseJsonObject, Query, readBody, sendError, sendJson } from './http.ts';
import { openApiDocument } from './openapi.ts';
import { adviseDelay, MARGIN_PERCENT } from './recommendation.ts';
import type { ResponseTimes } from './response-times.ts';
import { allDrainRecords, allTargetGroups, configuredDelaySeconds, drainJson, drainRecordJson, findTargetGroup, parseTarget, targetsOf, targetText, type DrainJson, type TargetJson } from './views.ts';
import { waitDrained, waitNotRouted, type WaitContext } from './waits.ts';

/** Where ebb's own API is mounted on the admin endpoint. */
export const EBB_API_PREFIX = '/ebb/v1/';

/**
 * Whether a request carries a valid dashboard session (a cookie the dashboard issued). Consulted only
 * for GET requests under /ebb/v1/ that carry no Authorization header: a browser's EventSource cannot
 * sign a request (https://html.spec.whatwg.org/multipage/server-sent-events.html#the-eventsource-interface
 * takes a URL and credentials mode only), so reading needs another proof. Changes always need SigV4.
 */
export type SessionCheck = (req: IncomingMessage) => boolean;

export interface EbbApiOptions {
  readonly control: ControlApi;
  /** Its activities and lifecycle transitions join the event stream. */
  readonly autoscaling?: AutoScalingApi;
  readonly watch: RoutingWatch;
  readonly responseTimes: ResponseTimes;
  /** The admin endpoint's keys: the same credentials sign both APIs. */
  readonly auth: AdminAuthOptions;
  readonly log: AdminLog;
  readonly clock?: Clock;
  readonly sessionCheck?: SessionCheck;
  /** SSE heartbeat interval, ms (default 15 000). */
  readonly heartbeatMs?: number;
  /** How often `drain:progress` events are sent while something drains and someone listens, ms (default 1000). */
  readonly progressIntervalMs?: number;
  /** Bytes an SSE client may leave unread before it is dropped (default 1 MiB). */
  readonly maxBufferedBytes?: number;
}

export interface EbbApi {
  /** Mount under EBB_API_PREFIX (admin-server's `prefixRoutes`). */
  readonly route: AdminRoute;
  /** Sets (or with undefined removes) the dashboard's session check. */
  setSessionCheck(check: SessionCheck | undefined): void;
  /** Ends event streams and pending waits (ebb is stopping); later calls get ServiceUnavailable. */
  close(): void;
}

/** Largest JSON body accepted (a deregistration of many targets is a few KiB). */
const MAX_BODY_BYTES = 64 * 1024;
const BODY_TIMEOUT_MS = 10_000;
/** Bodies read at once while authentication is off (with it on, only a known key's requests are read). */
const MAX_BODIES_WITHOUT_AUTH = 16;
const MAX_DRAIN_WAITS = 1024;
const DEFAULT_WAIT_SECONDS = 300;
const MAX_WAIT_SECONDS = 3600;
const MAX_TARGETS_PER_CALL = 1000;
/** The AWS service name in a SigV4 credential scope for this API, the same as ELBv2's. */
const SIGNING_NAME = 'elasticloadbalancing';

interface Call {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly rawQuery: string;
  readonly body: Buffer;
}

type Handler = (call: Call) => Promise<unknown>;

/** The answer of a handler that wrote its own response (the event stream). */
const ANSWERED = Symbol('answered');

export function createEbbApi(options: EbbApiOptions): EbbApi {
  const { control, watch, responseTimes, log } = options;
  const clock = options.clock ?? realClock;
  const authOn = options.auth.enabled !== false;
  const verifier = new SigV4Verifier(options.auth.credentials, () => clock.wallTime(), control.region);
  let sessionCheck = options.sessionCheck;
  let closed = false;
  let bodiesReading = 0;
  const waits = new Set<AbortController>();
  const stream = new EventStream({
    clock,
    ...(options.heartbeatMs !== undefined && { heartbeatMs: options.heartbeatMs }),
    ...(options.maxBufferedBytes !== undefined && { maxBufferedBytes: options.maxBufferedBytes }),
  });
  const offs = [subscribeEvents(control, stream), options.autoscaling === undefined ? () => undefined : subscribeAutoScalingEvents(options.autoscaling, stream)];
  const unsubscribe = (): void => offs.forEach((off) => off());
  const progress = drainProgress(stream, () => currentDrains(), clock, options.progressIntervalMs ?? 1000);

  const now = (): number => clock.wallTime();

  function groupsView(): TargetJson[][] {
    const t = now();
    return allTargetGroups(control).map((tg) => targetsOf(control, watch, tg, t));
  }

  function currentDrains(): DrainJson[] {
    return groupsView()
      .flat()
      .map(drainJson)
      .filter((d): d is DrainJson => d !== null);
  }

  /** The target group and target a query names (`targetGroup`, `target`). */
  function namedTarget(q: Query): { tg: ReturnType<typeof findTargetGroup>; target: TargetInput } {
    const tg = findTargetGroup(control, q.required('targetGroup', 'web'));
    return { tg, target: parseTarget(q.required('target', '10.0.0.1:80')) };
  }

  async function wait(call: Call): Promise<unknown> {
    const q = new Query(call.rawQuery, ['targetGroup', 'target', 'for', 'timeout']);
    const kind = q.oneOf('for', ['not-routed', 'drained'] as const);
    if (kind === undefined) throw ebbError('MissingParameter', "The query parameter 'for' is required: for=not-routed or for=drained");
    const { tg, target } = namedTarget(q);
    const timeoutMs = (q.seconds('timeout', 0, MAX_WAIT_SECONDS) ?? DEFAULT_WAIT_SECONDS) * 1000;
    if (closed) throw ebbError('ServiceUnavailable', 'ebb is stopping; wait again once it is back');
    if (waits.size >= MAX_DRAIN_WAITS) throw ebbError('ServiceUnavailable', `ebb already has ${MAX_DRAIN_WAITS} waits pending; retry in a second`);
    const abort = new AbortController();
    waits.add(abort);
    const gone = (): void => abort.abort();
    call.res.on('close', gone);
    const ctx: WaitContext = { control, watch, clock, signal: abort.signal };
    try {
      return kind === 'not-routed' ? await waitNotRouted(ctx, tg, target, timeoutMs) : await waitDrained(ctx, tg, target, timeoutMs);
    } finally {
      waits.delete(abort);
      call.res.off('close', gone);
    }
  }

  async function changeTargets(call: Call, change: 'deregister' | 'register'): Promise<unknown> {
    new Query(call.rawQuery, []);
    const body = parseJsonObject(call.body, call.req.headers['content-type']);
    const allowed = change === 'deregister' ? ['targetGroup', 'targets', 'timeoutSeconds'] : ['targetGroup', 'targets'];
    for (const k of Object.keys(body)) {
      if (!allowed.includes(k)) throw ebbError('ValidationError', `Unknown field '${k}' in the body; ${change} takes ${allowed.join(', ')}`);
    }
    if (typeof body['targetGroup'] !== 'string' || body['targetGroup'] === '') {
      throw ebbError('MissingParameter', "The body needs 'targetGroup': a target group's name or ARN");
    }
    const tg = findTargetGroup(control, body['targetGroup']);
    const targets = readTargets(body['targets']);
    let timeoutSeconds: number | undefined;
    if (change === 'deregister' && body['timeoutSeconds'] !== undefined) {
      const v = body['timeoutSeconds'];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 3600) {
        throw ebbError('ValidationError', `'timeoutSeconds' must be an integer from 0 to 3600 (this deregistration's delay); got ${JSON.stringify(v)}`);
      }
      timeoutSeconds = v;
    }
    if (change === 'deregister') {
      const unknown = control.describeTargetHealth(tg.arn, targets).filter((d) => d.health.reason === 'Target.NotRegistered');
      if (unknown.length > 0) {
        throw ebbError(
          'InvalidTarget',
          `Not registered in target group '${tg.name}': ${unknown.map((d) => targetText(d.id, d.port)).join(', ')}. Nothing was deregistered; list the group's targets with GET /ebb/v1/targets?targetGroup=${tg.name}`,
        );
      }
      await control.deregisterTargets(tg.arn, targets, timeoutSeconds === undefined ? undefined : { timeoutSeconds });
    } else {
      await control.registerTargets(tg.arn, targets);
    }
    const t = now();
    const out = targets.flatMap((target) => targetsOf(control, watch, tg, t, target));
    return {
      targetGroupArn: tg.arn,
      targetGroupName: tg.name,
      ...(change === 'deregister' && { timeoutSeconds: timeoutSeconds ?? configuredDelaySeconds(control, tg) }),
      targets: out,
    };
  }

  const routes = new Map<string, Handler>([
    ['GET status', async () => status()],
    [
      'GET targets',
      async (call) => {
        const q = new Query(call.rawQuery, ['targetGroup', 'target']);
        const group = q.str('targetGroup');
        const target = q.str('target');
        if (target !== undefined && group === undefined) throw ebbError('MissingParameter', "'target' needs 'targetGroup' too (for example targetGroup=web&target=10.0.0.1:80)");
        const t = now();
        const targets =
          group === undefined ? groupsView().flat() : targetsOf(control, watch, findTargetGroup(control, group), t, target === undefined ? undefined : parseTarget(target));
        return { at: iso(t), targets };
      },
    ],
    [
      'GET drains',
      async (call) => {
        const q = new Query(call.rawQuery, ['targetGroup']);
        const group = q.str('targetGroup');
        const t = now();
        const drains =
          group === undefined
            ? currentDrains()
            : targetsOf(control, watch, findTargetGroup(control, group), t)
                .map(drainJson)
                .filter((d): d is DrainJson => d !== null);
        return { at: iso(t), drains };
      },
    ],
    ['GET drain-records', async (call) => drainRecords(new Query(call.rawQuery, ['targetGroup', 'target', 'outcome', 'since', 'until', 'limit']))],
    ['GET recommended-delay', async (call) => recommendations(new Query(call.rawQuery, ['targetGroup']))],
    ['POST deregister', async (call) => changeTargets(call, 'deregister')],
    ['POST register', async (call) => changeTargets(call, 'register')],
    ['GET wait', wait],
    [
      'GET events',
      async (call) => {
        new Query(call.rawQuery, []);
        stream.accept(call.req, call.res, call.requestId);
        return ANSWERED;
      },
    ],
    ['GET openapi.json', async () => openApiDocument(control.region)],
  ]);

  function status(): unknown {
    const t = now();
    const lbs = [...control.describeLoadBalancers(), ...control.describeLoadBalancers({ type: 'classic' })];
    const targetGroups = allTargetGroups(control).map((tg) => ({
      arn: tg.arn,
      name: tg.name,
      protocol: tg.protocol,
      port: tg.port,
      targetType: tg.targetType,
      loadBalancerArns: control.loadBalancersOfTargetGroup(tg.arn),
      deregistrationDelaySeconds: configuredDelaySeconds(control, tg),
      targets: targetsOf(control, watch, tg, t),
    }));
    return {
      at: iso(t),
      region: control.region,
      snapshot: { latestVersion: watch.latestVersion, appliedVersion: watch.appliedVersion },
      loadBalancers: lbs.map((lb) => ({
        arn: lb.arn,
        name: lb.name,
        type: lb.type,
        scheme: lb.scheme,
        listeners: control.describeListeners({ loadBalancerArn: lb.arn }).map((l) => ({
          arn: l.arn,
          protocol: l.protocol,
          port: l.port,
          address: l.address,
          targetGroupArn: l.defaultActions[0]?.targetGroupArn ?? null,
        })),
      })),
      targetGroups,
      drains: targetGroups.flatMap((g) => g.targets.map(drainJson).filter((d): d is DrainJson => d !== null)),
    };
  }

  function drainRecords(q: Query): unknown {
    const group = q.str('targetGroup');
    const target = q.str('target');
    const named = target === undefined ? undefined : parseTarget(target);
    const outcome = q.oneOf('outcome', ['idle', 'deadline', 'cancelled'] as const);
    const since = q.time('since');
    const until = q.time('until');
    const limit = q.int('limit', 1, 1000) ?? 100;
    const records = allDrainRecords(control)
      .filter(
        (r) =>
          (group === undefined || r.targetGroupName === group || r.targetGroupArn === group) &&
          (named === undefined || (r.targetId === named.id && (named.port === undefined || r.port === named.port))) &&
          (outcome === undefined || r.outcome === outcome) &&
          (since === undefined || r.endedAt >= since) &&
          (until === undefined || r.endedAt < until),
      )
      .reverse()
      .slice(0, limit)
      .map(drainRecordJson);
    return { records, limit };
  }

  function recommendations(q: Query): unknown {
    const group = q.str('targetGroup');
    const groups = group === undefined ? allTargetGroups(control) : [findTargetGroup(control, group)];
    const t = now();
    const windowSeconds = Math.round(responseTimes.maxAgeMs / 1000);
    const windowText = `the last ${responseTimes.capacity} requests of the last ${windowSeconds / 60} minutes`;
    return {
      at: iso(t),
      targetGroups: groups.map((tg) => {
        const s = responseTimes.summary(tg.arn, t);
        const configured = configuredDelaySeconds(control, tg);
        return {
          targetGroupArn: tg.arn,
          targetGroupName: tg.name,
          configuredDelaySeconds: configured,
          sampleSize: s.sampleSize,
          window: {
            from: s.oldestAt === null ? null : iso(s.oldestAt),
            to: s.newestAt === null ? null : iso(s.newestAt),
            maxSamples: responseTimes.capacity,
            maxAgeSeconds: windowSeconds,
          },
          p99TargetResponseMs: s.p99TargetResponseMs,
          p99RequestDurationMs: s.p99RequestDurationMs,
          marginPercent: { ...MARGIN_PERCENT },
          ...adviseDelay(s, configured, windowText),
        };
      }),
    };
  }

  /** Authenticates a call (SigV4, or a dashboard session for a GET), reading its body; throws the AWS error otherwise. */
  async function authenticate(req: IncomingMessage, path: string, rawQuery: string, method: string): Promise<Buffer> {
    const hasAuthorization = req.headers['authorization'] !== undefined;
    if (authOn && method === 'GET' && !hasAuthorization && sessionCheck?.(req) === true) return Buffer.alloc(0);
    if (authOn) {
      // Refused from the headers alone, before a byte of body is read.
      const { accessKeyId } = parseAuthorization(req.headersDistinct, rawQuery);
      if (!verifier.knows(accessKeyId)) throw unknownAccessKey(accessKeyId);
    } else if (method === 'POST' && bodiesReading >= MAX_BODIES_WITHOUT_AUTH) {
      throw ebbError('ServiceUnavailable', `ebb's JSON API is reading ${MAX_BODIES_WITHOUT_AUTH} request bodies already; retry after a second`);
    }
    let body: Buffer = Buffer.alloc(0);
    if (method === 'POST') {
      bodiesReading++;
      try {
        body = await readBody(req, MAX_BODY_BYTES, clock, BODY_TIMEOUT_MS);
      } finally {
        bodiesReading--;
      }
    } else {
      req.resume();
    }
    if (authOn) {
      await verifier.verify({ method, path, rawQuery, headers: req.headersDistinct, body, expectedService: SIGNING_NAME });
    }
    return body;
  }

  const route: AdminRoute = (req, res) => {
    const requestId = randomUUID();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const rawQuery = q === -1 ? '' : url.slice(q + 1);
    const method = req.method ?? 'GET';
    const name = path.slice(EBB_API_PREFIX.length);
    const handler = routes.get(`${method} ${name}`);
    const onInternal = (err: unknown): void =>
      log({ event: 'admin:internal-error', level: 'error', requestId, api: 'ebb', path, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    if (handler === undefined) {
      req.resume();
      const other = [...routes.keys()].find((k) => k.endsWith(` ${name}`));
      const message =
        other === undefined
          ? `${method} ${path} is not an endpoint of ebb's API; the endpoints are listed in GET ${EBB_API_PREFIX}openapi.json (and docs/api.md)`
          : `${path} takes ${other.split(' ')[0]}, not ${method}`;
      sendError(res, requestId, ebbError('InvalidAction', message), onInternal, { connection: 'close' });
      return;
    }
    const run = async (): Promise<void> => {
      if (closed && name !== 'openapi.json') throw ebbError('ServiceUnavailable', 'ebb is stopping; retry once it is back');
      const body = name === 'openapi.json' ? (req.resume(), Buffer.alloc(0)) : await authenticate(req, path, rawQuery, method);
      const out = await handler({ req, res, requestId, rawQuery, body });
      if (out !== ANSWERED) sendJson(res, 200, requestId, out);
    };
    run().catch((err: unknown) => {
      // An answer to a caller that went away is dropped.
      if (res.destroyed) return;
      sendError(res, requestId, err, onInternal);
    });
  };

  return {
    route,
    setSessionCheck(check) {
      sessionCheck = check;
    },
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      progress.stop();
      stream.close();
      for (const w of waits) w.abort();
    },
  };
}

/** `targets` of a body: a non-empty list of `ID:PORT` strings or `{ "id", "port" }` objects. */
function readTargets(value: unknown): TargetInput[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw ebbError('MissingParameter', `The body needs 'targets': a list such as ["10.0.0.1:80"] or [{"id":"10.0.0.1","port":80}]`);
  }
  if (value.length > MAX_TARGETS_PER_CALL) throw ebbError('ValidationError', `At most ${MAX_TARGETS_PER_CALL} targets per call; got ${value.length}`);
  return value.map((v: unknown): TargetInput => {
    if (typeof v === 'string') return parseTarget(v);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      const extra = Object.keys(o).filter((k) => k !== 'id' && k !== 'port');
      if (typeof o['id'] === 'string' && o['id'] !== '' && extra.length === 0 && (o['port'] === undefined || (typeof o['port'] === 'number' && Number.isInteger(o['port'])))) {
        return o['port'] === undefined ? { id: o['id'] } : { id: o['id'], port: o['port'] as number };
      }
    }
    throw ebbError('InvalidTarget', `${JSON.stringify(v)} is not a target: write "ID:PORT" or {"id": "10.0.0.1", "port": 80}`);
  });
}

function healthJson(h: TargetHealthView): { state: string; reason: string | null; description: string | null } {
  return { state: h.state, reason: h.reason ?? null, description: h.description ?? null };
}

/** Publishes the control plane's events on the stream; returns the unsubscribe. */
function subscribeEvents(control: ControlApi, stream: EventStream): () => void {
  const nameOf = (arn: string): string => {
    try {
      return control.describeTargetGroups({ arns: [arn] })[0]?.name ?? '';
    } catch {
      return ''; // the group is being deleted
    }
  };
  const offs = [
    control.events.on('target:state', (e) =>
      stream.publish('target:state', {
        at: iso(e.at),
        targetGroupArn: e.targetGroupArn,
        targetGroupName: nameOf(e.targetGroupArn),
        targetId: e.targetId,
        port: e.port,
        target: targetText(e.targetId, e.port),
        from: healthJson(e.from),
        to: healthJson(e.to),
      }),
    ),
    control.events.on('drain:start', (e) =>
      stream.publish('drain:start', {
        at: iso(e.startedAt),
        targetGroupArn: e.targetGroupArn,
        targetGroupName: nameOf(e.targetGroupArn),
        targetId: e.targetId,
        port: e.port,
        target: targetText(e.targetId, e.port),
        startedAt: iso(e.startedAt),
        deadline: iso(e.deadline),
        timeoutSeconds: e.timeoutSeconds,
      }),
    ),
    control.events.on('drain:end', (r) => stream.publish('drain:end', { at: iso(r.endedAt), ...drainRecordJson(r) })),
    control.events.on('config:reload', (e) =>
      stream.publish('config:reload', { at: iso(e.at), file: e.file, outcome: e.outcome, applied: e.applied, kept: e.kept, error: e.error }),
    ),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/** While someone listens and something drains, a `drain:progress` event per drain every `intervalMs`. */
function drainProgress(stream: EventStream, drains: () => DrainJson[], clock: Clock, intervalMs: number): { stop(): void } {
  let timer: { cancel(): void } | null = null;
  const tick = (): void => {
    timer = clock.setTimer(intervalMs, () => {
      const at = iso(clock.wallTime());
      for (const d of drains()) stream.publish('drain:progress', { at, ...d });
      tick();
    });
  };
  stream.onListening = (listening) => {
    timer?.cancel();
    timer = null;
    if (listening) tick();
  };
  return {
    stop() {
      timer?.cancel();
      timer = null;
      stream.onListening = () => undefined;
    },
  };
}
