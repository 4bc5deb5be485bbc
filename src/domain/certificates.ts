import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';

/**
 * A server certificate, its chain and its private key, read from PEM and checked together: what ACM's
 * ImportCertificate and the configuration file's certificates both go through, so the API and the file
 * accept the same things. Parsing is node:crypto's (OpenSSL's); nothing here reads a file or a clock.
 *
 * ACM's rules (botocore `acm/2015-12-08` ImportCertificate; https://docs.aws.amazon.com/acm/latest/userguide/import-certificate-prerequisites.html)
 * that ebb keeps: PEM only; an unencrypted private key that matches the certificate's public key; RSA
 * or EC keys (P-256, P-384, P-521); a chain of certificates of which one issued the certificate. ACM also
 * refuses a certificate outside its validity period: the API does (`CertificateProblem`'s `validity`
 * says so), the file only warns, as a server renewing on a timer must not stop serving over it.
 */

/** Which of the three PEM inputs a problem is about. */
export type CertificatePart = 'certificate' | 'privateKey' | 'chain';

/** A certificate or key that cannot be used, and why; `label` names the input (a file, or an API member). */
export class CertificateProblem extends Error {
  readonly part: CertificatePart;
  readonly reason: string;

  constructor(part: CertificatePart, label: string, reason: string) {
    super(`${label}: ${reason}`);
    this.name = 'CertificateProblem';
    this.part = part;
    this.reason = reason;
  }
}

export interface CertificateInput {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  /** Intermediate certificates, PEM; empty or absent when none. */
  readonly chainPem?: string;
}

export interface ParseOptions {
  /** How each input is named in a problem's message (a file path, or the API's member name). */
  readonly labels?: Partial<Record<CertificatePart, string>>;
  /**
   * Whether the certificate input may carry the chain after the certificate (a `fullchain.pem`, as
   * certbot writes it): the file allows it, ACM's ImportCertificate does not.
   */
  readonly chainInCertificate?: boolean;
}

/** What is read from a certificate that passed every check. */
export interface ParsedCertificate {
  /** The certificate alone, PEM (normalised by OpenSSL). */
  readonly certificatePem: string;
  /** The intermediate certificates, PEM, in the order given; empty when none. */
  readonly chainPem: string;
  readonly privateKeyPem: string;
  /** The subject's common name, or the first DNS name when it has none. */
  readonly domainName: string;
  /** DNS names it serves, lower case (`*.example.com` kept as written); the common name when it has no DNS names. */
  readonly subjectAlternativeNames: readonly string[];
  /** The subject as `CN=...,O=...` (OpenSSL's order). */
  readonly subject: string;
  /** The issuer's organisation, else its common name, else its whole name (as ACM describes an imported certificate's issuer). */
  readonly issuer: string;
  /** Colon-separated lower-case hex octets, as ACM shows it (`0b:8f:...`). */
  readonly serial: string;
  /** Validity, wall-clock ms. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** ACM's KeyAlgorithm name: `RSA_2048`, `EC_prime256v1`, `EC_secp384r1`, `EC_secp521r1`. */
  readonly keyAlgorithm: string;
  /** Extended key usage OIDs the certificate names (empty: the extension is absent). */
  readonly extendedKeyUsageOids: readonly string[];
  /** Whether the certificate is signed by its own key (then it needs no chain). */
  readonly selfSigned: boolean;
}

const EC_CURVES: ReadonlySet<string> = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

/**
 * Parses and checks a certificate, its chain and its key. Throws CertificateProblem naming the input
 * and the reason: not PEM, more than one certificate where one is expected, an encrypted or unreadable
 * key, a key type ebb does not serve, a key that does not match the certificate, a chain that does not
 * issue it.
 */
