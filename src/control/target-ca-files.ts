import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TargetGroupRecord } from '../domain/resources.ts';
import type { TargetTls } from '../domain/routing-snapshot.ts';
import { ebbError } from '../shared/errors.ts';

/**
 * The CA files HTTPS target groups name in `ebb.target_tls.ca_file` (ebb's own attribute): the PEM
 * their targets' certificates must chain to. A file is read when the attribute is set (a file that
 * cannot be read, or holds no certificate, refuses the change, naming the file and why), when a group
 * naming it is first published after a start, and again on `reload()` (SIGHUP: a renewed CA lands
 * under the same name). Publications read the PEM kept here, never the disk.
 *
 * A file that cannot be read where no change can be refused (after a restart, or on reload) fails
 * closed: at start it publishes an empty CA, which trusts nothing (requests to the group's targets get
 * 502 and their HTTPS health checks fail); on reload the PEM read before is kept. Either is logged.
 */
export class TargetCaFiles {
  /** File → PEM as last read ('' when it could never be read). */
  readonly #pems = new Map<string, string>();
  readonly #log: (entry: Record<string, unknown>) => void;

  constructor(log: (entry: Record<string, unknown>) => void = () => undefined) {
    this.#log = log;
  }

  /**
   * Before a change to a group's attributes commits: reads the CA file they name, if any. Throws
   * ValidationError naming the file and the reason when it cannot be used.
   */
  check(attributes: Readonly<Record<string, string | null>>): void {
    const file = attributes[TARGET_CA_FILE];
    if (file === undefined || file === null || file === '') return;
    this.#pems.set(file, readCaFile(file));
  }

  /** An HTTPS group's TLS to its targets, with the PEM of its CA file as last read; null for HTTP and TCP groups. */
  targetTls(tg: Pick<TargetGroupRecord, 'arn' | 'protocol' | 'attributes'>): TargetTls | null {
    if (tg.protocol !== 'HTTPS') return null;
    const file = tg.attributes[TARGET_CA_FILE];
    if (file === undefined || file === '') return NO_VERIFY;
    let pem = this.#pems.get(file);
    if (pem === undefined) {
      pem = this.#readOrLog(file, tg.arn, '');
      this.#pems.set(file, pem);
    }
    return { caPem: pem };
  }

  /** Reads every file again (a reload); one that can no longer be read keeps what was read before. Returns the files that failed. */
  reload(): string[] {
    const failed: string[] = [];
    for (const [file, before] of this.#pems) {
      try {
        this.#pems.set(file, readCaFile(file));
      } catch (error) {
        failed.push(file);
        this.#unreadable(file, null, before, error);
      }
    }
    return failed;
  }

  #readOrLog(file: string, groupArn: string | null, fallback: string): string {
    try {
      return readCaFile(file);
    } catch (error) {
      this.#unreadable(file, groupArn, fallback, error);
      return fallback;
    }
  }

  #unreadable(file: string, groupArn: string | null, fallback: string, error: unknown): void {
    this.#log({
      event: 'target-tls:ca-file-unreadable',
      level: 'error',
      file,
      ...(groupArn === null ? {} : { targetGroupArn: groupArn }),
      error: error instanceof Error ? error.message : String(error),
      using: fallback === '' ? 'no CA: no target certificate is trusted until the file is fixed and ebb reloads' : 'the CA read before',
    });
  }
}

/** The target-group attribute (ebb's own, in the AWS style): the CA file an HTTPS group verifies its targets with. */
export const TARGET_CA_FILE = 'ebb.target_tls.ca_file';

const NO_VERIFY: TargetTls = { caPem: null };

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/g;

/** Reads a PEM file of one or more CA certificates; throws ValidationError naming the file and why it cannot be used. */
export function readCaFile(file: string): string {
  const refuse = (why: string): never => {
    throw ebbError('ValidationError', `Attribute '${TARGET_CA_FILE}' names ${file}, which ${why}; give the path of a PEM file of the CA certificates that sign the targets' certificates`);
  };
  if (!file.startsWith('/')) refuse('is not an absolute path');
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message;
    refuse(`cannot be read (${why})`);
  }
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) refuse('holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (error) {
      refuse(`holds a certificate (number ${i + 1}) that cannot be parsed: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  return `${blocks.join('\n')}\n`;
}
