import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Clock } from '../../shared/clock.ts';
import { count, type AccessLogCounters } from './counters.ts';
import type { Destination } from './line-writer.ts';

/**
 * Access logs laid out as Elastic Load Balancing lays them out in S3, in a local directory that
 * stands for the bucket, so tools written for ALB's bucket (Athena's partitions, log shippers that
 * read `AWSLogs/…`) read ebb's folder as it is. From "Access logs for your Application Load Balancer"
 * (Access log files):
 *
 *   bucket[/prefix]/AWSLogs/aws-account-id/elasticloadbalancing/region/yyyy/mm/dd/
 *     aws-account-id_elasticloadbalancing_region_app.load-balancer-id_end-time_ip-address_random-string.log.gz
 *
 * where the load balancer id's slashes become periods, `end-time` is when the logging interval ended
 * (`20140215T2340Z` holds 23:35 to 23:40 for a 5-minute interval) and the date folders are the date
 * the file was delivered (the interval's end). ALB publishes every 5 minutes. A Classic load balancer
 * ("Access logs for your Classic Load Balancer") writes uncompressed `.log` files named
 * `aws-account-id_elasticloadbalancing_region_load-balancer-name_end-time_ip-address_random-string.log`,
 * every 5 or 60 minutes (its EmitInterval).
 *
 * ebb writes the open interval's lines into a plain `.log` file in its final folder; when the
 * interval ends, an ALB's file is compressed to `.log.gz.tmp`, synced, renamed to `.log.gz` (atomic),
 * and the `.log` removed, so a reader that lists `*.log.gz` sees each file once and whole.
 */

export interface S3LayoutOptions {
  readonly clock: Clock;
  /** The directory standing for the bucket (absolute). */
  readonly bucketDir: string;
  /** `access_logs.s3.prefix`; '' for none. */
  readonly prefix: string;
  readonly accountId: string;
  readonly region: string;
  /** `app/NAME/ID`, or a Classic load balancer's name. */
  readonly elb: string;
  readonly classic: boolean;
  readonly intervalMinutes: number;
  /** The node's address, for the file name's `ip-address`. */
  readonly nodeAddress: string;
  readonly counters: AccessLogCounters;
  /** The file name's random string; 8 lowercase letters and digits by default. */
  readonly random?: () => string;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** The interval that contains `now` ends at the next multiple of the interval (UTC). */
export function intervalEnd(now: number, minutes: number): number {
  const every = minutes * 60_000;
  return (Math.floor(now / every) + 1) * every;
}

/** `20140215T2340Z`. */
export function endTimeText(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}T${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}Z`;
}

/** `BUCKET[/PREFIX]/AWSLogs/ACCOUNT/elasticloadbalancing/REGION/YYYY/MM/DD` for an interval ending at `end`. */
export function s3LogFolder(o: Pick<S3LayoutOptions, 'bucketDir' | 'prefix' | 'accountId' | 'region'>, end: number): string {
  const d = new Date(end);
  const parts = [o.bucketDir, ...(o.prefix === '' ? [] : [o.prefix]), 'AWSLogs', o.accountId, 'elasticloadbalancing', o.region];
  return join(...parts, String(d.getUTCFullYear()), pad(d.getUTCMonth() + 1), pad(d.getUTCDate()));
}

/** The file name's part before `end-time`: the account, the service, the region and the load balancer. */
function nameStem(o: Pick<S3LayoutOptions, 'accountId' | 'region' | 'elb'>): string {
  return `${o.accountId}_elasticloadbalancing_${o.region}_${o.elb.replaceAll('/', '.')}_`;
}

/** The open interval's file name (`.log`); an ALB's closed file is this with `.gz` added. */
export function s3LogFileName(o: Pick<S3LayoutOptions, 'accountId' | 'region' | 'elb' | 'nodeAddress'>, end: number, random: string): string {
  // An IPv6 node address has colons, which some tools treat as drive or host separators: dashes instead.
  return `${nameStem(o)}${endTimeText(end)}_${o.nodeAddress.replaceAll(':', '-')}_${random}.log`;
}

/** The `.log` files this process has open, which `#recover` must leave alone (a load balancer's logging reconfigured while its old file closes). */
const OPEN_FILES = new Set<string>();

function randomString(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(8)].map((b) => alphabet[b % alphabet.length]).join('');
}

