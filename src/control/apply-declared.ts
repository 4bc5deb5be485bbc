import { validateLoadBalancerAttributes, validateTargetGroupAttributes } from '../domain/attributes.ts';
import type { ListenerRecord, LoadBalancerRecord, TargetGroupRecord } from '../domain/resources.ts';
import { describeError, ebbError } from '../shared/errors.ts';
import type { ControlPlane } from './control-plane.ts';
import { describeOp, planDeclared, type CurrentState, type DeclaredOp, type DeclaredPlan, type ListenerSpec } from './declared-plan.ts';
import { withChanges, type DeclaredState } from './declared-state.ts';
import { mergeHealthCheck } from './resource-catalog.ts';
import { readCaFile, TARGET_CA_FILE } from './target-ca-files.ts';

export interface ApplyDeclaredResult {
  readonly created: string[];
  readonly changed: string[];
  readonly removed: string[];
  readonly registered: number;
  readonly deregistered: number;
  /** One line per change made. */
  readonly applied: string[];
  /** What the file declares and did not change since it was last applied, left as the API made it, and why. */
  readonly kept: readonly string[];
  /** What the file was merged with: the file as last applied, or nothing (a first start, or a state from before ebb kept it). */
  readonly mergedWith: string;
}

export interface ApplyDeclaredOptions {
  /**
   * Tells whether a new listener's address and port can be opened (null) or why not (an errno code
   * such as EADDRINUSE). Checked for every listener the file opens before anything changes.
   */
  readonly checkPort?: (address: string, port: number) => Promise<string | null>;
}

const MERGED_WITH_LAST = 'the file as last applied';
const MERGED_WITH_NOTHING = 'nothing: no file was applied before in this state, so the file wins for what it declares';

/**
 * A change that failed part-way: `cause` is why. `undo()` takes back, last first, each step that was
 * made, and nothing else; the file as last applied stays the base of the next merge.
 */
export class PartlyAppliedError extends Error {
  readonly #undo: readonly DeclaredOp[];

  constructor(cause: unknown, undo: readonly DeclaredOp[]) {
    super(describeError(cause), { cause });
    this.name = 'PartlyAppliedError';
    this.#undo = undo;
  }

  /** How many steps there are to take back. */
  get steps(): number {
    return this.#undo.length;
  }

