import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { CertificateProblem, parseCertificate, validityAt } from '../domain/certificates.ts';
import type { CertificateRecord } from '../domain/resources.ts';
import { certificateArn, type DeclaredCertificateInput } from '../control/certificates.ts';
import { EbbError } from '../shared/errors.ts';
import type { PathSegment } from './problems.ts';

/**
 * The file's certificates, from its text to certificate records. Two places declare them:
 *
 * ```yaml
 * certificates:                       # top level: under an ARN the file chooses, named by listeners
 *   - arn: arn:aws:acm:us-east-1:123456789012:certificate/site
 *     certificateFile: tls/site.crt   # may hold the chain after the certificate (fullchain.pem)
 *     privateKeyFile: tls/site.key
 *     chainFile: tls/chain.pem        # optional
 * loadBalancers:
 *   - listeners:
 *       - protocol: HTTPS
 *         certificates:               # the first is the default, the others are chosen by SNI
 *           - { certificateFile: tls/a.crt, privateKeyFile: tls/a.key }
 *           - { certificateArn: arn:aws:acm:us-east-1:123456789012:certificate/site }
 * ```
 *
 * A listener's `{ certificateFile, privateKeyFile }` becomes a certificate under an ARN derived from its
 * two paths, so the same files give the same ARN at every start and reload (and two listeners naming
 * them share one certificate). Paths are relative to the configuration file. The files are read again
 * at every start and every reload (SIGHUP), whether or not the YAML changed, because renewed
 * certificates land under the same names; a file that cannot be read or parsed refuses the start or the
 * reload, naming the file and the reason, and what ebb serves stays as it was.
 */

/** One certificate the file declares, with where it is declared (for messages that point into the file). */
export interface DeclaredCertificateFiles {
  readonly arn: string;
  /** Absolute paths. */
  readonly files: NonNullable<CertificateRecord['files']>;
  /** The field path of its declaration (`certificates[0]`, or a listener's `certificates[1]`). */
  readonly path: readonly PathSegment[];
}

/** The file's certificates, and the ARNs each listener serves, in its order. */
export interface DeclaredCertificates {
  readonly certificates: readonly DeclaredCertificateFiles[];
  /** `listenerArns[lb][listener]`: the certificate ARNs of that listener (empty for one with none). */
  readonly listenerArns: ReadonlyArray<ReadonlyArray<readonly string[]>>;
  /** `file:line:col: field.path` of a field, for messages. */
  readonly where: (path: readonly PathSegment[]) => string;
}

/** What the schema reads of certificates (config/schema.ts); structural, so this file depends on no more of the shape. */
interface CertificateFields {
  readonly certificateArn?: string | undefined;
  readonly certificateFile?: string | undefined;
  readonly privateKeyFile?: string | undefined;
  readonly chainFile?: string | undefined;
}

export interface CertificatesShape {
  readonly certificates?: ReadonlyArray<{ readonly arn: string; readonly certificateFile: string; readonly privateKeyFile: string; readonly chainFile?: string | undefined }> | undefined;
  readonly loadBalancers?: ReadonlyArray<{ readonly listeners?: ReadonlyArray<{ readonly certificates?: readonly CertificateFields[] | undefined }> | undefined }> | undefined;
  readonly admin?: { readonly region?: string | undefined; readonly accountId?: string | undefined } | undefined;
}

/** The region and account ARNs are made in when the file names none (the control plane's defaults). */
export const DEFAULT_ARN_SCOPE = { region: 'us-east-1', accountId: '123456789012' } as const;

/**
 * The ARN of a listener's certificate given by its files: `arn:aws:acm:<region>:<account>:certificate/<id>`,
 * with an id in UUID form made from the two absolute paths, so it is the same at every start.
 */
export function fileCertificateArn(region: string, accountId: string, certificateFile: string, privateKeyFile: string): string {
  const h = createHash('sha256').update(`ebb-file-certificate\0${certificateFile}\0${privateKeyFile}`).digest('hex');
  return certificateArn(region, accountId, `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`);
}

