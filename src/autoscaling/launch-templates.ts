/**
 * The launch templates: what Auto Scaling groups launch their instances from, kept as EC2 keeps them
 * (ec2 2016-11-15): numbered versions, a default, `$Latest` and `$Default`. Every command checks all
 * it would write first, commits it, and only then changes the catalog in memory, so a refused or
 * failed call changes nothing. The facade calls it inside its serial queue, one call at a time.
 */
import { randomBytes } from 'node:crypto';
import type { Tag } from '../domain/resources.ts';
import type { StoreOp } from '../domain/store-port.ts';
import type { Clock } from '../shared/clock.ts';
import { ebbError } from '../shared/errors.ts';
import type { CreateLaunchTemplateInput, CreateLaunchTemplateVersionInput } from './autoscaling-api.ts';
import {
  checkDescription,
  checkName,
  checkSelector,
  checkTags,
  highestVersion,
  MAX_TEMPLATES,
  MAX_VERSIONS,
  MAX_VERSIONS_PER_DELETE,
  normaliseData,
  overlayData,
  parseVersion,
  parseVersionNumber,
  resolveNumber,
  sameData,
  type TemplateSelector,
  templateNotFound,
  versionNotFound,
} from './launch-template-rules.ts';
import type { LaunchTemplateData, LaunchTemplateRecord, LaunchTemplateRef, LaunchTemplateVersionRecord, ResolvedTemplate } from './records.ts';

export interface LaunchTemplateCatalogDeps {
  /** Commits store operations atomically and durably (the facade's store). */
  commit(ops: readonly StoreOp[]): Promise<void>;
  clock: Clock;
  /** Names of the Auto Scaling groups that use the template (a delete is refused while any does). */
  usedBy(templateId: string): readonly string[];
}

/** A template as the configuration file declares it. */
export interface DeclaredLaunchTemplate {
  readonly name: string;
  readonly data: LaunchTemplateData;
  readonly versionDescription?: string;
}

/**
 * What `putDeclared` did: `created` the template; made a `new-version` the default because the data
 * differed from the default version's; `adopted` a template the API had made, whose default version
 * already had the declared data (it is the file's from now on); or nothing (`unchanged`).
 */
export interface DeclaredChange {
  readonly change: 'created' | 'new-version' | 'adopted' | 'unchanged';
  readonly template: LaunchTemplateRecord;
}

/** One version of one template, as the Describe and Create calls answer. */
export interface TemplateVersion {
  template: LaunchTemplateRecord;
  versionNumber: number;
}

export class LaunchTemplateCatalog {
  readonly #deps: LaunchTemplateCatalogDeps;
  /** By id, in creation order. */
  #byId = new Map<string, LaunchTemplateRecord>();
  #byName = new Map<string, LaunchTemplateRecord>();

  constructor(deps: LaunchTemplateCatalogDeps) {
    this.#deps = deps;
  }

  /** Loads the stored templates (replacing any in memory), oldest first. */
  restore(records: readonly LaunchTemplateRecord[]): void {
    const sorted = [...records].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.#byId = new Map(sorted.map((r) => [r.id, r]));
    this.#byName = new Map(sorted.map((r) => [r.name, r]));
  }

