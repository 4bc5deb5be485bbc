import { X509Certificate } from 'node:crypto';
import { validityAt } from '../../domain/certificates.ts';
import type { CertificateRecord, Tag } from '../../domain/resources.ts';
import type { CertificateCommands, CertificateView } from '../../control/certificates.ts';
import { ebbError } from '../../shared/errors.ts';
import { JsonInput, type JsonObject } from './json-input.ts';

/**
 * ACM's operations that ebb serves, on AWS JSON 1.1 (botocore `acm/2015-12-08/service-2.json`):
 * ImportCertificate, DescribeCertificate, ListCertificates, GetCertificate, DeleteCertificate,
 * AddTagsToCertificate, RemoveTagsFromCertificate, ListTagsForCertificate. Each reads the request's
 * JSON members and answers the output shape's members; timestamps are epoch seconds, as the protocol
 * writes them. Every certificate is `IMPORTED`: ebb issues none (RequestCertificate is refused).
 */

export type AcmAction = (input: JsonInput, certificates: CertificateCommands, now: number) => Promise<JsonObject | undefined> | JsonObject | undefined;

/** By operation name (the part of `X-Amz-Target` after `CertificateManager.`); a Map, so only these are found. */
export const ACM_ACTIONS: ReadonlyMap<string, AcmAction> = new Map<string, AcmAction>([
  ['ImportCertificate', importCertificate],
  ['DescribeCertificate', (p, c, now) => ({ Certificate: detail(c.describeCertificate(p.requiredString('CertificateArn')), now) })],
  ['ListCertificates', listCertificates],
  ['GetCertificate', getCertificate],
  ['DeleteCertificate', async (p, c) => void (await c.deleteCertificate(p.requiredString('CertificateArn')))],
  ['AddTagsToCertificate', async (p, c) => void (await c.addCertificateTags(p.requiredString('CertificateArn'), requiredTags(p)))],
  ['RemoveTagsFromCertificate', async (p, c) => void (await c.removeCertificateTags(p.requiredString('CertificateArn'), requiredTags(p, true)))],
  ['ListTagsForCertificate', (p, c) => ({ Tags: tagsJson(c.describeCertificate(p.requiredString('CertificateArn')).record.tags) })],
]);

/** ACM operations that exist but that ebb does not serve, with why. */
export const ACM_NOT_SERVED: ReadonlyMap<string, string> = new Map([
  ['RequestCertificate', 'ebb issues no certificates: make one (with your CA, or certbot) and import it with aws acm import-certificate'],
  ['ExportCertificate', 'ebb exports no private keys: the certificate and key are the files or blobs you imported'],
  ['RenewCertificate', 'ebb renews no certificates: re-import the renewed one to the same ARN (aws acm import-certificate --certificate-arn ...)'],
  ['ResendValidationEmail', 'ebb issues no certificates, so there is nothing to validate'],
]);

async function importCertificate(p: JsonInput, c: CertificateCommands): Promise<JsonObject> {
  const arn = p.optionalString('CertificateArn');
  const chain = p.optionalBlob('CertificateChain', 2_097_152);
  const tags = optionalTags(p);
  const record = await c.importCertificate({
    ...(arn !== undefined && { certificateArn: arn }),
    certificatePem: p.requiredBlob('Certificate', 32_768),
    privateKeyPem: p.requiredBlob('PrivateKey', 5_120),
    ...(chain !== undefined && { chainPem: chain }),
    ...(tags !== undefined && { tags }),
  });
  return { CertificateArn: record.arn };
}

function getCertificate(p: JsonInput, c: CertificateCommands): JsonObject {
  const r = c.describeCertificate(p.requiredString('CertificateArn')).record;
  return { Certificate: r.certificatePem, ...(r.chainPem !== '' && { CertificateChain: r.chainPem }) };
}

const KEY_TYPES = ['RSA_1024', 'RSA_2048', 'RSA_3072', 'RSA_4096', 'EC_prime256v1', 'EC_secp384r1', 'EC_secp521r1'] as const;
/** ACM's default `Includes.keyTypes`: "Default filtering returns only RSA_1024 and RSA_2048 certificates". */
const DEFAULT_KEY_TYPES: readonly string[] = ['RSA_1024', 'RSA_2048'];
const STATUSES = ['PENDING_VALIDATION', 'ISSUED', 'INACTIVE', 'EXPIRED', 'VALIDATION_TIMED_OUT', 'REVOKED', 'FAILED'] as const;

/**
 * ListCertificates as ACM filters it: by status, by key type (RSA 1024 and 2048 only unless
 * `Includes.keyTypes` says otherwise, so an EC certificate is listed only when asked for), by extended
 * key usage; sorted by import time when asked; paged by MaxItems (1-1000) and an opaque NextToken.
 */
function listCertificates(p: JsonInput, c: CertificateCommands, now: number): JsonObject {
  const statuses = p.optionalEnumList('CertificateStatuses', STATUSES);
  const includes = p.optionalObject('Includes');
  const keyTypes = includes?.optionalEnumList('keyTypes', KEY_TYPES) ?? DEFAULT_KEY_TYPES;
  const usages = includes?.optionalStringList('extendedKeyUsage');
  if (includes?.has('keyUsage') === true) {
    throw ebbError('InvalidArgsException', 'ebb does not filter certificates by keyUsage; filter by keyTypes or extendedKeyUsage, or leave Includes.keyUsage out');
  }
  const sortBy = p.optionalEnum('SortBy', ['CREATED_AT'] as const);
  const sortOrder = p.optionalEnum('SortOrder', ['ASCENDING', 'DESCENDING'] as const);
  const maxItems = p.optionalInt('MaxItems', 1, 1000) ?? 1000;
  let views = c.listCertificates().filter((v) => {
    const r = v.record;
    if (statuses !== undefined && !statuses.includes(status(r, now))) return false;
    if (!keyTypes.includes(r.keyAlgorithm)) return false;
    if (usages !== undefined && !extendedKeyUsages(r).some((u) => usages.includes(u.Name))) return false;
    return true;
  });
  if (sortBy !== undefined) views = [...views].sort((a, b) => (a.record.importedAt - b.record.importedAt) * (sortOrder === 'DESCENDING' ? -1 : 1));
  const start = pageStart(p.optionalString('NextToken'));
  const page = views.slice(start, start + maxItems);
  const next = start + maxItems < views.length ? Buffer.from(`ebb-acm-${start + maxItems}`).toString('base64url') : undefined;
  return { CertificateSummaryList: page.map((v) => summary(v, now)), ...(next !== undefined && { NextToken: next }) };
}

