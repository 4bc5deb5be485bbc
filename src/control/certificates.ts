import { randomUUID } from 'node:crypto';
import { CertificateProblem, parseCertificate, validityAt, type ParsedCertificate } from '../domain/certificates.ts';
import type { CertificateRecord, ListenerRecord, Tag } from '../domain/resources.ts';
import type { StoreKind } from '../domain/store-port.ts';
import type { Clock } from '../shared/clock.ts';
import { ebbError } from '../shared/errors.ts';
import type { SerialQueue } from './serial-queue.ts';
import { del, put, recordsOf, type StoreTransaction } from './store-transaction.ts';

/**
 * The certificate catalog: the server certificates ebb knows, by ARN, as ACM keeps them (ImportCertificate,
 * re-import to the same ARN, DescribeCertificate, ListCertificates, DeleteCertificate, tags) and as the
 * configuration file declares them. HTTPS and TLS listeners name them by ARN (`ListenerRecord.certificateArns`);
 * the routing publication hands their PEM to the data planes. A certificate a listener uses cannot be
 * deleted (ResourceInUseException, as ACM answers while a load balancer uses one).
 *
 * Records are stored as kind `certificate`, one per ARN. Every command runs in the control plane's
 * serial queue and commits through its StoreTransaction; a change publishes a snapshot, so a re-imported
 * certificate reaches the listeners that serve it at once.
 */

/** What ImportCertificate, or the file, gives. */
export interface ImportCertificateInput {
  /** Re-import to this ARN (it must exist); absent: a new certificate under a new ARN. */
  readonly certificateArn?: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly chainPem?: string;
  /** Only on a new import (ACM: tags cannot be applied when re-importing). */
  readonly tags?: readonly Tag[];
}

/** A certificate the configuration file declares: read from its files, under the ARN the file gives or ebb derives. */
export interface DeclaredCertificateInput {
  readonly arn: string;
  readonly parsed: ParsedCertificate;
  readonly files: NonNullable<CertificateRecord['files']>;
}

/** A record with what only the catalog knows: the listeners and load balancers that use it. */
export interface CertificateView {
  readonly record: CertificateRecord;
  /** Listener ARNs that serve it. */
  readonly listeners: readonly string[];
  /** ARNs of their load balancers (ACM's InUseBy names the load balancer). */
  readonly inUseBy: readonly string[];
}

/** The certificate commands of the control plane's facade (`ControlApi.certificates`). */
export interface CertificateCommands {
  importCertificate(input: ImportCertificateInput): Promise<CertificateRecord>;
  /** Throws ResourceNotFoundException, or InvalidArnException for a malformed ARN. */
  describeCertificate(arn: string): CertificateView;
  /** Every certificate, oldest import first. */
  listCertificates(): CertificateView[];
  /** Whether ebb knows the certificate (CreateListener's CertificateNotFound check). */
  hasCertificate(arn: string): boolean;
  deleteCertificate(arn: string): Promise<void>;
  addCertificateTags(arn: string, tags: readonly Tag[]): Promise<void>;
  /** A tag given without a value removes the key whatever its value; with one, only when the value matches (ACM). */
  removeCertificateTags(arn: string, tags: ReadonlyArray<{ readonly key: string; readonly value?: string }>): Promise<void>;
}

/** ACM's quota on imported certificates (https://docs.aws.amazon.com/acm/latest/userguide/acm-limits.html). */
export const MAX_CERTIFICATES = 2500;

const ARN_PATTERN = /^arn:aws:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]{1,128}$/;

/** A new certificate ARN, in ACM's form: `arn:aws:acm:<region>:<account>:certificate/<uuid>`. */
export function certificateArn(region: string, accountId: string, id: string = randomUUID()): string {
  return `arn:aws:acm:${region}:${accountId}:certificate/${id}`;
}

export function isCertificateArn(value: string): boolean {
  return ARN_PATTERN.test(value);
}

