/**
 * EC2's DescribeInstances over ebb's instances: the processes Auto Scaling launched and the servers
 * it attached. Each instance is answered in a reservation of its own (`r-` and the instance id's
 * suffix), as EC2 does for instances launched one at a time, which is how Auto Scaling launches them.
 *
 * What EC2 would say about a virtual machine ebb does not have (image, type, subnet) is left out.
 * Where an instance listens goes in tags, as AWS adds `aws:` tags of its own: the group
 * (`aws:autoscaling:groupName`) and template (`aws:ec2launchtemplate:id`, `…:version`) as AWS names
 * them, and `ebb:port`, `ebb:pid` and `ebb:log-file`. Filters see these tags too.
 */
import type { AutoScalingApi, Ec2InstanceView } from '../../autoscaling/autoscaling-api.ts';
import { isInstanceId } from '../../control/names.ts';
import type { Tag } from '../../domain/resources.ts';
import { ebbError } from '../../shared/errors.ts';
import type { ActionHandler } from '../handler.ts';
import type { XmlObject } from '../xml.ts';
import { autoscalingOf, refuseDryRun } from './context.ts';
import { Ec2Params } from './ec2-params.ts';
import { applyFilters, readFilters } from './filters.ts';

/** EC2's instance state codes (shape InstanceState: the low byte of `code`). */
export const STATE_CODES: Readonly<Record<Ec2InstanceView['state'], number>> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopped: 80,
};

/** The instance's own tags, then those ebb and AWS add (an own tag of the same key wins). */
export function instanceTags(v: Ec2InstanceView): Tag[] {
  const added: Tag[] = [];
  if (v.group !== null) added.push({ key: 'aws:autoscaling:groupName', value: v.group });
  if (v.launchTemplate !== undefined) {
    added.push({ key: 'aws:ec2launchtemplate:id', value: v.launchTemplate.id });
    added.push({ key: 'aws:ec2launchtemplate:version', value: String(v.launchTemplate.version) });
  }
  added.push({ key: 'ebb:port', value: String(v.port) });
  if (v.pid !== undefined) added.push({ key: 'ebb:pid', value: String(v.pid) });
  if (v.logFile !== undefined) added.push({ key: 'ebb:log-file', value: v.logFile });
  const own = new Set(v.tags.map((t) => t.key));
  return [...v.tags, ...added.filter((t) => !own.has(t.key))];
}

function instanceXml(v: Ec2InstanceView, tags: readonly Tag[]): XmlObject {
  return {
    instanceId: v.instanceId,
    instanceState: { code: STATE_CODES[v.state], name: v.state },
    amiLaunchIndex: 0,
    launchTime: new Date(v.launchTime),
    privateIpAddress: v.privateIpAddress,
    tagSet: tags.map((t) => ({ key: t.key, value: t.value })),
  };
}

export const describeInstances: ActionHandler = async (params, ctx) => {
  const p = new Ec2Params(params);
  const as: AutoScalingApi = autoscalingOf(ctx);
  refuseDryRun(p);
  p.int('MaxResults', { min: 5, max: 1000 });
  p.str('NextToken');
  const ids = p.list('InstanceId');
  for (const id of ids ?? []) {
    if (!isInstanceId(id)) {
      throw ebbError('InvalidInstanceID.Malformed', `Invalid id: "${id.length > 100 ? `${id.slice(0, 100)}...` : id}": instance ids are i- followed by letters and digits`);
    }
  }
  const filters = readFilters(p);
  const views = as.describeInstances(ids).map((view) => ({ view, tags: instanceTags(view) }));
  const kept = applyFilters(
    views,
    filters,
    {
      'instance-id': ({ view }) => [view.instanceId],
      'instance-state-name': ({ view }) => [view.state],
      'instance-state-code': ({ view }) => [String(STATE_CODES[view.state])],
      'private-ip-address': ({ view }) => [view.privateIpAddress],
    },
    ({ tags }) => tags,
  );
  return {
    reservationSet: kept.map(({ view, tags }) => ({
      reservationId: `r-${view.instanceId.slice(2)}`,
      ownerId: as.accountId,
      groupSet: [],
      instancesSet: [instanceXml(view, tags)],
    })),
  };
};
