/**
 * An in-process ebb for tests of its own API (`/ebb/v1/`): a ControlPlane on an in-memory store behind a
 * RoutingWatch, HTTP data planes, the recommended-delay window fed from the data plane's channel, and
 * the admin handler with the JSON API mounted, on 127.0.0.1:0. Requests are signed as the AWS SDKs sign
 * them (`@smithy/signature-v4`, service elasticloadbalancing).
 *
 * - `call()`: one signed JSON request; resolves with status and parsed body.
 * - `events()`: a signed SSE subscription whose events are collected as they arrive.
 * - `dataPlanes`: data planes to put behind the watch instead of one HttpDataPlane (a gated one, say).
 */
import { request, createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { createAdminHandler } from '../../src/api/admin-server.ts';
import { createEbbApi, EBB_API_PREFIX, type EbbApi, type EbbApiOptions } from '../../src/api/ebb/ebb-api.ts';
import { ResponseTimes, type ResponseTimeOptions } from '../../src/api/ebb/response-times.ts';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { RoutingWatch } from '../../src/control/routing-watch.ts';
import { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import type { DataPlane } from '../../src/domain/data-plane-port.ts';
import { feedResponseTimes } from '../../src/main/response-time-feed.ts';
import { realClock } from '../../src/shared/clock.ts';
import { InMemoryStateStore } from '../../src/store/in-memory-state-store.ts';
import { AutoScaling } from '../../src/autoscaling/auto-scaling.ts';
import { FakeInstanceRunner } from '../fakes/fake-instance-runner.ts';
import { freePort } from './api-harness.ts';

export const KEY = { accessKeyId: 'AKIDEBBJSONAPI000001', secretAccessKey: 'ebb-json-api-secret/with+signs' };
export const REGION = 'us-east-1';

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: any;
  readonly text: string;
}

export interface SseEvent {
  readonly id: string;
  readonly event: string;
  readonly data: any;
}

export interface Subscription {
  readonly events: SseEvent[];
  /** Comment lines (heartbeats) seen. */
  readonly comments: string[];
  readonly status: number;
  /** Resolves with the first event (already seen or to come) matching `pred`, or rejects after `ms`. */
  next(pred: (e: SseEvent) => boolean, ms?: number): Promise<SseEvent>;
  /** Resolves once the server ended the stream. */
  readonly ended: Promise<void>;
  /** Stops reading (the socket stays open: a client that does not read). */
  pause(): void;
  close(): void;
}

export interface EbbApiHarness {
  readonly endpoint: string;
  readonly control: ControlPlane;
  readonly watch: RoutingWatch;
  readonly api: EbbApi;
  readonly responseTimes: ResponseTimes;
  /** The HTTP data planes the harness made (empty when the test gave its own). */
  readonly httpDataPlanes: HttpDataPlane[];
  readonly internalErrors: unknown[];
  /** Present with the `autoScaling` option. */
  readonly autoscaling: AutoScaling | null;
  call(method: string, path: string, options?: { body?: unknown; sign?: boolean | typeof KEY; headers?: Record<string, string>; region?: string; service?: string }): Promise<Answer>;
  events(path?: string, headers?: Record<string, string>): Promise<Subscription>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly dataPlanes?: readonly DataPlane[];
  readonly authentication?: boolean;
  readonly api?: Partial<Pick<EbbApiOptions, 'heartbeatMs' | 'progressIntervalMs' | 'maxBufferedBytes' | 'sessionCheck'>>;
  readonly responseTimes?: ResponseTimeOptions;
  /** Runs Auto Scaling beside the control plane, its instances given by a FakeInstanceRunner (no processes). */
  readonly autoScaling?: boolean;
}

/** Signs a request as the AWS SDKs do. */
export async function sign(
  endpoint: string,
  method: string,
  path: string,
  body: string,
  headers: Record<string, string>,
  key: typeof KEY = KEY,
  region = REGION,
  service = 'elasticloadbalancing',
): Promise<Record<string, string>> {
  const url = new URL(path, endpoint);
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signer = new SignatureV4({ credentials: key, region, service, sha256: Sha256 });
  const signed = await signer.sign(
    new HttpRequest({ method, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, query, headers: { host: url.host, ...headers }, body }),
  );
  return signed.headers as Record<string, string>;
}

export async function startEbbApiHarness(options: HarnessOptions = {}): Promise<EbbApiHarness> {
  const store = new InMemoryStateStore();
  const httpDataPlanes = options.dataPlanes === undefined ? [new HttpDataPlane({ id: 'ebb-api-test' })] : [];
  const watch = new RoutingWatch(options.dataPlanes ?? httpDataPlanes, realClock);
  const control = new ControlPlane({ clock: realClock, store, dataPlanes: watch.dataPlanes, region: REGION, accountId: '123456789012' });
  await control.start();
  const responseTimes = new ResponseTimes(options.responseTimes);
  const stopFeed = feedResponseTimes(responseTimes);
  const internalErrors: unknown[] = [];
  const log = (entry: Record<string, unknown>): void => {
    if (entry['level'] === 'error') internalErrors.push(entry);
  };
  const auth = { enabled: options.authentication !== false, credentials: [KEY] };
  const autoscaling = options.autoScaling === true ? new AutoScaling({ clock: realClock, store, control, runner: new FakeInstanceRunner(realClock) }) : null;
  await autoscaling?.start();
  const api = createEbbApi({ control, watch, responseTimes, auth, log, ...(autoscaling !== null && { autoscaling }), ...options.api });
  const server = createServer(
    createAdminHandler({ control, ...(autoscaling !== null && { autoscaling }), auth, log, prefixRoutes: { [EBB_API_PREFIX]: api.route } }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const call: EbbApiHarness['call'] = async (method, path, o = {}) => {
    const body = o.body === undefined ? '' : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    let headers: Record<string, string> = { ...(body !== '' && { 'content-type': 'application/json' }), ...o.headers };
    if (o.sign !== false) headers = await sign(endpoint, method, path, body, headers, typeof o.sign === 'object' ? o.sign : KEY, o.region, o.service);
    return new Promise<Answer>((resolve, reject) => {
      const url = new URL(path, endpoint);
      const req = request({ host: url.hostname, port: url.port, method, path: `${url.pathname}${url.search}`, headers, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  };

  const openStreams = new Set<() => void>();
  const events: EbbApiHarness['events'] = async (path = `${EBB_API_PREFIX}events`, extra) => {
    const s = await openEvents(endpoint, path, extra ?? (await sign(endpoint, 'GET', path, '', {})));
    openStreams.add(() => s.close());
    return s;
  };

  return {
    endpoint,
    control,
    watch,
    api,
    responseTimes,
    httpDataPlanes,
    internalErrors,
    autoscaling,
    call,
    events,
    async close() {
      for (const close of [...openStreams]) close();
      api.close();
      await autoscaling?.close();
      stopFeed();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await control.close();
      for (const dp of httpDataPlanes) await dp.close(200);
    },
  };
}

/** A subscription to an event stream at `endpoint` + `path`, with the given request headers (signed, a cookie, or none). */
export function openEvents(endpoint: string, path: string, headers: Record<string, string>): Promise<Subscription> {
  return new Promise<Subscription>((resolve, reject) => {
    const url = new URL(path, endpoint);
    const req = request({ host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, headers, agent: false }, (res) => {
      const seen: SseEvent[] = [];
      const comments: string[] = [];
      const waiters: Array<{ pred: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }> = [];
      let buffer = '';
      let endedResolve = (): void => undefined;
      const ended = new Promise<void>((r) => (endedResolve = r));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let i = buffer.indexOf('\n\n');
        while (i >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          i = buffer.indexOf('\n\n');
          const fields = new Map<string, string>();
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) {
              comments.push(line);
              continue;
            }
            const c = line.indexOf(': ');
            if (c > 0) fields.set(line.slice(0, c), line.slice(c + 2));
          }
          if (!fields.has('event')) continue;
          const e: SseEvent = { id: fields.get('id') ?? '', event: fields.get('event') ?? '', data: JSON.parse(fields.get('data') ?? 'null') };
          seen.push(e);
          for (const w of [...waiters]) {
            if (w.pred(e)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(e);
            }
          }
        }
      });
      res.on('end', () => endedResolve());
      res.on('close', () => endedResolve());
      const close = (): void => {
        req.destroy();
      };
      resolve({
        events: seen,
        comments,
        status: res.statusCode ?? 0,
        ended,
        next: (pred, ms = 5000) =>
          new Promise<SseEvent>((ok, fail) => {
            const found = seen.find(pred);
            if (found !== undefined) {
              ok(found);
              return;
            }
            const t = setTimeout(() => fail(new Error(`no matching event within ${ms} ms; saw ${seen.map((e) => e.event).join(', ')}`)), ms);
            waiters.push({ pred, resolve: (e) => (clearTimeout(t), ok(e)) });
          }),
        pause: () => res.pause(),
        close,
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A load balancer with one listener on 127.0.0.1 (a free port) forwarding to an ip group `name` (checks off, so targets route at once). */
export async function oneGroup(
  control: ControlPlane,
  name: string,
  targets: readonly number[],
  attributes: Record<string, string> = {},
): Promise<{ tgArn: string; listenerArn: string; listenerPort: number }> {
  const listenerPort = await freePort();
  const lb = await control.createLoadBalancer({ name, scheme: 'internal' });
  const tg = await control.createTargetGroup({ name, protocol: 'HTTP', port: 80, targetType: 'ip', healthCheck: { enabled: false }, attributes });
  const l = await control.createListener({
    loadBalancerArn: lb.arn,
    protocol: 'HTTP',
    port: listenerPort,
    address: '127.0.0.1',
    defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }],
  });
  if (targets.length > 0) await control.registerTargets(tg.arn, targets.map((port) => ({ id: '127.0.0.1', port })));
  return { tgArn: tg.arn, listenerArn: l.arn, listenerPort };
}