export interface CertificateCatalogOptions {
  readonly region: string;
  readonly accountId: string;
  readonly clock: Clock;
  readonly queue: SerialQueue;
  readonly transaction: StoreTransaction;
  /** Every listener, to tell which use a certificate. */
  readonly listeners: () => Iterable<ListenerRecord>;
  readonly log?: (entry: Record<string, unknown>) => void;
}

export class CertificateCatalog implements CertificateCommands {
  readonly #o: CertificateCatalogOptions;
  readonly #records = new Map<string, CertificateRecord>();

  constructor(options: CertificateCatalogOptions) {
    this.#o = options;
  }

  load(state: ReadonlyMap<StoreKind, ReadonlyMap<string, unknown>>): void {
    for (const r of recordsOf<CertificateRecord>(state, 'certificate')) this.#records.set(r.arn, r);
  }

  /** The records by ARN (what the routing publication reads). */
  get records(): ReadonlyMap<string, CertificateRecord> {
    return this.#records;
  }

  get(arn: string): CertificateRecord | undefined {
    return this.#records.get(arn);
  }

  hasCertificate(arn: string): boolean {
    return this.#records.has(arn);
  }

  // ---------------------------------------------------------------- ACM commands

  importCertificate(input: ImportCertificateInput): Promise<CertificateRecord> {
    return this.#o.queue.run(async () => {
      const before = input.certificateArn === undefined ? undefined : this.#require(input.certificateArn);
      if (before?.source === 'config') {
        throw ebbError(
          'ValidationException',
          `Certificate '${before.arn}' is declared in the configuration file (from ${before.files?.certificateFile ?? 'its files'}); replace its files and reload ebb (SIGHUP) instead of re-importing it`,
        );
      }
      if (before !== undefined && input.tags !== undefined && input.tags.length > 0) {
        throw ebbError('InvalidParameterException', 'Tags cannot be applied when re-importing a certificate; add them with aws acm add-tags-to-certificate');
      }
      if (before === undefined && this.#records.size >= MAX_CERTIFICATES) {
        throw ebbError('LimitExceededException', `ebb keeps at most ${MAX_CERTIFICATES} certificates, as ACM's quota; delete unused ones with aws acm delete-certificate`);
      }
      const tags = before?.tags ?? checkCertificateTags(input.tags ?? []);
      const parsed = parseForApi(input);
      const now = this.#o.clock.wallTime();
      const validity = validityAt(parsed, now);
      if (validity !== 'valid') {
        const when = new Date(validity === 'expired' ? parsed.notAfter : parsed.notBefore).toISOString();
        throw ebbError(
          'ValidationException',
          `The certificate is ${validity === 'expired' ? `expired (not after ${when})` : `not valid yet (not before ${when})`}; ACM imports only a certificate valid now`,
        );
      }
      const record = toRecord(before?.arn ?? certificateArn(this.#o.region, this.#o.accountId), parsed, { importedAt: now, tags, source: 'api' });
      await this.#o.transaction.transact([put('certificate', record.arn, record)], () => void this.#records.set(record.arn, record), {
        publish: before !== undefined && this.#listenersUsing(record.arn).length > 0,
      });
      return record;
    });
  }

  describeCertificate(arn: string): CertificateView {
    return this.#view(this.#require(arn));
  }

  listCertificates(): CertificateView[] {
    return [...this.#records.values()].map((r) => this.#view(r));
  }

  deleteCertificate(arn: string): Promise<void> {
    return this.#o.queue.run(async () => {
      this.#require(arn);
      const users = this.#listenersUsing(arn);
      if (users.length > 0) {
        throw ebbError(
          'ResourceInUseException',
          `Certificate '${arn}' is in use by ${users.length === 1 ? 'listener' : 'listeners'} ${users.map((l) => l.arn).join(', ')}; remove it from them first (aws elbv2 remove-listener-certificates, or another default with modify-listener)`,
        );
      }
      await this.#o.transaction.transact([del('certificate', arn)], () => void this.#records.delete(arn), { publish: false });
    });
  }

  addCertificateTags(arn: string, tags: readonly Tag[]): Promise<void> {
    return this.#o.queue.run(async () => {
      const r = this.#require(arn);
      const given = checkCertificateTags(tags);
      const byKey = new Map(r.tags.map((t) => [t.key, t.value]));
      for (const t of given) byKey.set(t.key, t.value);
      if (byKey.size > MAX_TAGS) throw ebbError('TooManyTagsException', `A certificate can have at most ${MAX_TAGS} tags; it would have ${byKey.size}`);
      await this.#setTags(r, [...byKey].map(([key, value]) => ({ key, value })));
    });
  }

  removeCertificateTags(arn: string, tags: ReadonlyArray<{ readonly key: string; readonly value?: string }>): Promise<void> {
    return this.#o.queue.run(async () => {
      const r = this.#require(arn);
      const remaining = r.tags.filter((t) => !tags.some((x) => x.key === t.key && (x.value === undefined || x.value === t.value)));
      await this.#setTags(r, remaining);
    });
  }

  // ---------------------------------------------------------------- the file's certificates

  /**
   * Makes the certificates the file declares what it says now (read again from their files on every
   * start and reload): each one that is new or whose content changed is put; the others are left as
   * they are. Resolves with what changed, one line each. Run before the file's listeners are made or
   * changed, so they find their certificates; `removeUndeclared` runs after.
   */
  applyDeclared(declared: readonly DeclaredCertificateInput[]): Promise<string[]> {
    return this.#o.queue.run(async () => {
      const now = this.#o.clock.wallTime();
      const changed: string[] = [];
      const next: CertificateRecord[] = [];
      for (const d of declared) {
        const before = this.#records.get(d.arn);
        if (before !== undefined && before.source === 'api') {
          throw ebbError(
            'ConfigInvalid',
            `Certificate '${d.arn}' (${d.files.certificateFile}) was imported through the API; give the file's certificate another ARN, or delete the imported one (aws acm delete-certificate)`,
          );
        }
        if (before !== undefined && sameContent(before, d)) continue;
        next.push(toRecord(d.arn, d.parsed, { importedAt: now, tags: before?.tags ?? [], source: 'config', files: d.files }));
        changed.push(`${before === undefined ? 'added' : 'reloaded'} certificate ${d.arn} (${d.files.certificateFile})`);
      }
      if (next.length === 0) return changed;
      await this.#o.transaction.transact(
        next.map((r) => put('certificate', r.arn, r)),
        () => {
          for (const r of next) this.#records.set(r.arn, r);
        },
        { publish: next.some((r) => this.#listenersUsing(r.arn).length > 0) },
      );
      return changed;
    });
  }

  /**
   * Deletes the certificates the file declared before and no longer does, once no listener uses them
   * (one still used stays, and is logged, until a later reload finds it unused). Run after the file's
   * listeners were changed. Resolves with what was removed, one line each.
   */
  removeUndeclared(declared: readonly DeclaredCertificateInput[]): Promise<string[]> {
    return this.#o.queue.run(async () => {
      const wanted = new Set(declared.map((d) => d.arn));
      const gone: string[] = [];
      for (const r of this.#records.values()) {
        if (r.source !== 'config' || wanted.has(r.arn)) continue;
        if (this.#listenersUsing(r.arn).length > 0) {
          this.#o.log?.({ event: 'certificate:kept', level: 'warn', certificate: r.arn, message: 'no longer in the file, but a listener still uses it; it is removed at a reload that finds it unused' });
          continue;
        }
        gone.push(r.arn);
      }
      if (gone.length === 0) return [];
      await this.#o.transaction.transact(
        gone.map((arn) => del('certificate', arn)),
        () => {
          for (const arn of gone) this.#records.delete(arn);
        },
        { publish: false },
      );
      return gone.map((arn) => `removed certificate ${arn}`);
    });
  }

  // ---------------------------------------------------------------- internals

  #require(arn: string): CertificateRecord {
    if (!isCertificateArn(arn)) {
      throw ebbError('InvalidArnException', `'${arn}' is not a valid certificate ARN: it has the form arn:aws:acm:${this.#o.region}:${this.#o.accountId}:certificate/<id>`);
    }
    const r = this.#records.get(arn);
    if (r === undefined) throw ebbError('ResourceNotFoundException', `Could not find certificate with ARN '${arn}'; aws acm list-certificates lists those ebb knows`);
    return r;
  }

  #listenersUsing(arn: string): ListenerRecord[] {
    return [...this.#o.listeners()].filter((l) => l.certificateArns?.includes(arn) === true);
  }

  #view(record: CertificateRecord): CertificateView {
    const users = this.#listenersUsing(record.arn);
    return { record, listeners: users.map((l) => l.arn), inUseBy: [...new Set(users.map((l) => l.loadBalancerArn))] };
  }

  async #setTags(r: CertificateRecord, tags: Tag[]): Promise<void> {
    const record: CertificateRecord = { ...r, tags };
    await this.#o.transaction.transact([put('certificate', r.arn, record)], () => void this.#records.set(r.arn, record), { publish: false });
  }
}