export function parseCertificate(input: CertificateInput, options: ParseOptions = {}): ParsedCertificate {
  const label = (part: CertificatePart): string => options.labels?.[part] ?? DEFAULT_LABELS[part];
  const problem = (part: CertificatePart, reason: string): CertificateProblem => new CertificateProblem(part, label(part), reason);

  const certBlocks = pemBlocks(input.certificatePem, 'CERTIFICATE', () => problem('certificate', notPem('a certificate', 'CERTIFICATE', input.certificatePem)));
  if (certBlocks.length > 1 && options.chainInCertificate !== true) {
    throw problem('certificate', `holds ${certBlocks.length} certificates; give only the server certificate here and the others as the chain`);
  }
  const [leafPem = '', ...bundled] = certBlocks;
  const cert = x509(leafPem, () => problem('certificate', 'is not a valid X.509 certificate (OpenSSL could not parse it)'));
  const bundledChain = bundled.map((pem, i) => x509(pem, () => problem('certificate', `certificate ${i + 2} in it is not a valid X.509 certificate`)));

  const chainText = input.chainPem ?? '';
  const chainBlocks = chainText.trim() === '' ? [] : pemBlocks(chainText, 'CERTIFICATE', () => problem('chain', notPem('certificates', 'CERTIFICATE', chainText)));
  const givenChain = chainBlocks.map((pem, i) => x509(pem, () => problem('chain', `certificate ${i + 1} in it is not a valid X.509 certificate`)));
  const chain = [...bundledChain, ...givenChain];

  const key = privateKey(input.privateKeyPem, (reason) => problem('privateKey', reason));
  const keyAlgorithm = keyAlgorithmOf(key, (reason) => problem('privateKey', reason));
  if (!cert.checkPrivateKey(key)) {
    throw problem('privateKey', `does not match the certificate ${label('certificate')} (its public key is another key's); give the key the certificate was made for`);
  }
  const selfSigned = cert.checkIssued(cert) && cert.verify(cert.publicKey);
  if (chain.length > 0 && !selfSigned && !chain.some((c) => cert.checkIssued(c) && cert.verify(c.publicKey))) {
    const where = bundledChain.length > 0 && givenChain.length === 0 ? label('certificate') : label('chain');
    throw new CertificateProblem(
      bundledChain.length > 0 && givenChain.length === 0 ? 'certificate' : 'chain',
      where,
      `no certificate in the chain issued the certificate (its issuer is ${oneLine(cert.issuer)}); give the chain of the CA that signed it`,
    );
  }

  const dnsNames = sanDnsNames(cert.subjectAltName);
  const commonName = nameField(cert.subject, 'CN');
  const names = dnsNames.length > 0 ? dnsNames : commonName === null ? [] : [commonName.toLowerCase()];
  return {
    certificatePem: ensureNewline(cert.toString()),
    chainPem: chain.map((c) => ensureNewline(c.toString())).join(''),
    privateKeyPem: ensureNewline(key.export({ type: 'pkcs8', format: 'pem' }).toString()),
    domainName: commonName ?? names[0] ?? '',
    subjectAlternativeNames: names,
    subject: oneLine(cert.subject),
    issuer: nameField(cert.issuer, 'O') ?? nameField(cert.issuer, 'CN') ?? oneLine(cert.issuer),
    serial: formatSerial(cert.serialNumber),
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
    keyAlgorithm,
    extendedKeyUsageOids: cert.keyUsage ?? [],
    selfSigned,
  };
}

/** Whether `now` (wall-clock ms) is inside the certificate's validity, and if not, which side of it. */
export function validityAt(c: { readonly notBefore: number; readonly notAfter: number }, now: number): 'valid' | 'expired' | 'not-yet-valid' {
  if (now < c.notBefore) return 'not-yet-valid';
  if (now > c.notAfter) return 'expired';
  return 'valid';
}

/**
 * Whether a certificate whose DNS names are `names` serves `host` (an SNI name): an exact name, or a
 * wildcard `*.example.com` for exactly one more label (`a.example.com`, not `example.com` nor
 * `a.b.example.com`), case-insensitively, as RFC 6125 §6.4.3 has it.
 */
