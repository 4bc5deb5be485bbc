/**
 * EC2's launch template actions (ec2 2016-11-15), each translated into a call of Auto Scaling's
 * facade. Outputs use the model's `locationName`s, the names EC2 answers with.
 *
 * Of RequestLaunchTemplateData ebb uses UserData (what an instance runs) and the `instance`
 * TagSpecifications (the tags each instance gets); the other members (ImageId, InstanceType, …)
 * describe a virtual machine ebb does not have, and are accepted and ignored, as unknown parameters are.
 */
import type { AutoScalingApi } from '../../autoscaling/autoscaling-api.ts';
import type { LaunchTemplateData, LaunchTemplateRecord } from '../../autoscaling/records.ts';
import type { Tag } from '../../domain/resources.ts';
import { ebbError } from '../../shared/errors.ts';
import type { ActionHandler, ActionTable } from '../handler.ts';
import type { XmlObject } from '../xml.ts';
import { Ec2Params, invalidValue } from './ec2-params.ts';
import { applyFilters, readFilters } from './filters.ts';
import { autoscalingOf, refuseDryRun } from './context.ts';

/** Resource types a launch template's data may tag (EC2 takes these four); ebb has instances only. */
const DATA_TAG_TYPES = ['instance', 'volume', 'network-interface', 'spot-instances-request'];

function readTags(p: Ec2Params): Tag[] {
  return (p.structList('Tag') ?? []).map((t) => ({ key: t.str('Key') ?? '', value: t.str('Value') ?? '' }));
}

/** `LaunchTemplateData.*`: UserData and the instances' tags. Absent (or `{}`, which botocore does not send): no data. */
function readData(p: Ec2Params | undefined): LaunchTemplateData {
  if (p === undefined) return {};
  const userData = p.str('UserData');
  const instanceTags: Tag[] = [];
  for (const spec of p.structList('TagSpecification') ?? []) {
    const type = spec.str('ResourceType') ?? '';
    if (!DATA_TAG_TYPES.includes(type)) {
      throw invalidValue(spec.path('ResourceType'), type, `one of ${DATA_TAG_TYPES.join(', ')} (ebb uses the instance tags)`);
    }
    if (type === 'instance') instanceTags.push(...readTags(spec));
  }
  return {
    ...(userData === undefined ? {} : { userData }),
    ...(instanceTags.length === 0 ? {} : { instanceTags }),
  };
}

/** CreateLaunchTemplate's own `TagSpecification.N`: tags on the template, so only `launch-template`. */
function readTemplateTags(p: Ec2Params): Tag[] {
  const tags: Tag[] = [];
  for (const spec of p.structList('TagSpecification') ?? []) {
    const type = spec.str('ResourceType') ?? '';
    if (type !== 'launch-template') throw invalidValue(spec.path('ResourceType'), type, "'launch-template', the only resource CreateLaunchTemplate tags");
    tags.push(...readTags(spec));
  }
  return tags;
}

/** LaunchTemplateId or LaunchTemplateName, as given (the facade checks that exactly one is). */
function readSelector(p: Ec2Params): { id?: string; name?: string } {
  const id = p.str('LaunchTemplateId');
  const name = p.str('LaunchTemplateName');
  return { ...(id === undefined ? {} : { id }), ...(name === undefined ? {} : { name }) };
}

function tagSet(tags: readonly Tag[]): XmlObject[] | undefined {
  return tags.length === 0 ? undefined : tags.map((t) => ({ key: t.key, value: t.value }));
}

/** Who made it, as EC2 names the caller; ebb has one account and its root. */
function createdBy(as: AutoScalingApi): string {
  return `arn:aws:iam::${as.accountId}:root`;
}

function templateXml(t: LaunchTemplateRecord, as: AutoScalingApi): XmlObject {
  return {
    launchTemplateId: t.id,
    launchTemplateName: t.name,
    createTime: new Date(t.createdAt),
    createdBy: createdBy(as),
    defaultVersionNumber: t.defaultVersion,
    latestVersionNumber: t.latestVersion,
    tagSet: tagSet(t.tags),
  };
}

function dataXml(data: LaunchTemplateData): XmlObject {
  const tags = data.instanceTags ?? [];
  return {
    userData: data.userData,
    tagSpecificationSet: tags.length === 0 ? undefined : [{ resourceType: 'instance', tagSet: tagSet(tags) }],
  };
}

function versionXml(t: LaunchTemplateRecord, versionNumber: number, as: AutoScalingApi): XmlObject {
  const v = t.versions.find((x) => x.versionNumber === versionNumber);
  return {
    launchTemplateId: t.id,
    launchTemplateName: t.name,
    versionNumber,
    versionDescription: v?.versionDescription,
    createTime: new Date(v?.createdAt ?? t.createdAt),
    createdBy: createdBy(as),
    defaultVersion: t.defaultVersion === versionNumber,
    launchTemplateData: dataXml(v?.data ?? {}),
  };
}

/** One EC2 action over the facade, with DryRun refused and the parameters read the EC2 way. */
function action(run: (p: Ec2Params, as: AutoScalingApi) => Promise<XmlObject> | XmlObject): ActionHandler {
  return async (params, ctx) => {
    const p = new Ec2Params(params);
    const as = autoscalingOf(ctx);
    refuseDryRun(p);
    return run(p, as);
  };
}

