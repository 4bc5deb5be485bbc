import type { AutoScalingApi, UpdateGroupInput } from '../../autoscaling/autoscaling-api.ts';
import type { AutoScalingGroupRecord, AutoScalingInstanceRecord } from '../../autoscaling/records.ts';
import type { Tag } from '../../domain/resources.ts';
import { ebbError } from '../../shared/errors.ts';
import type { XmlObject } from '../xml.ts';
import type { AsParams } from './params.ts';
import {
  type AsTable,
  checkGroupExtras,
  GROUP_NAME,
  groupName,
  INSTANCE_ID,
  readAttachments,
  readGroupTags,
  readHealthCheckType,
  readHookSpecs,
  readTemplate,
  readTerminationPolicies,
} from './read.ts';
import { autoScalingInstanceXml, groupXml, isCurrent, tagXml } from './shapes.ts';

/** Auto Scaling group actions: create, update, delete, describe, capacity and tags. */

/** The members Create and Update share, as the facade takes them (only those given). */
function readGroupSettings(p: AsParams): Omit<UpdateGroupInput, 'name'> {
  checkGroupExtras(p);
  const launchTemplate = readTemplate(p, 'LaunchTemplate');
  const minSize = p.int('MinSize', { min: 0 });
  const maxSize = p.int('MaxSize', { min: 0 });
  const desiredCapacity = p.int('DesiredCapacity', { min: 0 });
  const healthCheckType = readHealthCheckType(p);
  const grace = p.int('HealthCheckGracePeriod', { min: 0 });
  const warmup = p.int('DefaultInstanceWarmup', { min: -1 });
  const terminationPolicies = readTerminationPolicies(p);
  const protect = p.bool('NewInstancesProtectedFromScaleIn');
  return {
    ...(launchTemplate !== undefined ? { launchTemplate } : {}),
    ...(minSize !== undefined ? { minSize } : {}),
    ...(maxSize !== undefined ? { maxSize } : {}),
    ...(desiredCapacity !== undefined ? { desiredCapacity } : {}),
    ...(healthCheckType !== undefined ? { healthCheckType } : {}),
    ...(grace !== undefined ? { healthCheckGracePeriodSeconds: grace } : {}),
    ...(warmup !== undefined ? { defaultInstanceWarmupSeconds: warmup } : {}),
    ...(terminationPolicies !== undefined ? { terminationPolicies } : {}),
    ...(protect !== undefined ? { newInstancesProtectedFromScaleIn: protect } : {}),
  };
}

/** Tags given with a group are for that group: a ResourceId naming another is refused. */
function tagsForGroup(p: AsParams, name: string): Tag[] | undefined {
  return readGroupTags(p, false)?.map(({ group, tag }) => {
    if (group !== undefined && group !== name) {
      throw ebbError('ValidationError', `Tag '${tag.key}' names the group '${group}' in ResourceId; tags given here are for the group '${name}'`);
    }
    return tag;
  });
}

/**
 * DescribeAutoScalingGroups and DescribeTags filters: `tag:<key>` (that key with one of the values),
 * `tag-key`, `tag-value`, and for DescribeTags `auto-scaling-group`, `key`, `value`. Within a filter
 * any value matches; all filters must.
 */
function readFilters(p: AsParams, names: readonly string[]): Array<{ name: string; values: string[] }> {
  return (p.structList('Filters') ?? []).map((f) => {
    const name = f.requiredStr('Name');
    if (!names.includes(name) && !(names.includes('tag:') && name.startsWith('tag:'))) {
      throw ebbError('ValidationError', `Filter '${name}' is not supported by ebb here; use ${names.map((n) => (n === 'tag:' ? 'tag:<key>' : n)).join(', ')}`);
    }
    return { name, values: f.list('Values') ?? [] };
  });
}

function groupMatches(group: AutoScalingGroupRecord, filters: ReadonlyArray<{ name: string; values: string[] }>): boolean {
  return filters.every(({ name, values }) => {
    if (name === 'tag-key') return group.tags.some((t) => values.includes(t.key));
    if (name === 'tag-value') return group.tags.some((t) => values.includes(t.value));
    const key = name.slice('tag:'.length);
    return group.tags.some((t) => t.key === key && values.includes(t.value));
  });
}

function tagMatches(group: string, tag: Tag, filters: ReadonlyArray<{ name: string; values: string[] }>): boolean {
  return filters.every(({ name, values }) => {
    switch (name) {
      case 'auto-scaling-group':
        return values.includes(group);
      case 'key':
        return values.includes(tag.key);
      case 'value':
        return values.includes(tag.value);
      default:
        // propagate-at-launch: every group tag goes to the instances ebb launches.
        return values.includes('true');
    }
  });
}