  async undo(cp: ControlPlane): Promise<ApplyDeclaredResult> {
    const result = emptyResult([], MERGED_WITH_LAST);
    for (const op of [...this.#undo].reverse()) await run(cp, op, result, []);
    return result;
  }
}

/**
 * Applies the configuration file as a three-way merge (declared-plan.ts) of the file as last applied
 * (kept in the state), the file now, and what exists now: what the file changed is applied; what the
 * API changed since, and what the file did not touch, stays as the API left it. Then the file is kept
 * as the last applied one. Everything that can be known to fail is checked first (checkDeclared), and
 * then nothing is changed; a step that fails after that throws PartlyAppliedError, which can undo the
 * steps made.
 */
export async function applyDeclared(cp: ControlPlane, declared: DeclaredState, options: ApplyDeclaredOptions = {}): Promise<ApplyDeclaredResult> {
  const last = cp.lastAppliedDeclaration();
  const plan = await checkDeclared(cp, declared, options);
  const result = emptyResult(plan.kept, last === null ? MERGED_WITH_NOTHING : MERGED_WITH_LAST);
  const undo: DeclaredOp[] = [];
  try {
    for (const op of plan.ops) await run(cp, op, result, undo);
    if (JSON.stringify(last) !== JSON.stringify(declared)) await cp.recordAppliedDeclaration(declared);
  } catch (error) {
    throw new PartlyAppliedError(error, undo);
  }
  return result;
}

/**
 * Everything that can be known to fail before a change is made; throws ConfigInvalid and changes
 * nothing. Resolves with the plan: what applying the file would do now.
 */
export async function checkDeclared(cp: ControlPlane, declared: DeclaredState, options: ApplyDeclaredOptions = {}): Promise<DeclaredPlan> {
  checkImmutableFields(cp, declared);
  const plan = planDeclared(cp.lastAppliedDeclaration(), declared, currentState(cp));
  checkSettings(cp, plan);
  await checkListeners(cp, plan, options);
  return plan;
}

/** What exists now, as the plan sees it: by name, with where each thing came from. */
export function currentState(cp: ControlPlane): CurrentState {
  const groups = cp.describeTargetGroups();
  const groupName = new Map(groups.map((g) => [g.arn, g.name]));
  return {
    instances: cp.describeInstances(),
    targetGroups: groups.map((g) => ({
      name: g.name,
      protocol: g.protocol,
      port: g.port,
      healthCheck: g.healthCheck,
      attributes: g.attributes,
      source: g.source,
      targets: cp.registrationsOf(g.arn).map((r) => ({ id: r.id, port: r.port, source: r.source, draining: r.draining })),
    })),
    loadBalancers: allLoadBalancers(cp).map((lb) => ({
      name: lb.name,
      type: lb.type,
      attributes: lb.attributes,
      source: lb.source,
      listeners: cp.describeListeners({ loadBalancerArn: lb.arn }).map((l) => ({
        port: l.port,
        protocol: l.protocol,
        address: l.address,
        targetGroup: groupName.get(l.defaultActions[0]?.targetGroupArn ?? '') ?? null,
        source: l.source,
        certificateArns: l.certificateArns ?? [],
        sslPolicy: l.sslPolicy,
        attributes: l.attributes ?? {},
      })),
    })),
  };
}

// ------------------------------------------------------------ running the steps

function emptyResult(kept: readonly string[], mergedWith: string): ApplyDeclaredResult {
  return { created: [], changed: [], removed: [], registered: 0, deregistered: 0, applied: [], kept, mergedWith };
}

type MutableResult = { -readonly [K in keyof ApplyDeclaredResult]: ApplyDeclaredResult[K] };

/** Runs one step; records what it did in `result` and how to take it back in `undo`. */
async function run(cp: ControlPlane, op: DeclaredOp, result: ApplyDeclaredResult, undo: DeclaredOp[]): Promise<void> {
  const r = result as MutableResult;
  if (await step(cp, op, r, undo)) r.applied.push(describeOp(op));
}

/** Resolves with whether the step changed anything. */
async function step(cp: ControlPlane, op: DeclaredOp, r: MutableResult, undo: DeclaredOp[]): Promise<boolean> {
  switch (op.op) {
    case 'putInstance': {
      const before = cp.describeInstances().find((i) => i.id === op.id);
      if (before?.address === op.address) return false;
      await cp.putInstance({ id: op.id, address: op.address });
      if (before !== undefined) undo.push({ op: 'putInstance', id: op.id, address: before.address });
      return true;
    }
    case 'createTargetGroup': {
      const d = op.group;
      await cp.createTargetGroup({
        name: d.name,
        protocol: d.protocol,
        port: d.port,
        targetType: d.targetType,
        healthCheck: d.healthCheck,
        attributes: d.attributes,
        source: 'config',
      });
      r.created.push(`target group ${d.name}`);
      undo.push({ op: 'removeTargetGroup', name: d.name });
      return true;
    }
    case 'adoptTargetGroup':
      await cp.setSource(group(cp, op.name).arn, 'config');
      undo.push({ op: 'release', what: 'targetGroup', name: op.name });
      return true;
    case 'setTargetGroup': {
      const tg = group(cp, op.name);
      const healthCheck = Object.fromEntries(Object.keys(op.healthCheck).map((k) => [k, tg.healthCheck[k as keyof TargetGroupRecord['healthCheck']]]));
      const attributes = Object.fromEntries(Object.keys(op.attributes).map((k) => [k, tg.attributes[k] ?? null]));
      if (!(await cp.changeSettings(tg.arn, op.attributes, op.healthCheck))) return false;
      r.changed.push(`target group ${op.name}`);
      undo.push({ op: 'setTargetGroup', name: op.name, healthCheck, attributes });
      return true;
    }
    case 'createLoadBalancer':
      await cp.createLoadBalancer({ name: op.name, type: op.type, attributes: op.attributes, source: 'config' });
      r.created.push(`load balancer ${op.name}`);
      undo.push({ op: 'deleteLoadBalancer', name: op.name });
      return true;
    case 'adoptLoadBalancer':
      await cp.setSource(loadBalancer(cp, op.name).arn, 'config');
      undo.push({ op: 'release', what: 'loadBalancer', name: op.name });
      return true;
    case 'setLoadBalancer': {
      const lb = loadBalancer(cp, op.name);
      const attributes = Object.fromEntries(Object.keys(op.attributes).map((k) => [k, lb.attributes[k] ?? null]));
      if (!(await cp.changeSettings(lb.arn, op.attributes))) return false;
      r.changed.push(`load balancer ${op.name}`);
      undo.push({ op: 'setLoadBalancer', name: op.name, attributes });
      return true;
    }
    case 'release':
      await cp.setSource(op.what === 'targetGroup' ? group(cp, op.name).arn : loadBalancer(cp, op.name).arn, 'api');
      return true;
    case 'createListener':
      await openListener(cp, op.lb, op.listener);
      r.created.push(`listener ${op.lb}:${op.listener.port}`);
      undo.push({ op: 'deleteListener', lb: op.lb, port: op.listener.port });
      return true;
    case 'reopenListener': {
      const before = listener(cp, op.lb, op.listener.port);
      await cp.deleteListener(before.arn);
      const was = specOf(cp, before);
      undo.push({ op: 'createListener', lb: op.lb, listener: was });
      await openListener(cp, op.lb, op.listener);
      undo.pop();
      undo.push({ op: 'reopenListener', lb: op.lb, listener: was });
      r.changed.push(`listener ${op.lb}:${op.listener.port}`);
      return true;
    }
    case 'modifyListener': {
      const before = listener(cp, op.lb, op.listener.port);
      const was = specOf(cp, before);
      await cp.modifyListener(before.arn, {
        protocol: op.listener.protocol,
        defaultActions: [{ type: 'forward', targetGroupArn: group(cp, op.listener.targetGroup).arn }],
        ...tlsOf(op.listener),
        attributes: op.listener.attributes,
      });
      r.changed.push(`listener ${op.lb}:${op.listener.port}`);
      undo.push({ op: 'modifyListener', lb: op.lb, listener: was });
      return true;
    }
    case 'adoptListener':
      await cp.setSource(listener(cp, op.lb, op.port).arn, 'config');
      undo.push({ op: 'releaseListener', lb: op.lb, port: op.port });
      return true;
    case 'releaseListener':
      await cp.setSource(listener(cp, op.lb, op.port).arn, 'api');
      return true;
    case 'deleteListener': {
      const before = findListener(cp, op.lb, op.port);
      if (before === undefined) return false;
      const was = specOf(cp, before);
      await cp.deleteListener(before.arn);
      r.removed.push(`listener ${op.lb}:${op.port}`);
      undo.push({ op: 'createListener', lb: op.lb, listener: was });
      return true;
    }
    case 'deleteLoadBalancer': {
      const lb = allLoadBalancers(cp).find((l) => l.name === op.name && l.source === 'config');
      if (lb === undefined) return false;
      const listeners = cp.describeListeners({ loadBalancerArn: lb.arn }).map((l) => specOf(cp, l));
      await cp.deleteLoadBalancer(lb.arn);
      r.removed.push(`load balancer ${op.name}`);
      // Taken back last first: the load balancer, then its listeners.
      for (const l of listeners) undo.push({ op: 'createListener', lb: op.name, listener: l });
      undo.push({ op: 'createLoadBalancer', name: lb.name, type: lb.type, attributes: lb.attributes });
      return true;
    }
    case 'registerTargets': {
      const tg = group(cp, op.group);
      const active = cp.registrationsOf(tg.arn).filter((t) => !t.draining);
      const fresh = op.targets.filter((t) => !active.some((a) => a.id === t.id && a.port === t.port));
      if (fresh.length === 0) return false;
      await cp.registerTargets(tg.arn, fresh, 'config');
      r.registered += fresh.length;
      undo.push({ op: 'deregisterTargets', group: op.group, targets: fresh });
      return true;
    }
    case 'deregisterTargets': {
      const tg = group(cp, op.group);
      const active = cp.registrationsOf(tg.arn).filter((t) => !t.draining);
      const leaving = op.targets.filter((t) => active.some((a) => a.id === t.id && a.port === t.port));
      if (leaving.length === 0) return false;
      await cp.deregisterTargets(tg.arn, leaving);
      r.deregistered += leaving.length;
      undo.push({ op: 'registerTargets', group: op.group, targets: leaving });
      return true;
    }
    case 'removeTargetGroup': {
      const tg = cp.describeTargetGroups().find((g) => g.name === op.name);
      if (tg === undefined || cp.loadBalancersOfTargetGroup(tg.arn).length > 0) return false; // a listener of the API's still forwards to it
      const active = cp.registrationsOf(tg.arn).filter((t) => !t.draining).map((t) => ({ id: t.id, port: t.port }));
      if (active.length > 0) {
        await cp.deregisterTargets(tg.arn, active);
        undo.push({ op: 'registerTargets', group: op.name, targets: active });
      }
      if (cp.registrationsOf(tg.arn).length > 0) return active.length > 0;
      await cp.deleteTargetGroup(tg.arn);
      r.removed.push(`target group ${op.name}`);
      undo.push({
        op: 'createTargetGroup',
        group: { name: tg.name, protocol: tg.protocol, port: tg.port, targetType: tg.targetType, healthCheck: tg.healthCheck, attributes: tg.attributes, targets: [] },
      });
      return true;
    }
  }
}

function openListener(cp: ControlPlane, lb: string, spec: ListenerSpec): Promise<ListenerRecord> {
  return cp.createListener({
    loadBalancerArn: loadBalancer(cp, lb).arn,
    protocol: spec.protocol,
    port: spec.port,
    address: spec.address,
    defaultActions: [{ type: 'forward', targetGroupArn: group(cp, spec.targetGroup).arn }],
    ...tlsOf(spec),
    attributes: spec.attributes,
    source: 'config',
  });
}

/** A spec's certificates and policy as the listener commands take them: the default, then those chosen by SNI. */
function tlsOf(spec: ListenerSpec): { certificateArns?: readonly string[]; sniCertificateArns?: readonly string[]; sslPolicy?: string } {
  const [first, ...others] = spec.certificateArns;
  return {
    ...(first !== undefined && { certificateArns: [first], sniCertificateArns: others }),
    ...(spec.sslPolicy !== undefined && { sslPolicy: spec.sslPolicy }),
  };
}

function specOf(cp: ControlPlane, l: ListenerRecord): ListenerSpec {
  const arn = l.defaultActions[0]?.targetGroupArn ?? '';
  const targetGroup = cp.describeTargetGroups().find((g) => g.arn === arn)?.name ?? '';
  return {
    port: l.port,
    protocol: l.protocol,
    address: l.address,
    targetGroup,
    certificateArns: l.certificateArns ?? [],
    sslPolicy: l.sslPolicy,
    attributes: l.attributes ?? {},
  };
}

function allLoadBalancers(cp: ControlPlane): LoadBalancerRecord[] {
  return [...cp.describeLoadBalancers(), ...cp.describeLoadBalancers({ type: 'classic' })];
}

function group(cp: ControlPlane, name: string): TargetGroupRecord {
  const tg = cp.describeTargetGroups().find((g) => g.name === name);
  if (tg === undefined) throw ebbError('TargetGroupNotFound', `Target group '${name}' not found`);
  return tg;
}

function loadBalancer(cp: ControlPlane, name: string): LoadBalancerRecord {
  const lb = cp.describeLoadBalancers().find((l) => l.name === name);
  if (lb === undefined) throw ebbError('LoadBalancerNotFound', `Load balancer '${name}' not found`);
  return lb;
}

function findListener(cp: ControlPlane, lb: string, port: number): ListenerRecord | undefined {
  const owner = cp.describeLoadBalancers().find((l) => l.name === lb);
  return owner === undefined ? undefined : cp.describeListeners({ loadBalancerArn: owner.arn }).find((l) => l.port === port);
}

function listener(cp: ControlPlane, lb: string, port: number): ListenerRecord {
  const l = findListener(cp, lb, port);
  if (l === undefined) throw ebbError('ListenerNotFound', `Listener ${lb}:${port} not found`);
  return l;
}

// ------------------------------------------------------------ checks

/** Protocol and port of a group cannot change in place (as in AWS); say so before changing anything. */
function checkImmutableFields(cp: ControlPlane, declared: DeclaredState): void {
  for (const d of declared.targetGroups) {
    const existing = cp.describeTargetGroups().find((tg) => tg.name === d.name);
    if (existing === undefined) continue;
    if (existing.protocol !== d.protocol || existing.port !== d.port) {
      throw ebbError(
        'ConfigInvalid',
        `Target group '${d.name}' exists with protocol ${existing.protocol} and port ${existing.port}; its protocol and port cannot change in place. Give the changed group a new name`,
      );
    }
    if (existing.targetType !== d.targetType) {
      throw ebbError(
        'ConfigInvalid',
        `Target group '${d.name}' exists with target type ${existing.targetType}; the target type cannot change in place. Give the changed group a new name`,
      );
    }
  }
}

/**
 * The settings the plan changes must hold together with those the API set and the file keeps (a
 * health-check timeout below the interval, no slow start with least outstanding requests), and a load
 * balancer the file no longer declares must be deletable.
 */
function checkSettings(cp: ControlPlane, plan: DeclaredPlan): void {
  const fits = (what: string, check: () => void): void => {
    try {
      check();
    } catch (error) {
      throw ebbError('ConfigInvalid', `The file's change to ${what} does not fit the settings it keeps from the API: ${describeError(error)}. Nothing was changed`);
    }
  };
  for (const op of plan.ops) {
    // A CA file the file names must be readable before anything changes (`ebb check` says so too).
    const caFile = op.op === 'createTargetGroup' ? op.group.attributes[TARGET_CA_FILE] : op.op === 'setTargetGroup' ? op.attributes[TARGET_CA_FILE] : null;
    if (typeof caFile === 'string' && caFile !== '') {
      try {
        readCaFile(caFile);
      } catch (error) {
        throw ebbError('ConfigInvalid', `Target group '${op.op === 'createTargetGroup' ? op.group.name : op.op === 'setTargetGroup' ? op.name : ''}': ${describeError(error)}. Nothing was changed`);
      }
    }
    if (op.op === 'setTargetGroup') {
      const tg = group(cp, op.name);
      fits(`target group '${op.name}'`, () => {
        mergeHealthCheck(tg.healthCheck, op.healthCheck);
        validateTargetGroupAttributes(withChanges(tg.attributes, op.attributes), tg.protocol);
      });
    }
    if (op.op === 'setLoadBalancer') {
      const lb = loadBalancer(cp, op.name);
      fits(`load balancer '${op.name}'`, () => validateLoadBalancerAttributes(withChanges(lb.attributes, op.attributes), lb.type));
    }
    if (op.op === 'deleteLoadBalancer') {
      const lb = allLoadBalancers(cp).find((l) => l.name === op.name && l.source === 'config');
      if (lb?.attributes['deletion_protection.enabled'] === 'true') {
        throw ebbError(
          'ConfigInvalid',
          `Load balancer '${op.name}' is no longer in the file, but its deletion protection is on; turn it off (or declare the load balancer again). Nothing was changed`,
        );
      }
    }
  }
}

/**
 * Every listener the plan opens must be able to open before anything changes: its port must not be
 * another listener's, and a new address:port must be free on this machine.
 */
async function checkListeners(cp: ControlPlane, plan: DeclaredPlan, options: ApplyDeclaredOptions): Promise<void> {
  const existing = allLoadBalancers(cp).flatMap((lb) => cp.describeListeners({ loadBalancerArn: lb.arn }).map((l) => ({ ...l, lbName: lb.name })));
  for (const op of plan.ops) {
    if (op.op !== 'createListener' && op.op !== 'reopenListener') continue;
    const { port, address } = op.listener;
    const name = `${op.lb}:${port}`;
    const same = existing.find((l) => l.lbName === op.lb && l.port === port);
    const clash = existing.find(
      (l) =>
        l !== same &&
        !(l.lbName === op.lb && l.source === 'config') &&
        l.port === port &&
        (l.address === address || l.address === '0.0.0.0' || address === '0.0.0.0'),
    );
    if (clash !== undefined) {
      const made = clash.source === 'api' ? 'created through the API' : 'declared by the file';
      throw ebbError(
        'ConfigInvalid',
        `Listener ${name} clashes with listener ${clash.arn} of load balancer '${clash.lbName}', ${made}; choose another port or delete that listener`,
      );
    }
    const heldByEbb = existing.some((l) => l.port === port && (l.address === address || l.address === '0.0.0.0'));
    if (!heldByEbb && options.checkPort !== undefined) {
      const problem = await options.checkPort(address, port);
      if (problem !== null) {
        throw ebbError('ConfigInvalid', `Listener ${name} cannot open ${address}:${port} (${problem}); free the port or choose another. Nothing was changed`);
      }
    }
  }
}