export function certificateServes(names: readonly string[], host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  for (const name of names) {
    if (name === h) return true;
    if (name.startsWith('*.')) {
      const dot = h.indexOf('.');
      if (dot > 0 && h.slice(dot + 1) === name.slice(2)) return true;
    }
  }
  return false;
}

const DEFAULT_LABELS: Readonly<Record<CertificatePart, string>> = { certificate: 'the certificate', privateKey: 'the private key', chain: 'the certificate chain' };

/** The PEM blocks of `type` in `text`, in order; throws `onNone()` when there is none. */
function pemBlocks(text: string, type: string, onNone: () => Error): string[] {
  const blocks = [...text.matchAll(PEM_BLOCK)].filter((m) => m[1] === type).map((m) => m[0]);
  if (blocks.length === 0) throw onNone();
  return blocks;
}

function notPem(what: string, type: string, text: string): string {
  if (text.trim() === '') return 'is empty';
  const other = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
  if (other !== undefined) return `holds a ${other} block, not ${what} (PEM "-----BEGIN ${type}-----")`;
  return `is not PEM: expected ${what} between "-----BEGIN ${type}-----" and "-----END ${type}-----" lines (DER files can be converted with openssl x509 -inform der)`;
}

function x509(pem: string, onError: () => Error): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw onError();
  }
}

function privateKey(text: string, problem: (reason: string) => Error): KeyObject {
  if (text.trim() === '') throw problem('is empty');
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text) || /^Proc-Type:\s*4,ENCRYPTED/m.test(text)) {
    throw problem('is encrypted with a passphrase; give it unencrypted (openssl pkey -in KEY -out PLAIN.key), as ACM requires too');
  }
  const block = /-----BEGIN ((?:RSA |EC )?PRIVATE KEY)-----/.exec(text);
  if (block === null) {
    const other = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
    throw problem(
      other === undefined
        ? 'is not PEM: expected a private key between "-----BEGIN PRIVATE KEY-----" and "-----END PRIVATE KEY-----" lines'
        : `holds a ${other} block, not a private key`,
    );
  }
  try {
    return createPrivateKey(text);
  } catch (error) {
    throw problem(`cannot be read as a private key (${(error as Error).message})`);
  }
}

function keyAlgorithmOf(key: KeyObject, problem: (reason: string) => Error): string {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') return `RSA_${details.modulusLength ?? 0}`;
  if (key.asymmetricKeyType === 'ec' && details.namedCurve !== undefined && EC_CURVES.has(details.namedCurve)) return `EC_${details.namedCurve}`;
  const what = key.asymmetricKeyType === 'ec' ? `an EC key on curve ${details.namedCurve ?? 'unknown'}` : `a ${key.asymmetricKeyType ?? 'unknown'} key`;
  throw problem(`is ${what}; ebb serves RSA keys and EC keys on P-256, P-384 or P-521, as ACM imports`);
}

/** DNS names of a subjectAltName string (`DNS:a.example, IP Address:127.0.0.1`), lower case, in order. */
function sanDnsNames(san: string | undefined): string[] {
  if (san === undefined) return [];
  const out: string[] = [];
  for (const entry of san.split(/,\s*/)) {
    if (!entry.startsWith('DNS:')) continue;
    const name = entry.slice(4).trim().toLowerCase();
    if (name !== '' && !out.includes(name)) out.push(name);
  }
  return out;
}

/** One field of an OpenSSL name (lines of `KEY=value`), or null. */
function nameField(name: string, key: string): string | null {
  for (const line of name.split('\n')) {
    if (line.startsWith(`${key}=`)) return line.slice(key.length + 1);
  }
  return null;
}

/** An OpenSSL name on one line, in the order OpenSSL gives: `C=US,O=Example,CN=example.com`. */
function oneLine(name: string): string {
  return name.split('\n').filter((l) => l !== '').join(',');
}

function formatSerial(hex: string): string {
  const even = hex.length % 2 === 1 ? `0${hex}` : hex;
  return (even.toLowerCase().match(/../g) ?? []).join(':');
}

function ensureNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}