/** ImportCertificate's members parsed as ACM takes them: one certificate in Certificate, the chain apart. */
function parseForApi(input: ImportCertificateInput): ParsedCertificate {
  try {
    return parseCertificate(
      { certificatePem: input.certificatePem, privateKeyPem: input.privateKeyPem, ...(input.chainPem !== undefined && { chainPem: input.chainPem }) },
      { labels: { certificate: 'Certificate', privateKey: 'PrivateKey', chain: 'CertificateChain' } },
    );
  } catch (error) {
    if (error instanceof CertificateProblem) throw ebbError('ValidationException', error.message);
    throw error;
  }
}

function toRecord(
  arn: string,
  p: ParsedCertificate,
  extra: { importedAt: number; tags: readonly Tag[]; source: 'api' | 'config'; files?: CertificateRecord['files'] },
): CertificateRecord {
  return {
    arn,
    domainName: p.domainName,
    subjectAlternativeNames: p.subjectAlternativeNames,
    certificatePem: p.certificatePem,
    privateKeyPem: p.privateKeyPem,
    chainPem: p.chainPem,
    serial: p.serial,
    issuer: p.issuer,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    keyAlgorithm: p.keyAlgorithm,
    importedAt: extra.importedAt,
    tags: extra.tags,
    source: extra.source,
    ...(extra.files !== undefined && { files: extra.files }),
  };
}