/** Tags by the group they are for (CreateOrUpdateTags and DeleteTags can name several groups). */
function byGroup(tags: ReadonlyArray<{ group: string | undefined; tag: Tag }>): Map<string, Tag[]> {
  const out = new Map<string, Tag[]>();
  for (const { group, tag } of tags) {
    const name = group ?? '';
    const list = out.get(name) ?? [];
    list.push(tag);
    out.set(name, list);
  }
  return out;
}

export const groupActions: AsTable = {
  async CreateAutoScalingGroup(p, as) {
    const name = groupName(p);
    const minSize = p.requiredInt('MinSize', { min: 0 });
    const maxSize = p.requiredInt('MaxSize', { min: 0 });
    const settings = readGroupSettings(p);
    const launchTemplate = settings.launchTemplate;
    if (launchTemplate === undefined) {
      throw ebbError('ValidationError', 'A group needs a LaunchTemplate (LaunchTemplateId or LaunchTemplateName, and Version): ebb launches its instances from launch templates');
    }
    const lifecycleHooks = readHookSpecs(p, name);
    const tags = tagsForGroup(p, name);
    await as.createAutoScalingGroup({
      ...settings,
      name,
      launchTemplate,
      minSize,
      maxSize,
      ...readAttachments(p),
      ...(lifecycleHooks !== undefined ? { lifecycleHooks } : {}),
      ...(tags !== undefined ? { tags } : {}),
    });
    return undefined;
  },

  async UpdateAutoScalingGroup(p, as) {
    const name = groupName(p);
    await as.updateAutoScalingGroup({ ...readGroupSettings(p), name });
    return undefined;
  },

  async DeleteAutoScalingGroup(p, as) {
    const name = groupName(p);
    await as.deleteAutoScalingGroup(name, p.bool('ForceDelete') ?? false);
    return undefined;
  },

  async DescribeAutoScalingGroups(p, as) {
    const pager = p.pager({ default: 50, max: 100 });
    const names = p.list('AutoScalingGroupNames', { length: GROUP_NAME });
    const includeInstances = p.bool('IncludeInstances') ?? true;
    const filters = readFilters(p, ['tag:', 'tag-key', 'tag-value']);
    const found = as.describeAutoScalingGroups(names !== undefined && names.length > 0 ? names : undefined).filter(({ group }) => groupMatches(group, filters));
    const { page, nextToken } = pager.cut(found);
    return {
      AutoScalingGroups: page.map(({ group, instances }) => groupXml(group, includeInstances ? instances : undefined, as)),
      NextToken: nextToken,
    };
  },

  async DescribeAutoScalingInstances(p, as) {
    const pager = p.pager({ default: 50, max: 50 });
    const ids = p.list('InstanceIds', { length: INSTANCE_ID });
    const found = as
      .describeAutoScalingInstances(ids !== undefined && ids.length > 0 ? ids : undefined)
      .filter((i): i is AutoScalingInstanceRecord & { group: string } => isCurrent(i));
    const { page, nextToken } = pager.cut(found);
    return { AutoScalingInstances: page.map((i) => autoScalingInstanceXml(i, as)), NextToken: nextToken };
  },

  async SetDesiredCapacity(p, as) {
    const name = groupName(p);
    const desired = p.requiredInt('DesiredCapacity', { min: 0 });
    // HonorCooldown: ebb runs no scaling policies, so there is no cooldown to honour.
    p.bool('HonorCooldown');
    await as.setDesiredCapacity(name, desired);
    return undefined;
  },

  async CreateOrUpdateTags(p, as) {
    for (const [group, tags] of byGroup(readGroupTags(p, true) ?? [])) await as.createOrUpdateTags(group, tags);
    return undefined;
  },

  async DeleteTags(p, as) {
    for (const [group, tags] of byGroup(readGroupTags(p, true) ?? [])) await as.deleteTags(group, tags.map((t) => t.key));
    return undefined;
  },

  async DescribeTags(p, as) {
    const pager = p.pager({ default: 50, max: 100 });
    const filters = readFilters(p, ['auto-scaling-group', 'key', 'value', 'propagate-at-launch']);
    const all: XmlObject[] = [];
    for (const { group } of as.describeAutoScalingGroups()) {
      for (const tag of group.tags) if (tagMatches(group.name, tag, filters)) all.push(tagXml(group.name, tag));
    }
    const { page, nextToken } = pager.cut(all);
    return { Tags: page, NextToken: nextToken };
  },
};

/** For DescribeAccountLimits: how many groups there are now. */
export function groupCount(as: AutoScalingApi | undefined): number {
  return as === undefined ? 0 : as.describeAutoScalingGroups().length;
}
