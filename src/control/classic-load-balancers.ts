import { ebbError } from '../shared/errors.ts';
import { validateLoadBalancerAttributes, validateTargetGroupAttributes } from '../domain/attributes.ts';
import { DEFAULT_CLASSIC_SETTINGS, type LoadBalancerRecord, type Tag, type TargetGroupRecord } from '../domain/resources.ts';
import type { StoreOp } from '../domain/store-port.ts';
import type { ClassicAttributesChange } from './inputs.ts';
import type { ResourceCatalog } from './resource-catalog.ts';
import { put } from './store-transaction.ts';

/**
 * What only a Classic load balancer has: its `classic` settings (the draining timeout kept while
 * draining is off, cross-zone) live on its record, and its groups are the ones its listeners forward
 * to. Nothing is kept in tags, which any caller may change. Each function here builds a change for
 * the facade to commit: the store operations, and `apply`, which updates the catalog after the commit.
 */
export interface CatalogChange {
  readonly ops: StoreOp[];
  readonly apply: () => void;
}

/**
 * Classic ModifyLoadBalancerAttributes: the load balancer's attributes and settings and, for
 * ConnectionDraining, each of its groups' deregistration delay (the timeout when enabled; 0 when
 * not, as Classic closes what is in flight at once with draining off). Throws before anything is
 * built if any part is refused, so the change is made whole or not at all.
 */
export function classicAttributesChange(
  catalog: ResourceCatalog,
  arn: string,
  change: ClassicAttributesChange,
): CatalogChange & { readonly loadBalancer: LoadBalancerRecord } {
  const lb = catalog.requireLoadBalancer(arn);
  if (lb.type !== 'classic') throw ebbError('ValidationError', `Load balancer '${arn}' is not a Classic load balancer`);
  const attributes = change.attributes ?? {};
  validateLoadBalancerAttributes(attributes);
  const settings = lb.classic ?? DEFAULT_CLASSIC_SETTINGS;
  const draining = change.connectionDraining;
  const timeout = draining?.timeoutSeconds ?? settings.drainingTimeoutSeconds;
  if (!isDrainingTimeout(timeout)) {
    throw ebbError('ValidationError', `ConnectionDraining.Timeout must be an integer from 1 to 3600 seconds; got ${String(timeout)}`);
  }
  const loadBalancer: LoadBalancerRecord = {
    ...lb,
    attributes: { ...lb.attributes, ...attributes },
    classic: { drainingTimeoutSeconds: timeout, crossZone: change.crossZone ?? settings.crossZone },
  };
  const groups: TargetGroupRecord[] = [];
  if (draining !== undefined) {
    for (const tg of catalog.targetGroupsOf(arn)) {
      const delay = { 'deregistration_delay.timeout_seconds': draining.enabled ? String(timeout) : '0' };
      validateTargetGroupAttributes(delay, tg.protocol, tg.attributes);
      groups.push({ ...tg, attributes: { ...tg.attributes, ...delay } });
    }
  }
  return {
    loadBalancer,
    ops: [put('loadBalancer', arn, loadBalancer), ...groups.map((g) => put('targetGroup', g.arn, g))],
    apply: () => {
      catalog.setLoadBalancer(loadBalancer);
      for (const g of groups) catalog.setTargetGroup(g);
    },
  };
}

/**
 * Earlier releases kept a Classic load balancer's settings in tags any tag call could change:
 * `ebb:classic-draining-timeout` and `ebb:classic-cross-zone` on the load balancer, `ebb:classic-lb`
 * and `ebb:classic-instance-port` on its groups (which its listeners now name). At start, they are
 * read once into the record's `classic` settings and dropped; a record written since has none.
 */
export function classicSettingsFromTags(catalog: ResourceCatalog): CatalogChange {
  const loadBalancers: LoadBalancerRecord[] = [];
  for (const lb of catalog.loadBalancers.values()) {
    if (lb.type !== 'classic' || (lb.classic !== undefined && !lb.tags.some(isClassicTag))) continue;
    const tag = (key: string): string | undefined => lb.tags.find((t) => t.key === key)?.value;
    const remembered = Number(tag('ebb:classic-draining-timeout'));
    const delay = Number(catalog.targetGroupsOf(lb.arn)[0]?.attributes['deregistration_delay.timeout_seconds']);
    const drainingTimeoutSeconds = isDrainingTimeout(remembered) ? remembered : isDrainingTimeout(delay) ? delay : DEFAULT_CLASSIC_SETTINGS.drainingTimeoutSeconds;
    loadBalancers.push({
      ...lb,
      tags: lb.tags.filter((t) => !isClassicTag(t)),
      classic: lb.classic ?? { drainingTimeoutSeconds, crossZone: tag('ebb:classic-cross-zone') === 'true' },
    });
  }
  const groups = [...catalog.targetGroups.values()].filter((tg) => tg.tags.some(isClassicTag)).map((tg) => ({ ...tg, tags: tg.tags.filter((t) => !isClassicTag(t)) }));
  return {
    ops: [...loadBalancers.map((lb) => put('loadBalancer', lb.arn, lb)), ...groups.map((g) => put('targetGroup', g.arn, g))],
    apply: () => {
      for (const lb of loadBalancers) catalog.setLoadBalancer(lb);
      for (const g of groups) catalog.setTargetGroup(g);
    },
  };
}

function isClassicTag(t: Tag): boolean {
  return t.key.startsWith('ebb:classic-');
}

function isDrainingTimeout(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 3600;
}
