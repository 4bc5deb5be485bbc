import type { ListenerRecord, LoadBalancerRecord, Tag, TargetGroupRecord } from '../domain/resources.ts';
import type { StoreOp } from '../domain/store-port.ts';
import { checkAnyArn, notFoundFor } from './arn.ts';
import { put } from './store-transaction.ts';

type TagChange = (current: readonly Tag[]) => readonly Tag[];

/** The resources that carry tags, as the resource catalog holds them. */
export interface TaggedResources {
  readonly loadBalancers: ReadonlyMap<string, LoadBalancerRecord>;
  readonly targetGroups: ReadonlyMap<string, TargetGroupRecord>;
  readonly listeners: ReadonlyMap<string, ListenerRecord>;
  setLoadBalancer(r: LoadBalancerRecord): void;
  setTargetGroup(r: TargetGroupRecord): void;
  setListener(r: ListenerRecord): void;
}

/**
 * The change of each named resource's tags (a load balancer, target group or listener, by ARN): the
 * store operations for one commit, and the in-memory update to run once they are committed. Throws
 * ValidationError for a malformed ARN, the resource's NotFound for an unknown one, before anything.
 */
export function tagChanges(catalog: TaggedResources, arns: readonly string[], change: TagChange): { ops: StoreOp[]; apply: () => void } {
  const each = arns.map((arn) => tagChange(catalog, arn, change));
  return {
    ops: each.map((c) => c.op),
    apply: () => {
      for (const c of each) c.apply();
    },
  };
}

function tagChange(catalog: TaggedResources, arn: string, change: TagChange): { op: StoreOp; apply: () => void } {
  checkAnyArn(arn);
  const lb = catalog.loadBalancers.get(arn);
  if (lb !== undefined) {
    const r = { ...lb, tags: change(lb.tags) };
    return { op: put('loadBalancer', arn, r), apply: () => catalog.setLoadBalancer(r) };
  }
  const tg = catalog.targetGroups.get(arn);
  if (tg !== undefined) {
    const r = { ...tg, tags: change(tg.tags) };
    return { op: put('targetGroup', arn, r), apply: () => catalog.setTargetGroup(r) };
  }
  const l = catalog.listeners.get(arn);
  if (l !== undefined) {
    const r = { ...l, tags: change(l.tags) };
    return { op: put('listener', arn, r), apply: () => catalog.setListener(r) };
  }
  throw notFoundFor(arn);
}
