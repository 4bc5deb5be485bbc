import diagnosticsChannel from 'node:diagnostics_channel';
import { networkInterfaces } from 'node:os';
import { mkdir, open } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { ControlApi } from '../../control/control-api.ts';
import { CHANNEL_NAMES, type FlowEndMessage, type RequestEndMessage } from '../../dataplane/channels.ts';
import type { LoadBalancerRecord } from '../../domain/resources.ts';
import type { Clock, TimerHandle } from '../../shared/clock.ts';
import { ebbError } from '../../shared/errors.ts';
import { newCounters, type AccessLogCounters } from './counters.ts';
import { entryFromRequestEnd, type AccessLogEntry } from './entry.ts';
import { entryFromFlowEnd } from './flow-entry.ts';
import { formatNlbLine, listenerIdOf } from './nlb-format.ts';
import { FdDestination, RotatingFileDestination } from './file-destinations.ts';
import { formatLine, type LineFormat } from './format.ts';
import { DEFAULT_BUFFER_BYTES, LineWriter, type Destination } from './line-writer.ts';
import { S3LayoutDestination } from './s3-layout.ts';
import { ACCESS_LOG_ATTRIBUTES, DEFAULT_CLASSIC_EMIT_INTERVAL, loadBalancerAttributeConflict } from '../../domain/attributes.ts';

/** The node's own access log (the file's `accessLog:`): every load balancer's requests, to one place. */
export interface NodeAccessLog {
  readonly output: 'stdout' | 'file';
  /** Absolute; with `output: file`. */
  readonly path?: string;
  readonly format: 'alb' | 'json';
  /** Rotate by size; 0: never. */
  readonly rotateBytes: number;
  /** Rotate by time (UTC-aligned); 0: never. */
  readonly rotateSeconds: number;
  /** Rotated files kept; 0: all. */
  readonly keep: number;
  /** The writer's bound. */
  readonly bufferBytes: number;
}

/**
 * Opens (creating its folder) and closes the node's access-log file, so a start with a file ebb cannot
 * write is refused with the reason (ConfigInvalid) instead of logging errors for every line after.
 */
export async function checkNodeAccessLog(node: NodeAccessLog | null): Promise<void> {
  if (node?.output !== 'file' || node.path === undefined) return;
  try {
    await mkdir(dirname(node.path), { recursive: true });
    await (await open(node.path, 'a', 0o640)).close();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw ebbError('ConfigInvalid', `accessLog.path: cannot write the access log ${node.path} (${code}); choose a path ebb may write, or output: stdout`);
  }
}

export interface AccessLogServiceOptions {
  readonly control: ControlApi;
  readonly clock: Clock;
  /** A relative `access_logs.s3.bucket` is a directory under this one. */
  readonly stateDir: string;
  readonly node?: NodeAccessLog | null;
  readonly log: (entry: Record<string, unknown>) => void;
  /** The node's address (S3 file names, `"request"` without a Host); the first external IPv4 by default. */
  readonly nodeAddress?: string;
  /** For tests: the node log's destination instead of stdout or the file. */
  readonly nodeDestination?: Destination;
  /** For tests: the S3 files' random string. */
  readonly random?: () => string;
  /** How long a line may wait before it is written (default 200 ms). */
  readonly flushMs?: number;
  /**
   * Told whether any request is logged (a node log, or a load balancer's S3-layout files), when the
   * service starts and whenever that changes: with workers, their request ends need only travel one by
   * one while it is so (docs/workers.md).
   */
  readonly onRequestLogging?: (logged: boolean) => void;
}

/** What the log knows of one load balancer, refreshed every second. */
interface LoadBalancerView {
  readonly elb: string;
  readonly classic: boolean;
  /** The format of its S3-layout files: ELB's for its type (a Network Load Balancer's lines are flows). */
  readonly s3Format: S3Format;
  /** Where its S3-layout files go, or null when `access_logs.s3.enabled` is off (or no bucket is set). */
  readonly s3: { readonly bucketDir: string; readonly prefix: string; readonly intervalMinutes: number } | null;
}