export const launchTemplateActions: ActionTable = {
  CreateLaunchTemplate: action(async (p, as) => {
    const description = p.str('VersionDescription');
    const template = await as.createLaunchTemplate({
      name: p.requiredStr('LaunchTemplateName'),
      data: readData(p.struct('LaunchTemplateData')),
      tags: readTemplateTags(p),
      ...(description === undefined ? {} : { versionDescription: description }),
    });
    return { launchTemplate: templateXml(template, as) };
  }),

  CreateLaunchTemplateVersion: action(async (p, as) => {
    const description = p.str('VersionDescription');
    const source = p.str('SourceVersion');
    const { template, versionNumber } = await as.createLaunchTemplateVersion({
      template: readSelector(p),
      data: readData(p.struct('LaunchTemplateData')),
      ...(description === undefined ? {} : { versionDescription: description }),
      ...(source === undefined ? {} : { sourceVersion: source }),
    });
    return { launchTemplateVersion: versionXml(template, versionNumber, as) };
  }),

  DescribeLaunchTemplates: action((p, as) => {
    p.int('MaxResults', { min: 1, max: 200 });
    p.str('NextToken');
    const ids = p.list('LaunchTemplateId');
    const names = p.list('LaunchTemplateName');
    const templates = as.describeLaunchTemplates({ ...(ids === undefined ? {} : { ids }), ...(names === undefined ? {} : { names }) });
    const kept = applyFilters(
      templates,
      readFilters(p),
      {
        'launch-template-name': (t) => [t.name],
        'launch-template-id': (t) => [t.id],
        'create-time': (t) => [new Date(t.createdAt).toISOString()],
      },
      (t) => t.tags,
    );
    return { launchTemplates: kept.map((t) => templateXml(t, as)) };
  }),

  DescribeLaunchTemplateVersions: action((p, as) => {
    p.int('MaxResults', { min: 1, max: 200 });
    p.str('NextToken');
    p.bool('ResolveAlias');
    const min = versionBound(p, 'MinVersion');
    const max = versionBound(p, 'MaxVersion');
    const found = as.describeLaunchTemplateVersions(readSelector(p), p.list('LaunchTemplateVersion') ?? []);
    const inRange = found.filter((v) => v.versionNumber >= min && v.versionNumber <= max);
    const kept = applyFilters(
      inRange,
      readFilters(p),
      {
        'is-default-version': (v) => [String(v.template.defaultVersion === v.versionNumber)],
        'create-time': (v) => [new Date(v.template.versions.find((x) => x.versionNumber === v.versionNumber)?.createdAt ?? 0).toISOString()],
      },
      () => [],
    );
    return { launchTemplateVersionSet: kept.map((v) => versionXml(v.template, v.versionNumber, as)) };
  }),

  ModifyLaunchTemplate: action(async (p, as) => {
    const selector = readSelector(p);
    const version = p.str('SetDefaultVersion');
    // Without SetDefaultVersion there is nothing to change: answer with the template as it is.
    const template = version === undefined ? as.describeLaunchTemplates(selectorFilter(selector))[0] : await as.modifyLaunchTemplate(selector, version);
    if (template === undefined) throw ebbError('MissingParameter', 'The request must name a launch template: give either LaunchTemplateId or LaunchTemplateName');
    return { launchTemplate: templateXml(template, as) };
  }),

  DeleteLaunchTemplate: action(async (p, as) => {
    const template = await as.deleteLaunchTemplate(readSelector(p));
    return { launchTemplate: templateXml(template, as) };
  }),

  DeleteLaunchTemplateVersions: action(async (p, as) => {
    const selector = readSelector(p);
    const versions = p.list('LaunchTemplateVersion') ?? [];
    const { deleted, failed } = await as.deleteLaunchTemplateVersions(selector, versions);
    // The template as the answer names it (it still exists: only versions were deleted).
    const t = as.describeLaunchTemplates(selectorFilter(selector))[0];
    const names = { launchTemplateId: t?.id ?? selector.id, launchTemplateName: t?.name ?? selector.name };
    return {
      successfullyDeletedLaunchTemplateVersionSet: deleted.map((n) => ({ ...names, versionNumber: n })),
      unsuccessfullyDeletedLaunchTemplateVersionSet: failed.map((f) => ({
        ...names,
        versionNumber: /^\d{1,15}$/.test(f.version) ? Number(f.version) : undefined,
        responseError: { code: f.code, message: f.message },
      })),
    };
  }),
};

/** The template a selector names, as describeLaunchTemplates' filter (it refuses both or neither being wrong in its own way). */
function selectorFilter(s: { id?: string; name?: string }): { ids?: string[]; names?: string[] } {
  if (s.id !== undefined && s.name !== undefined) {
    throw ebbError('InvalidParameterCombination', 'Specify either the launch template ID or the launch template name, not both');
  }
  if (s.id !== undefined) return { ids: [s.id] };
  if (s.name !== undefined) return { names: [s.name] };
  throw ebbError('MissingParameter', 'The request must name a launch template: give either LaunchTemplateId or LaunchTemplateName');
}

/** MinVersion / MaxVersion: a version number (the bounds are inclusive); absent, no bound. */
function versionBound(p: Ec2Params, name: 'MinVersion' | 'MaxVersion'): number {
  const text = p.str(name);
  if (text === undefined) return name === 'MinVersion' ? 0 : Number.MAX_SAFE_INTEGER;
  if (!/^\d{1,9}$/.test(text)) throw invalidValue(p.path(name), text, 'a version number');
  return Number(text);
}
