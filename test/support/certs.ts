/**
 * Certificates for TLS tests, made with the `openssl` command on first use in a temporary directory
 * of the test process (EC P-256 keys: fast to make). One CA signs every leaf, so a client that trusts
 * `ca.certFile` can verify them; `selfSigned` makes one the CA did not sign.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
}

let dir: string | null = null;
let ca: TestCert | null = null;
let serial = 1;

function workDir(): string {
  dir ??= mkdtempSync(path.join(tmpdir(), 'ebb-certs-'));
  return dir;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function read(certFile: string, keyFile: string): TestCert {
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}

/** The CA every `leafCert` is signed by. */
export function testCa(): TestCert {
  if (ca !== null) return ca;
  const d = workDir();
  const key = path.join(d, 'ca.key');
  const cert = path.join(d, 'ca.crt');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  openssl(['req', '-x509', '-new', '-key', key, '-sha256', '-days', '3650', '-subj', '/CN=ebb test CA', '-out', cert]);
  ca = read(cert, key);
  return ca;
}

/**
 * A certificate for `names` (the first is the common name; all are DNS subject alternative names),
 * signed by the test CA. `tag` makes a distinct file (a renewed certificate for the same names).
 */
export function leafCert(names: readonly string[], tag = ''): TestCert {
  const c = testCa();
  const d = workDir();
  const base = path.join(d, `${names[0]?.replace(/[^a-z0-9.-]/gi, '_') ?? 'leaf'}${tag === '' ? '' : `-${tag}`}-${serial}`);
  const key = `${base}.key`;
  const csr = `${base}.csr`;
  const cert = `${base}.crt`;
  const ext = `${base}.ext`;
  writeFileSync(ext, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${names[0] ?? 'leaf'}`, '-out', csr]);
  openssl(['x509', '-req', '-in', csr, '-CA', c.certFile, '-CAkey', c.keyFile, '-set_serial', String(1000 + serial++), '-days', '825', '-sha256', '-extfile', ext, '-out', cert]);
  return read(cert, key);
}

/** A self-signed certificate for `names`, not signed by the test CA. */
export function selfSignedCert(names: readonly string[]): TestCert {
  const d = workDir();
  const base = path.join(d, `self-${serial++}`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${base}.key`]);
  openssl([
    'req', '-x509', '-new', '-key', `${base}.key`, '-sha256', '-days', '825', '-subj', `/CN=${names[0] ?? 'self'}`,
    '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`, '-out', `${base}.crt`,
  ]);
  return read(`${base}.crt`, `${base}.key`);
}
