/**
 * What a launch template, its name, id, versions and data may be, as EC2 has it (ec2 2016-11-15:
 * shapes `LaunchTemplateName`, `VersionDescription`, `RequestLaunchTemplateData`), and the errors EC2
 * answers with. Pure functions: the catalog checks everything a call would write before it commits.
 */
import type { Tag } from '../domain/resources.ts';
import { ebbError } from '../shared/errors.ts';
import type { LaunchTemplateData, LaunchTemplateRecord } from './records.ts';

/** Templates one ebb keeps (EC2's default quota per region is 5000). */
export const MAX_TEMPLATES = 5000;
/** Versions one template keeps (EC2's limit per template). */
export const MAX_VERSIONS = 5000;
/** EC2: "You can delete up to 200 launch template versions in a single request." */
export const MAX_VERSIONS_PER_DELETE = 200;
/** EC2 limits user data to 16 KB before it is base64-encoded. */
export const MAX_USER_DATA_BYTES = 16 * 1024;
const MAX_DESCRIPTION = 255;
const MAX_TAGS = 50;
const MAX_TAG_KEY = 128;
const MAX_TAG_VALUE = 256;
/** Prefixes EC2 keeps for AWS (`aws:`) and ebb keeps for itself (`ebb:`, the tags it sets on instances). */
const RESERVED_TAG_PREFIXES = ['aws:', 'ebb:'];

const NAME_PATTERN = /^[a-zA-Z0-9().\-/_]{3,128}$/;
const ID_PATTERN = /^lt-[0-9a-f]{17}$/;
const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;
const VERSION_NUMBER = /^[1-9]\d{0,8}$/;

/** Which template a call names: by id or by name, never both. */
export interface TemplateSelector {
  readonly id?: string;
  readonly name?: string;
}

export function checkName(name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw ebbError(
      'InvalidLaunchTemplateName.MalformedException',
      `The launch template name '${shown(name)}' is not valid: a launch template name must be between 3 and 128 characters, ` +
        'and may contain letters, numbers, and the following characters: - ( ) . / _',
    );
  }
}

export function checkId(id: string): void {
  if (!ID_PATTERN.test(id)) {
    throw ebbError(
      'InvalidLaunchTemplateId.Malformed',
      `The launch template ID '${shown(id)}' is malformed: ids are 'lt-' and 17 hexadecimal digits, as describe-launch-templates lists them`,
    );
  }
}

/**
 * Checks that a call names a template exactly once. `required` false: naming none is allowed (the
 * caller decides what that means).
 */
export function checkSelector(t: TemplateSelector, required = true): void {
  if (t.id !== undefined && t.name !== undefined) {
    throw ebbError('InvalidParameterCombination', 'Specify either the launch template ID or the launch template name, not both');
  }
  if (t.id === undefined && t.name === undefined && required) {
    throw ebbError('MissingParameter', 'The request must name a launch template: give either LaunchTemplateId or LaunchTemplateName');
  }
  if (t.id !== undefined) checkId(t.id);
}

export function templateNotFound(t: TemplateSelector): Error {
  if (t.id !== undefined) {
    return ebbError(
      'InvalidLaunchTemplateId.NotFound',
      `The specified launch template, with template ID ${t.id}, does not exist. List the templates with describe-launch-templates.`,
    );
  }
  return ebbError(
    'InvalidLaunchTemplateName.NotFoundException',
    `The specified launch template, with template name ${t.name ?? ''}, does not exist. List the templates with describe-launch-templates.`,
  );
}

export function versionNotFound(template: LaunchTemplateRecord, version: string): Error {
  return ebbError(
    'InvalidLaunchTemplateId.VersionNotFound',
    `Could not find launch template version ${version} of ${template.id} (${template.name}); ` +
      'list its versions with describe-launch-template-versions.',
  );
}

/** What a version string names: a number, or one of the two aliases. */
export type VersionSpec = number | '$Latest' | '$Default';

/** Parses `$Latest`, `$Default` or a version number; anything else is InvalidParameterValue. */
export function parseVersion(text: string, parameter = 'version'): VersionSpec {
  if (text === '$Latest' || text === '$Default') return text;
  if (VERSION_NUMBER.test(text)) return Number(text);
  throw ebbError(
    'InvalidParameterValue',
    `The ${parameter} '${shown(text)}' is not a launch template version: use a version number, $Latest or $Default`,
  );
}

/** A version number, for the calls that take only numbers (deleting versions). */
export function parseVersionNumber(text: string): number | undefined {
  return VERSION_NUMBER.test(text) ? Number(text) : undefined;
}

/** The highest version a template still has (what `$Latest` resolves to). */
export function highestVersion(t: LaunchTemplateRecord): number {
  let high = 0;
  for (const v of t.versions) if (v.versionNumber > high) high = v.versionNumber;
  return high;
}

/** The number a version string names on this template, or undefined when it names none it has. */
export function resolveNumber(t: LaunchTemplateRecord, spec: VersionSpec): number | undefined {
  const n = spec === '$Latest' ? highestVersion(t) : spec === '$Default' ? t.defaultVersion : spec;
  return t.versions.some((v) => v.versionNumber === n) ? n : undefined;
}

export function checkDescription(description: string | undefined): void {
  if (description !== undefined && description.length > MAX_DESCRIPTION) {
    throw ebbError('InvalidParameterValue', `The version description is ${description.length} characters long; it may have at most ${MAX_DESCRIPTION}`);
  }
}

/**
 * Strict base64 (only its alphabet, whole quads, correct padding), decoding to at most 16 KiB; EC2
 * stores the text as given and so does ebb.
 */