/** The file's certificates as declarations (no file is read yet). */
export function declaredCertificates(cfg: CertificatesShape, fileName: string, where: (path: readonly PathSegment[]) => string): DeclaredCertificates {
  const dir = dirname(fileName);
  const region = cfg.admin?.region ?? DEFAULT_ARN_SCOPE.region;
  const accountId = cfg.admin?.accountId ?? DEFAULT_ARN_SCOPE.accountId;
  const byArn = new Map<string, DeclaredCertificateFiles>();
  (cfg.certificates ?? []).forEach((c, i) => {
    if (byArn.has(c.arn)) return;
    byArn.set(c.arn, { arn: c.arn, files: files(dir, c.certificateFile, c.privateKeyFile, c.chainFile), path: ['certificates', i] });
  });
  const listenerArns = (cfg.loadBalancers ?? []).map((lb, i) =>
    (lb.listeners ?? []).map((l, j) =>
      (l.certificates ?? []).map((c, k): string => {
        if (c.certificateArn !== undefined) return c.certificateArn;
        const f = files(dir, c.certificateFile ?? '', c.privateKeyFile ?? '', c.chainFile);
        const arn = fileCertificateArn(region, accountId, f.certificateFile, f.privateKeyFile);
        if (!byArn.has(arn)) byArn.set(arn, { arn, files: f, path: ['loadBalancers', i, 'listeners', j, 'certificates', k] });
        return arn;
      }),
    ),
  );
  return { certificates: [...byArn.values()], listenerArns, where };
}

function files(dir: string, certificateFile: string, privateKeyFile: string, chainFile: string | undefined): DeclaredCertificateFiles['files'] {
  return {
    certificateFile: resolve(dir, certificateFile),
    privateKeyFile: resolve(dir, privateKeyFile),
    ...(chainFile !== undefined && { chainFile: resolve(dir, chainFile) }),
  };
}

/** What reading the file's certificates found: the certificates to apply, and warnings to log. */
export interface ReadCertificates {
  readonly certificates: readonly DeclaredCertificateInput[];
  /** A certificate outside its validity (served all the same, as a server renewing on a timer must not stop over it). */
  readonly warnings: ReadonlyArray<{ readonly arn: string; readonly file: string; readonly message: string }>;
}

/**
 * Reads and checks every certificate the file declares, from its files, now. Throws ConfigInvalid
 * listing each problem as `file:line:col: field.path: <file>: <reason>` (a file that cannot be read, is
 * not PEM, a key that does not match, ...); nothing is applied then. `now` is wall-clock ms.
 */
export async function readDeclaredCertificates(declared: DeclaredCertificates, now: number): Promise<ReadCertificates> {
  const problems: string[] = [];
  const certificates: DeclaredCertificateInput[] = [];
  const warnings: Array<{ arn: string; file: string; message: string }> = [];
  for (const d of declared.certificates) {
    const at = declared.where(d.path);
    const texts = await Promise.all([readText(d.files.certificateFile), readText(d.files.privateKeyFile), d.files.chainFile === undefined ? null : readText(d.files.chainFile)]);
    const unreadable = texts.filter((t): t is { error: string } => t !== null && 'error' in t);
    if (unreadable.length > 0) {
      for (const u of unreadable) problems.push(`${at}: ${u.error}`);
      continue;
    }
    const [cert, key, chain] = texts as [{ text: string }, { text: string }, { text: string } | null];
    try {
      const parsed = parseCertificate(
        { certificatePem: cert.text, privateKeyPem: key.text, ...(chain !== null && { chainPem: chain.text }) },
        { labels: { certificate: d.files.certificateFile, privateKey: d.files.privateKeyFile, ...(d.files.chainFile !== undefined && { chain: d.files.chainFile }) }, chainInCertificate: true },
      );
      certificates.push({ arn: d.arn, parsed, files: d.files });
      const validity = validityAt(parsed, now);
      if (validity !== 'valid') {
        const when = new Date(validity === 'expired' ? parsed.notAfter : parsed.notBefore).toISOString();
        warnings.push({
          arn: d.arn,
          file: d.files.certificateFile,
          message: `${d.files.certificateFile}: the certificate is ${validity === 'expired' ? `expired (not after ${when})` : `not valid yet (not before ${when})`}; it is served, but clients will refuse it: renew it and reload ebb (SIGHUP)`,
        });
      }
    } catch (error) {
      if (!(error instanceof CertificateProblem)) throw error;
      problems.push(`${at}: ${error.message}`);
    }
  }
  if (problems.length > 0) {
    throw new EbbError('ConfigInvalid', `${problems.join('\n')}\nFix the certificate files, or the paths to them in the configuration file.`);
  }
  return { certificates, warnings };
}

async function readText(file: string): Promise<{ text: string } | { error: string }> {
  try {
    return { text: await readFile(file, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied (ebb must be able to read it)' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    return { error: `${file}: ${why}` };
  }
}