  /** Every template, oldest first. */
  all(): LaunchTemplateRecord[] {
    return [...this.#byId.values()];
  }

  /** The template a group's reference names, if there is one (no error for an unknown or malformed reference). */
  find(ref: LaunchTemplateRef | TemplateSelector): LaunchTemplateRecord | undefined {
    if (ref.id !== undefined) return this.#byId.get(ref.id);
    if (ref.name !== undefined) return this.#byName.get(ref.name);
    return undefined;
  }

  /**
   * The version a group launches an instance from. Errors are Auto Scaling's ValidationError, since
   * the group's call (or its launch) is what fails: an unknown template or version, or a version with
   * nothing to run.
   */
  resolve(ref: LaunchTemplateRef): ResolvedTemplate {
    if ((ref.id === undefined) === (ref.name === undefined)) {
      throw ebbError('ValidationError', 'A launch template is named by LaunchTemplateId or LaunchTemplateName: give exactly one of them');
    }
    const which = ref.id !== undefined ? `template ID ${ref.id}` : `template name ${ref.name ?? ''}`;
    const template = this.find(ref);
    if (template === undefined) {
      throw ebbError('ValidationError', `The specified launch template, with ${which}, does not exist. Create it first (aws ec2 create-launch-template).`);
    }
    const text = ref.version ?? '$Default';
    let version: number | undefined;
    try {
      version = resolveNumber(template, parseVersion(text));
    } catch {
      throw ebbError('ValidationError', `The launch template version '${text}' is not valid: use a version number, $Latest or $Default`);
    }
    const record = template.versions.find((v) => v.versionNumber === version);
    if (record === undefined) {
      throw ebbError(
        'ValidationError',
        `The specified launch template, with ${which}, version ${text} does not exist. List its versions with aws ec2 describe-launch-template-versions.`,
      );
    }
    if (record.data.userData === undefined && record.data.command === undefined) {
      throw ebbError(
        'ValidationError',
        `Launch template ${template.id} (${template.name}) version ${record.versionNumber} has nothing to run: it has neither UserData nor a command. ` +
          'Create a version with UserData (a base64 script) or, in the configuration file, a command, and make it the default.',
      );
    }
    return { id: template.id, name: template.name, version: record.versionNumber, data: record.data };
  }

  // ---------------------------------------------------------------- commands

  async create(input: CreateLaunchTemplateInput): Promise<LaunchTemplateRecord> {
    return this.#createTemplate(input.name, input.data, input.versionDescription, input.tags ?? [], 'api');
  }

  async createVersion(input: CreateLaunchTemplateVersionInput): Promise<TemplateVersion> {
    const template = this.#get(input.template);
    checkDescription(input.versionDescription);
    let data = input.data;
    if (input.sourceVersion !== undefined) {
      const source = this.#version(template, input.sourceVersion);
      data = overlayData(source.data, input.data);
    }
    const version = this.#newVersion(template, normaliseData(data), input.versionDescription);
    const next: LaunchTemplateRecord = { ...template, latestVersion: version.versionNumber, versions: [...template.versions, version] };
    await this.#put(next, template);
    return { template: next, versionNumber: version.versionNumber };
  }

  async modify(selector: TemplateSelector, defaultVersion: string): Promise<LaunchTemplateRecord> {
    const template = this.#get(selector);
    const version = this.#version(template, defaultVersion);
    if (version.versionNumber === template.defaultVersion) return template;
    const next: LaunchTemplateRecord = { ...template, defaultVersion: version.versionNumber };
    await this.#put(next, template);
    return next;
  }

  async delete(selector: TemplateSelector): Promise<LaunchTemplateRecord> {
    const template = this.#get(selector);
    const groups = this.#deps.usedBy(template.id);
    if (groups.length > 0) {
      throw ebbError(
        'OperationNotPermitted',
        `Launch template ${template.id} (${template.name}) is used by the Auto Scaling group${groups.length > 1 ? 's' : ''} ${groups.join(', ')}: ` +
          'delete those groups or point them at another template (aws autoscaling update-auto-scaling-group --launch-template) first',
      );
    }
    await this.#deps.commit([{ op: 'delete', kind: 'launchTemplate', key: template.id }]);
    this.#byId.delete(template.id);
    this.#byName.delete(template.name);
    return template;
  }

  /**
   * Deletes versions by number. As on EC2 each version succeeds or fails on its own (the default
   * version, one that does not exist, a non-number); the call fails whole only for an unknown
   * template or a malformed request.
   */
  async deleteVersions(
    selector: TemplateSelector,
    versions: readonly string[],
  ): Promise<{ deleted: number[]; failed: Array<{ version: string; code: string; message: string }> }> {
    const template = this.#get(selector);
    if (versions.length === 0) {
      throw ebbError('MissingParameter', 'The request must name the versions to delete (LaunchTemplateVersion.N)');
    }
    if (versions.length > MAX_VERSIONS_PER_DELETE) {
      throw ebbError(
        'InvalidParameterValue',
        `At most ${MAX_VERSIONS_PER_DELETE} launch template versions can be deleted in one request; this names ${versions.length}. ` +
          'Split the request, or delete the whole template with delete-launch-template',
      );
    }
    const deleted: number[] = [];
    const failed: Array<{ version: string; code: string; message: string }> = [];
    const existing = new Set(template.versions.map((v) => v.versionNumber));
    for (const text of versions) {
      const n = parseVersionNumber(text);
      if (n === undefined) {
        failed.push({ version: text, code: 'launchTemplateVersionDoesNotExist', message: `'${text}' is not a version number: versions are deleted by number` });
      } else if (n === template.defaultVersion) {
        failed.push({
          version: text,
          code: 'unexpectedError',
          message:
            `Version ${n} is the default version of ${template.id} and cannot be deleted: make another version the default ` +
            '(modify-launch-template --default-version) first, or delete the whole template with delete-launch-template',
        });
      } else if (!existing.has(n) || deleted.includes(n)) {
        failed.push({ version: text, code: 'launchTemplateVersionDoesNotExist', message: `Version ${n} of ${template.id} does not exist` });
      } else {
        deleted.push(n);
      }
    }
    if (deleted.length > 0) {
      const next: LaunchTemplateRecord = { ...template, versions: template.versions.filter((v) => !deleted.includes(v.versionNumber)) };
      await this.#put(next, template);
    }
    return { deleted, failed };
  }

  /**
   * A template the configuration file declares: created when missing; when its data differs from the
   * default version's, a new version with the declared data is made the default. Either way the
   * template is the file's (`source: 'config'`).
   */
  async putDeclared(declared: DeclaredLaunchTemplate): Promise<DeclaredChange> {
    const current = this.#byName.get(declared.name);
    if (current === undefined) {
      const template = await this.#createTemplate(declared.name, declared.data, declared.versionDescription, [], 'config');
      return { change: 'created', template };
    }
    const data = normaliseData(declared.data);
    const defaultVersion = current.versions.find((v) => v.versionNumber === current.defaultVersion);
    if (defaultVersion !== undefined && sameData(defaultVersion.data, data)) {
      if (current.source === 'config') return { change: 'unchanged', template: current };
      const adopted: LaunchTemplateRecord = { ...current, source: 'config' };
      await this.#put(adopted, current);
      return { change: 'adopted', template: adopted };
    }
    checkDescription(declared.versionDescription);
    const version = this.#newVersion(current, data, declared.versionDescription);
    const next: LaunchTemplateRecord = {
      ...current,
      defaultVersion: version.versionNumber,
      latestVersion: version.versionNumber,
      versions: [...current.versions, version],
      source: 'config',
    };
    await this.#put(next, current);
    return { change: 'new-version', template: next };
  }

  // ---------------------------------------------------------------- queries

  /** No filter: every template. An id or name that names none is EC2's NotFound error. */
  describe(filter: { ids?: readonly string[]; names?: readonly string[] } = {}): LaunchTemplateRecord[] {
    const ids = filter.ids ?? [];
    const names = filter.names ?? [];
    if (ids.length === 0 && names.length === 0) return this.all();
    const wanted = new Set<LaunchTemplateRecord>();
    for (const id of ids) wanted.add(this.#get({ id }));
    for (const name of names) wanted.add(this.#get({ name }));
    return this.all().filter((t) => wanted.has(t));
  }

  /**
   * Versions of one template: those named (numbers, `$Latest`, `$Default`, each once, in the order
   * given), or every version, newest first. Naming no template describes the `$Latest` and/or
   * `$Default` version of every template, as EC2 does.
   */
  describeVersions(selector: TemplateSelector, versions: readonly string[] = []): TemplateVersion[] {
    checkSelector(selector, false);
    const specs = versions.map((v) => parseVersion(v));
    if (selector.id === undefined && selector.name === undefined) {
      if (specs.length === 0 || specs.some((s) => typeof s === 'number')) {
        throw ebbError(
          'MissingParameter',
          'Name a launch template (LaunchTemplateId or LaunchTemplateName), or ask only for $Latest and $Default to describe those versions of every template',
        );
      }
      const out: TemplateVersion[] = [];
      for (const template of this.all()) {
        const numbers = new Set(specs.map((s) => resolveNumber(template, s)).filter((n): n is number => n !== undefined));
        for (const n of [...numbers].sort((a, b) => b - a)) out.push({ template, versionNumber: n });
      }
      return out;
    }
    const template = this.#get(selector);
    if (specs.length === 0) {
      return template.versions.map((v) => v.versionNumber).sort((a, b) => b - a).map((versionNumber) => ({ template, versionNumber }));
    }
    const seen = new Set<number>();
    const out: TemplateVersion[] = [];
    specs.forEach((spec, i) => {
      const n = resolveNumber(template, spec);
      if (n === undefined) throw versionNotFound(template, versions[i] ?? String(spec));
      if (!seen.has(n)) out.push({ template, versionNumber: n });
      seen.add(n);
    });
    return out;
  }

  // ---------------------------------------------------------------- inside

  async #createTemplate(
    name: string,
    rawData: LaunchTemplateData,
    description: string | undefined,
    rawTags: readonly Tag[],
    source: 'api' | 'config',
  ): Promise<LaunchTemplateRecord> {
    checkName(name);
    if (this.#byName.has(name)) {
      throw ebbError(
        'InvalidLaunchTemplateName.AlreadyExistsException',
        `Launch template name already in use: ${name} is ${this.#byName.get(name)?.id ?? ''}. Add a version to it with create-launch-template-version, or choose another name`,
      );
    }
    if (this.#byId.size >= MAX_TEMPLATES) {
      throw ebbError('InvalidParameterValue', `ebb keeps at most ${MAX_TEMPLATES} launch templates and has that many: delete templates no group uses first`);
    }
    checkDescription(description);
    const data = normaliseData(rawData);
    const tags = checkTags(rawTags, 'launch template');
    const now = this.#deps.clock.wallTime();
    const version: LaunchTemplateVersionRecord = {
      versionNumber: 1,
      ...(description === undefined ? {} : { versionDescription: description }),
      createdAt: now,
      data,
    };
    const template: LaunchTemplateRecord = {
      id: this.#newId(),
      name,
      createdAt: now,
      defaultVersion: 1,
      latestVersion: 1,
      versions: [version],
      tags,
      source,
    };
    await this.#put(template, undefined);
    return template;
  }

  /**
   * The next version of a template. Numbers are never reused (EC2: "You cannot replace the version
   * number after you delete it"), so they count on from `latestVersion`, the highest ever made, and an
   * instance launched from a deleted version is never taken for one launched from a later one.
   */
  #newVersion(template: LaunchTemplateRecord, data: LaunchTemplateData, description: string | undefined): LaunchTemplateVersionRecord {
    if (template.versions.length >= MAX_VERSIONS) {
      throw ebbError(
        'InvalidParameterValue',
        `Launch template ${template.id} (${template.name}) has ${MAX_VERSIONS} versions, the most one template can have: ` +
          'delete old versions (delete-launch-template-versions) first',
      );
    }
    return {
      versionNumber: Math.max(template.latestVersion, highestVersion(template)) + 1,
      ...(description === undefined ? {} : { versionDescription: description }),
      createdAt: this.#deps.clock.wallTime(),
      data,
    };
  }

  /** The template a call names; EC2's errors when it names none, both, or one that does not exist. */
  #get(selector: TemplateSelector): LaunchTemplateRecord {
    checkSelector(selector);
    const template = this.find(selector);
    if (template === undefined) throw templateNotFound(selector);
    return template;
  }

  /** The version a string names on a template; InvalidLaunchTemplateId.VersionNotFound when it names none. */
  #version(template: LaunchTemplateRecord, text: string): LaunchTemplateVersionRecord {
    const n = resolveNumber(template, parseVersion(text));
    const version = template.versions.find((v) => v.versionNumber === n);
    if (version === undefined) throw versionNotFound(template, text);
    return version;
  }

  /** Commits the record, then (only once it is durable) puts it in memory in place of `previous`. */
  async #put(next: LaunchTemplateRecord, previous: LaunchTemplateRecord | undefined): Promise<void> {
    await this.#deps.commit([{ op: 'put', kind: 'launchTemplate', key: next.id, value: next }]);
    if (previous !== undefined && previous.name !== next.name) this.#byName.delete(previous.name);
    this.#byId.set(next.id, next);
    this.#byName.set(next.name, next);
  }

  #newId(): string {
    for (;;) {
      const id = `lt-${randomBytes(9).toString('hex').slice(0, 17)}`;
      if (!this.#byId.has(id)) return id;
    }
  }
}