export function checkUserData(userData: string): void {
  const malformed = (why: string): Error =>
    ebbError('InvalidUserData.Malformed', `Invalid BASE64 encoding of user data: ${why}. Encode the script with base64 (e.g. base64 -w0 script.sh)`);
  if (userData.length % 4 !== 0 || !BASE64_PATTERN.test(userData)) {
    throw malformed('only A-Z, a-z, 0-9, + and / in groups of four, padded with =, are allowed');
  }
  const bytes = Buffer.from(userData, 'base64');
  // Buffer.from ignores what follows padding; a strict decoder must not, so re-encode and compare.
  if (bytes.toString('base64') !== userData) throw malformed('the padding does not match the data');
  if (bytes.length > MAX_USER_DATA_BYTES) {
    throw ebbError(
      'InvalidUserData.Malformed',
      `User data is limited to ${MAX_USER_DATA_BYTES} bytes before it is base64-encoded; this is ${bytes.length}. ` +
        'Keep the script short and have it fetch or exec the rest',
    );
  }
}

/** EC2's tag rules: keys 1-128 characters, values up to 256, at most 50, no reserved prefix, no key twice. */
export function checkTags(tags: readonly Tag[], what: string): Tag[] {
  const seen = new Set<string>();
  for (const t of tags) {
    if (t.key.length < 1 || t.key.length > MAX_TAG_KEY) {
      throw ebbError('InvalidParameterValue', `Tag key '${shown(t.key)}' on the ${what} must be 1-${MAX_TAG_KEY} characters long`);
    }
    const prefix = RESERVED_TAG_PREFIXES.find((p) => t.key.toLowerCase().startsWith(p));
    if (prefix !== undefined) {
      throw ebbError('InvalidParameterValue', `Tag key '${shown(t.key)}' on the ${what} is reserved: keys starting with '${prefix}' are set by ebb only`);
    }
    if (t.value.length > MAX_TAG_VALUE) {
      throw ebbError('InvalidParameterValue', `The value of tag '${shown(t.key)}' on the ${what} must be at most ${MAX_TAG_VALUE} characters long`);
    }
    if (seen.has(t.key)) throw ebbError('InvalidParameterValue', `Tag key '${shown(t.key)}' is given twice for the ${what}`);
    seen.add(t.key);
  }
  if (tags.length > MAX_TAGS) throw ebbError('InvalidParameterValue', `The ${what} has ${tags.length} tags; at most ${MAX_TAGS} are allowed`);
  return tags.map((t) => ({ key: t.key, value: t.value }));
}

/**
 * Checks launch template data and returns a plain copy fit for the store: only the keys that are set
 * (no `undefined`), an empty UserData left out. A script (`userData`) and a command are two ways to
 * say what runs, so one version has at most one of them.
 */
export function normaliseData(data: LaunchTemplateData): LaunchTemplateData {
  const out: {
    userData?: string;
    command?: string[];
    environment?: Record<string, string>;
    workingDirectory?: string;
    stopTimeoutSeconds?: number;
    instanceTags?: Tag[];
  } = {};
  if (data.userData !== undefined && data.userData !== '') {
    checkUserData(data.userData);
    out.userData = data.userData;
  }
  if (data.command !== undefined) {
    const command = [...data.command];
    if (command.length === 0 || command[0] === '' || command.some((a) => typeof a !== 'string' || a.includes('\0'))) {
      throw ebbError('InvalidParameterValue', 'A launch template command must be a program followed by its arguments: a non-empty list of strings without NUL');
    }
    out.command = command;
  }
  if (out.userData !== undefined && out.command !== undefined) {
    throw ebbError('InvalidParameterCombination', 'A launch template version runs either UserData (a script) or a command, not both: keep one');
  }
  if (data.environment !== undefined) {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(data.environment)) {
      if (key === '' || key.includes('=') || key.includes('\0') || typeof value !== 'string' || value.includes('\0')) {
        throw ebbError('InvalidParameterValue', `The environment variable '${shown(key)}' is not valid: names are non-empty without '=' or NUL, values are strings without NUL`);
      }
      env[key] = value;
    }
    out.environment = env;
  }
  if (data.workingDirectory !== undefined) {
    if (data.workingDirectory === '' || data.workingDirectory.includes('\0')) {
      throw ebbError('InvalidParameterValue', 'A launch template working directory must be a non-empty path');
    }
    out.workingDirectory = data.workingDirectory;
  }
  if (data.stopTimeoutSeconds !== undefined) {
    const s = data.stopTimeoutSeconds;
    if (!Number.isInteger(s) || s < 0 || s > 86_400) {
      throw ebbError('InvalidParameterValue', `The stop timeout ${String(s)} is not valid: give whole seconds from 0 to 86400`);
    }
    out.stopTimeoutSeconds = s;
  }
  if (data.instanceTags !== undefined && data.instanceTags.length > 0) {
    out.instanceTags = checkTags(data.instanceTags, 'instances launched from the template');
  }
  return out;
}

/**
 * A version's data started from `base` and overlaid with `overlay`, as CreateLaunchTemplateVersion's
 * SourceVersion does: each field given replaces the source's. Setting UserData drops the source's
 * command and the other way round, since a version runs one of them.
 */
export function overlayData(base: LaunchTemplateData, overlay: LaunchTemplateData): LaunchTemplateData {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overlay)) if (value !== undefined) merged[key] = value;
  if (overlay.userData !== undefined && overlay.command === undefined) delete merged['command'];
  if (overlay.command !== undefined && overlay.userData === undefined) delete merged['userData'];
  return merged as LaunchTemplateData;
}

/** Whether two normalised data are the same (key order aside). */
export function sameData(a: LaunchTemplateData, b: LaunchTemplateData): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A value as a message shows it: cut at 100 characters. */
function shown(text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}...` : text;
}