function sameContent(r: CertificateRecord, d: DeclaredCertificateInput): boolean {
  return (
    r.certificatePem === d.parsed.certificatePem &&
    r.chainPem === d.parsed.chainPem &&
    r.privateKeyPem === d.parsed.privateKeyPem &&
    JSON.stringify(r.files) === JSON.stringify(d.files)
  );
}

const MAX_TAGS = 50;
const TAG_PATTERN = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

/** ACM's tag rules (botocore acm `Tag`, `TagKey`, `TagValue`, `TagList`): InvalidTagException, TooManyTagsException. */
function checkCertificateTags(tags: readonly Tag[]): Tag[] {
  if (tags.length > MAX_TAGS) throw ebbError('TooManyTagsException', `A certificate can have at most ${MAX_TAGS} tags; got ${tags.length}`);
  const seen = new Set<string>();
  for (const t of tags) {
    if (t.key.length < 1 || t.key.length > 128 || !TAG_PATTERN.test(t.key)) {
      throw ebbError('InvalidTagException', `Tag key '${t.key}' is not valid: 1-128 letters, digits, spaces and _.:/=+-@`);
    }
    if (t.key.toLowerCase().startsWith('aws:')) throw ebbError('InvalidTagException', `Tag key '${t.key}' is not allowed: keys starting with 'aws:' are reserved`);
    if (t.value.length > 256 || !TAG_PATTERN.test(t.value)) {
      throw ebbError('InvalidTagException', `Tag value for '${t.key}' is not valid: up to 256 letters, digits, spaces and _.:/=+-@`);
    }
    if (seen.has(t.key)) throw ebbError('InvalidTagException', `Tag key '${t.key}' is given twice`);
    seen.add(t.key);
  }
  return tags.map((t) => ({ key: t.key, value: t.value }));
}