/** Compresses `from` into `to` (through `to.tmp`, synced, then renamed), then removes `from`. */
export async function gzipInPlace(from: string, to: string): Promise<void> {
  const tmp = `${to}.tmp`;
  await pipeline(createReadStream(from), createGzip(), createWriteStream(tmp, { mode: 0o640 }));
  // On disk before the rename, so a crash leaves the .log or a whole .log.gz, never an empty one.
  const written = await open(tmp, 'r+');
  try {
    await written.sync();
  } finally {
    await written.close();
  }
  await rename(tmp, to);
  await rm(from, { force: true });
}

/** One load balancer's access logs in the S3 layout, one file per interval. */
export class S3LayoutDestination implements Destination {
  readonly #o: S3LayoutOptions;
  #handle: FileHandle | null = null;
  #path = '';
  #end = 0;
  #recovered = false;

  constructor(options: S3LayoutOptions) {
    this.#o = options;
  }

  /** The open interval's file, or '' when none is open. */
  get openFile(): string {
    return this.#handle === null ? '' : this.#path;
  }

  async write(data: string): Promise<void> {
    const now = this.#o.clock.wallTime();
    if (this.#handle !== null && now >= this.#end) await this.#finish();
    if (!this.#recovered) {
      this.#recovered = true;
      await this.#recover(now);
    }
    const handle = this.#handle ?? (await this.#open(now));
    const buf = Buffer.from(data, 'utf8');
    let at = 0;
    while (at < buf.length) at += (await handle.write(buf, at, buf.length - at)).bytesWritten;
  }

  nextDeadline(): number | null {
    return this.#handle === null ? null : this.#end;
  }

  async tick(): Promise<void> {
    if (this.#handle !== null && this.#o.clock.wallTime() >= this.#end) await this.#finish();
  }

  /** The files are ebb's own, not rotated by another program: nothing to reopen. */
  async reopen(): Promise<void> {}

  /** Finishes the open interval's file now (at shutdown, or when the load balancer's logging changes). */
  async close(): Promise<void> {
    await this.#finish();
  }

  async #open(now: number): Promise<FileHandle> {
    const end = intervalEnd(now, this.#o.intervalMinutes);
    const folder = s3LogFolder(this.#o, end);
    await mkdir(folder, { recursive: true });
    const path = join(folder, s3LogFileName(this.#o, end, (this.#o.random ?? randomString)()));
    const handle = await open(path, 'a', 0o640);
    OPEN_FILES.add(path);
    this.#handle = handle;
    this.#path = path;
    this.#end = end;
    return handle;
  }

  async #finish(): Promise<void> {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    try {
      await handle.close();
      if (!this.#o.classic) await gzipInPlace(this.#path, `${this.#path}.gz`);
    } finally {
      OPEN_FILES.delete(this.#path);
    }
    count(this.#o.counters, 'filesRotated');
  }

  /**
   * An ALB's `.log` files that an earlier run left open (it was killed before the interval ended)
   * are compressed now, and half-written `.gz.tmp` files removed, in the folders of today and the
   * day before: every line written stays readable by tools that read only `.log.gz`.
   */
  async #recover(now: number): Promise<void> {
    if (this.#o.classic) return;
    const stem = nameStem(this.#o);
    for (const day of [now - 86_400_000, now]) {
      const folder = s3LogFolder(this.#o, day);
      let names: string[];
      try {
        names = await readdir(folder);
      } catch {
        continue;
      }
      for (const name of names) {
        const path = join(folder, name);
        if (!name.startsWith(stem) || OPEN_FILES.has(path) || OPEN_FILES.has(path.slice(0, -'.gz.tmp'.length))) continue;
        if (name.endsWith('.log.gz.tmp')) await rm(path, { force: true });
        else if (name.endsWith('.log')) await gzipInPlace(path, `${path}.gz`);
      }
    }
  }
}