const REFRESH_MS = 1000;

/** The line format of an S3-layout file: ALB's, Classic's, or NLB's (./nlb-format.ts). */
type S3Format = LineFormat | 'nlb';

/** A listener as its lines need it: its load balancer and the address it is bound to. */
interface ListenerView {
  readonly loadBalancerArn: string;
  readonly address: string;
}

/** `app/NAME/ID` from `…:loadbalancer/app/NAME/ID`; a Classic load balancer's name from `…:loadbalancer/NAME`. */
export function elbId(loadBalancerArn: string): string {
  const at = loadBalancerArn.indexOf(':loadbalancer/');
  return at === -1 ? loadBalancerArn : loadBalancerArn.slice(at + ':loadbalancer/'.length);
}

/** A listener's load balancer ARN by the ARN's own structure (`listener/app/NAME/ID/LID` → `loadbalancer/app/NAME/ID`), for a listener already deleted. */
function loadBalancerArnOfListener(listenerArn: string): string {
  const arn = listenerArn.replace(':listener/', ':loadbalancer/');
  return arn.slice(0, arn.lastIndexOf('/'));
}

/** The first non-internal IPv4 address of this machine, else 127.0.0.1. */
export function defaultNodeAddress(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/**
 * ebb's access logs. Subscribes to the data plane's `ebb:request:end` and `ebb:flow:end` channels
 * and, for each request or TCP/TLS flow, builds one entry and hands its line to a LineWriter per
 * destination: the node's log (stdout or a rotating file, ALB lines or JSON lines) and, for each load
 * balancer with `access_logs.s3.enabled`, its S3-layout folder (ALB's lines, Classic's, or NLB's for a
 * Network Load Balancer). The subscriber runs on the request path, so it only formats and queues; the
 * writers write off it, within a bounded buffer.
 */
export class AccessLogService {
  /** What the destinations count themselves (files rotated), and the counters of writers closed. */
  readonly #destCounters: AccessLogCounters = newCounters();
  readonly #o: AccessLogServiceOptions;
  readonly #nodeAddress: string;
  #node: { readonly writer: LineWriter; readonly format: LineFormat } | null = null;
  /** By load balancer ARN. */
  #views = new Map<string, LoadBalancerView>();
  /** By listener ARN. */
  #listeners = new Map<string, ListenerView>();
  /** By load balancer ARN: its S3-layout writer and the settings it was opened with. */
  #s3 = new Map<string, { readonly writer: LineWriter; readonly key: string; readonly format: S3Format }>();
  /** What `onRequestLogging` was last told (null: not yet). */
  #toldLogged: boolean | null = null;
  #closing: Array<Promise<void>> = [];
  /** Writers closed or closing: their counters still count. */
  #retiredWriters: LineWriter[] = [];
  #timer: TimerHandle | null = null;
  #started = false;
  #errorsLogged = 0;
  /** Load balancers told about once that their logging is on without a bucket. */
  #warned = new Set<string>();
  readonly #onMessage = (message: unknown): void => {
    try {
      this.#record(message as RequestEndMessage);
    } catch (error) {
      // A subscriber's exception would reach the data plane's publish call: never let it.
      this.#logError('format', error);
    }
  };
  readonly #onFlow = (message: unknown): void => {
    try {
      this.#recordFlow(message as FlowEndMessage);
    } catch (error) {
      this.#logError('format', error);
    }
  };

  constructor(options: AccessLogServiceOptions) {
    this.#o = options;
    this.#nodeAddress = options.nodeAddress ?? defaultNodeAddress();
  }

  /** Opens the node log, reads the load balancers' settings, and starts listening to the data plane. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const node = this.#o.node ?? null;
    if (node !== null || this.#o.nodeDestination !== undefined) {
      const dest = this.#o.nodeDestination ?? nodeDestination(node, this.#o.clock, this.#destCounters);
      this.#node = { writer: this.#writer(dest, node?.bufferBytes), format: node?.format ?? 'alb' };
      if (node !== null) this.#o.log({ event: 'access-log:open', output: node.output, path: node.path ?? null, format: node.format });
    }
    this.#refresh();
    diagnosticsChannel.subscribe(CHANNEL_NAMES.requestEnd, this.#onMessage);
    diagnosticsChannel.subscribe(CHANNEL_NAMES.flowEnd, this.#onFlow);
  }

  /** Reads the load balancers' settings now (after the file was applied) instead of at the next second. */
  refresh(): void {
    if (!this.#started) return;
    this.#timer?.cancel();
    this.#refresh();
  }

  /** SIGUSR1: the node's log file is closed and opened again at its path (logrotate's `create` mode). */
  async reopen(): Promise<void> {
    await this.#node?.writer.reopen();
  }

  /** Resolves once every line recorded so far is in its file (and writers being closed have closed). */
  async flush(): Promise<void> {
    await Promise.all([this.#node?.writer.flush(), ...[...this.#s3.values()].map((s) => s.writer.flush()), ...this.#closing]);
  }

  /** Stops listening, writes what is queued, finishes the S3 layout's open files. */
  async close(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestEnd, this.#onMessage);
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.flowEnd, this.#onFlow);
    this.#timer?.cancel();
    this.#timer = null;
    const writers = [this.#node?.writer, ...[...this.#s3.values()].map((s) => s.writer)];
    this.#s3.clear();
    this.#node = null;
    for (const w of writers) if (w !== undefined) this.#retire(w);
    await Promise.all(this.#closing);
  }

  /** What this service's writers did, summed: those open now and those closed. */
  get counters(): AccessLogCounters {
    const sum = { ...this.#destCounters };
    for (const w of [this.#node?.writer, ...[...this.#s3.values()].map((s) => s.writer), ...this.#retiredWriters]) add(sum, w);
    return sum;
  }

  /** The S3-layout writers open now, by load balancer ARN (for tests and the docs' examples). */
  get s3Writers(): ReadonlyMap<string, LineWriter> {
    return new Map([...this.#s3].map(([arn, s]) => [arn, s.writer]));
  }

  #writer(dest: Destination, bufferBytes: number | undefined): LineWriter {
    return new LineWriter(dest, {
      clock: this.#o.clock,
      maxBufferBytes: bufferBytes ?? DEFAULT_BUFFER_BYTES,
      ...(this.#o.flushMs === undefined ? {} : { flushMs: this.#o.flushMs }),
      onError: (what, error) => this.#logError(what, error),
    });
  }

  #record(m: RequestEndMessage): void {
    // No node log and no load balancer logging: nothing to build on the request path.
    if (this.#node === null && this.#s3.size === 0) return;
    const lbArn = this.#listenerOf(m.listenerArn).loadBalancerArn;
    const view = this.#viewOf(lbArn);
    const entry: AccessLogEntry = entryFromRequestEnd(m, { elb: view.elb, nodeAddress: this.#nodeAddress });
    let line: string | null = null;
    if (this.#node !== null) {
      line = formatLine(this.#node.format, entry);
      this.#node.writer.write(line);
    }
    const s3 = this.#s3.get(lbArn);
    if (s3 === undefined) return;
    // NLB's lines are flows: an HTTP request there (none reaches a Network Load Balancer) is an ALB line.
    const format = s3.format === 'nlb' ? 'alb' : s3.format;
    // The same format in both places (ALB lines, most often): the line is made once.
    s3.writer.write(line !== null && this.#node?.format === format ? line : formatLine(format, entry));
  }

  /** One TCP or TLS flow: ebb's `tcp`/`tls` line in the node's log (./flow-entry.ts), NLB's line in a Network Load Balancer's files. */
  #recordFlow(m: FlowEndMessage): void {
    if (this.#node === null && this.#s3.size === 0) return;
    const listener = this.#listenerOf(m.listenerArn);
    const lbArn = listener.loadBalancerArn;
    const view = this.#viewOf(lbArn);
    let entry: AccessLogEntry | null = null;
    if (this.#node !== null) {
      entry = entryFromFlowEnd(m, { elb: view.elb, nodeAddress: this.#nodeAddress });
      this.#node.writer.write(formatLine(this.#node.format, entry));
    }
    const s3 = this.#s3.get(lbArn);
    if (s3 === undefined) return;
    if (s3.format === 'nlb') {
      // A listener bound to every address: the node's own stands for it, as NLB writes its node's.
      const wildcard = listener.address === '0.0.0.0' || listener.address === '::' || listener.address === '';
      const facts = { elb: view.elb, listenerId: listenerIdOf(m.listenerArn), listenerAddress: wildcard ? this.#nodeAddress : listener.address };
      s3.writer.write(formatNlbLine(m, facts));
    } else {
      s3.writer.write(formatLine(s3.format, entry ?? entryFromFlowEnd(m, { elb: view.elb, nodeAddress: this.#nodeAddress })));
    }
  }

  /** What the log knows of a load balancer; for one already gone, what its ARN says. */
  #viewOf(lbArn: string): LoadBalancerView {
    const known = this.#views.get(lbArn);
    if (known !== undefined) return known;
    const classic = !lbArn.includes(':loadbalancer/app/') && !lbArn.includes(':loadbalancer/net/');
    return { elb: elbId(lbArn), classic, s3Format: classic ? 'classic' : lbArn.includes(':loadbalancer/net/') ? 'nlb' : 'alb', s3: null };
  }

  #listenerOf(listenerArn: string): ListenerView {
    const known = this.#listeners.get(listenerArn);
    if (known !== undefined) return known;
    let view: ListenerView;
    try {
      const l = this.#o.control.describeListeners({ listenerArns: [listenerArn] })[0];
      view = { loadBalancerArn: l?.loadBalancerArn ?? loadBalancerArnOfListener(listenerArn), address: l?.address ?? '' };
    } catch {
      // Deleted while the request ran: its ARN still names its load balancer.
      view = { loadBalancerArn: loadBalancerArnOfListener(listenerArn), address: '' };
    }
    this.#listeners.set(listenerArn, view);
    return view;
  }

  /** Reads every load balancer's settings again, and opens, moves or closes their S3-layout writers. */
  #refresh(): void {
    try {
      this.#reconcile();
    } catch (error) {
      this.#logError('settings', error);
    }
    const logged = this.#node !== null || this.#s3.size > 0;
    if (logged !== this.#toldLogged) {
      this.#toldLogged = logged;
      this.#o.onRequestLogging?.(logged);
    }
    if (this.#started) this.#timer = this.#o.clock.setTimer(REFRESH_MS, () => this.#refresh());
  }

  #reconcile(): void {
    const control = this.#o.control;
    const lbs: LoadBalancerRecord[] = [...control.describeLoadBalancers(), ...control.describeLoadBalancers({ type: 'classic' })];
    const views = new Map<string, LoadBalancerView>();
    for (const lb of lbs) views.set(lb.arn, this.#viewOfRecord(lb));
    this.#views = views;
    this.#listeners.clear();
    for (const [arn, view] of views) {
      const s3 = view.s3;
      if (s3 === null) continue;
      const key = JSON.stringify([s3.bucketDir, s3.prefix, s3.intervalMinutes, view.elb, view.classic]);
      const current = this.#s3.get(arn);
      if (current?.key === key) continue;
      if (current !== undefined) this.#close(arn);
      const dest = new S3LayoutDestination({
        clock: this.#o.clock,
        bucketDir: s3.bucketDir,
        prefix: s3.prefix,
        accountId: control.accountId,
        region: control.region,
        elb: view.elb,
        classic: view.classic,
        intervalMinutes: s3.intervalMinutes,
        nodeAddress: this.#nodeAddress,
        counters: this.#destCounters,
        ...(this.#o.random === undefined ? {} : { random: this.#o.random }),
      });
      this.#s3.set(arn, { writer: this.#writer(dest, undefined), key, format: view.s3Format });
      this.#o.log({ event: 'access-log:s3', loadBalancer: arn, folder: s3.bucketDir, prefix: s3.prefix, intervalMinutes: s3.intervalMinutes });
    }
    for (const arn of [...this.#s3.keys()]) if ((views.get(arn)?.s3 ?? null) === null) this.#close(arn);
  }

  /** Closes a load balancer's S3-layout writer (logging turned off, moved, or the load balancer deleted): its open file is finished. */
  #close(arn: string): void {
    const s = this.#s3.get(arn);
    if (s === undefined) return;
    this.#s3.delete(arn);
    this.#retire(s.writer);
  }

  #viewOfRecord(lb: LoadBalancerRecord): LoadBalancerView {
    const classic = lb.type === 'classic';
    const attrs = lb.attributes;
    const elb = elbId(lb.arn);
    const bucket = attrs[ACCESS_LOG_ATTRIBUTES.bucket] ?? '';
    const conflict = loadBalancerAttributeConflict(attrs);
    if (conflict === null) this.#warned.delete(lb.arn);
    else if (!this.#warned.has(lb.arn)) {
      // The ELBv2 API accepts `enabled` alone (the check needs the whole set, which it does not see): say why nothing is written.
      this.#warned.add(lb.arn);
      this.#o.log({ event: 'access-log:no-bucket', level: 'warn', loadBalancer: lb.arn, message: conflict });
    }
    const s3Format: S3Format = classic ? 'classic' : lb.type === 'network' ? 'nlb' : 'alb';
    if (attrs[ACCESS_LOG_ATTRIBUTES.enabled] !== 'true' || bucket === '') return { elb, classic, s3Format, s3: null };
    const interval = attrs[ACCESS_LOG_ATTRIBUTES.emitInterval];
    return {
      elb,
      classic,
      s3Format,
      s3: {
        bucketDir: isAbsolute(bucket) ? bucket : resolve(this.#o.stateDir, bucket),
        prefix: attrs[ACCESS_LOG_ATTRIBUTES.prefix] ?? '',
        // ALB publishes every 5 minutes; a Classic load balancer every EmitInterval (60 by default).
        intervalMinutes: interval !== undefined ? Number(interval) : classic ? DEFAULT_CLASSIC_EMIT_INTERVAL : 5,
      },
    };
  }

  /**
   * Closes a writer that has left the service's list. Its counters still count: read live while it
   * writes what it had queued, then added to the service's own once it has closed.
   */
  #retire(writer: LineWriter): void {
    this.#retiredWriters.push(writer);
    const closing = writer.close().then(() => {
      add(this.#destCounters, writer);
      this.#retiredWriters = this.#retiredWriters.filter((w) => w !== writer);
      this.#closing = this.#closing.filter((p) => p !== closing);
    });
    this.#closing.push(closing);
  }

  /** Logs a writer's failure; after 100, only every 1000th, so a full disk does not flood ebb's own log. */
  #logError(what: string, error: unknown): void {
    const n = ++this.#errorsLogged;
    if (n > 100 && n % 1000 !== 0) return;
    this.#o.log({ event: 'access-log:error', level: 'error', what, error: error instanceof Error ? error.message : String(error), occurrences: n });
  }
}

function nodeDestination(node: NodeAccessLog | null, clock: Clock, counters: AccessLogCounters): Destination {
  if (node === null || node.output === 'stdout' || node.path === undefined) return new FdDestination(1);
  return new RotatingFileDestination(node.path, {
    clock,
    maxBytes: node.rotateBytes,
    intervalMs: node.rotateSeconds * 1000,
    keep: node.keep,
    counters,
  });
}

function add(sum: AccessLogCounters, w: LineWriter | undefined): void {
  if (w === undefined) return;
  sum.linesWritten += w.counters.linesWritten;
  sum.linesDropped += w.counters.linesDropped;
  sum.writeErrors += w.counters.writeErrors;
}