function pageStart(token: string | undefined): number {
  if (token === undefined) return 0;
  const m = /^ebb-acm-(\d{1,9})$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (m === null) throw ebbError('InvalidArgsException', `The NextToken '${token}' is not one ebb gave out; list again without it`);
  return Number(m[1]);
}

function detail(v: CertificateView, now: number): JsonObject {
  const r = v.record;
  return {
    CertificateArn: r.arn,
    DomainName: r.domainName,
    SubjectAlternativeNames: [...r.subjectAlternativeNames],
    Serial: r.serial,
    Subject: subjectOf(r),
    Issuer: r.issuer,
    ImportedAt: seconds(r.importedAt),
    Status: status(r, now),
    NotBefore: seconds(r.notBefore),
    NotAfter: seconds(r.notAfter),
    KeyAlgorithm: r.keyAlgorithm,
    InUseBy: [...v.inUseBy],
    Type: 'IMPORTED',
    KeyUsages: [],
    ExtendedKeyUsages: extendedKeyUsages(r),
    RenewalEligibility: 'INELIGIBLE',
  };
}

function summary(v: CertificateView, now: number): JsonObject {
  const r = v.record;
  return {
    CertificateArn: r.arn,
    DomainName: r.domainName,
    SubjectAlternativeNameSummaries: [...r.subjectAlternativeNames],
    HasAdditionalSubjectAlternativeNames: false,
    Status: status(r, now),
    Type: 'IMPORTED',
    KeyAlgorithm: r.keyAlgorithm,
    KeyUsages: [],
    ExtendedKeyUsages: extendedKeyUsages(r).map((u) => u.Name),
    InUse: v.listeners.length > 0,
    RenewalEligibility: 'INELIGIBLE',
    NotBefore: seconds(r.notBefore),
    NotAfter: seconds(r.notAfter),
    ImportedAt: seconds(r.importedAt),
  };
}

/** ISSUED while valid (an imported certificate not valid yet is ISSUED in ACM too), EXPIRED after. */
function status(r: CertificateRecord, now: number): (typeof STATUSES)[number] {
  return validityAt(r, now) === 'expired' ? 'EXPIRED' : 'ISSUED';
}

const EKU_NAMES: ReadonlyMap<string, string> = new Map([
  ['1.3.6.1.5.5.7.3.1', 'TLS_WEB_SERVER_AUTHENTICATION'],
  ['1.3.6.1.5.5.7.3.2', 'TLS_WEB_CLIENT_AUTHENTICATION'],
  ['1.3.6.1.5.5.7.3.3', 'CODE_SIGNING'],
  ['1.3.6.1.5.5.7.3.4', 'EMAIL_PROTECTION'],
  ['1.3.6.1.5.5.7.3.5', 'IPSEC_END_SYSTEM'],
  ['1.3.6.1.5.5.7.3.6', 'IPSEC_TUNNEL'],
  ['1.3.6.1.5.5.7.3.7', 'IPSEC_USER'],
  ['1.3.6.1.5.5.7.3.8', 'TIME_STAMPING'],
  ['1.3.6.1.5.5.7.3.9', 'OCSP_SIGNING'],
]);

function extendedKeyUsages(r: CertificateRecord): Array<{ Name: string; OID: string }> {
  return certificateOf(r).keyUsage?.map((oid) => ({ Name: EKU_NAMES.get(oid) ?? 'CUSTOM', OID: oid })) ?? [];
}

function subjectOf(r: CertificateRecord): string {
  return certificateOf(r).subject.split('\n').filter((l) => l !== '').join(',');
}

function certificateOf(r: CertificateRecord): X509Certificate {
  return new X509Certificate(r.certificatePem);
}

function seconds(ms: number): number {
  return ms / 1000;
}

function tagsJson(tags: readonly Tag[]): JsonObject[] {
  return tags.map((t) => ({ Key: t.key, Value: t.value }));
}

/** `Tags` as ACM's TagList (1-50 of `{Key, Value?}`); `valueOptional`: RemoveTagsFromCertificate, where a missing Value matches any. */
function requiredTags(p: JsonInput, valueOptional: true): Array<{ key: string; value?: string }>;
function requiredTags(p: JsonInput): Tag[];
function requiredTags(p: JsonInput, valueOptional = false): Array<{ key: string; value?: string }> {
  const list = p.requiredObjectList('Tags');
  if (list.length === 0) throw ebbError('ValidationException', 'Tags must hold at least 1 tag');
  return list.map((t) => {
    const key = t.requiredString('Key');
    const value = t.optionalString('Value');
    return valueOptional ? { key, ...(value !== undefined && { value }) } : { key, value: value ?? '' };
  });
}

function optionalTags(p: JsonInput): Tag[] | undefined {
  return p.has('Tags') ? requiredTags(p) : undefined;
}
