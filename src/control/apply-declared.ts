import { ebbError } from '../shared/errors.ts';
import type { ControlPlane } from './control-plane.ts';
import type { DeclaredState } from './declared-state.ts';

export interface ApplyDeclaredResult {
  readonly created: string[];
  readonly changed: string[];
  readonly removed: string[];
  readonly registered: number;
  readonly deregistered: number;
}

export interface ApplyDeclaredOptions {
  /**
   * Tells whether a new listener's address and port can be opened (null) or why not (an errno code
   * such as EADDRINUSE). Checked for every new listener before anything changes.
   */
  readonly checkPort?: (address: string, port: number) => Promise<string | null>;
}

/**
 * Makes the resources the configuration file owns match what it declares now, as a difference:
 * - what the file declares is created, or changed to match (the file wins for what it declares);
 * - what the file declared before and no longer does is removed (listeners close and drain,
 *   targets are deregistered and drain);
 * - what was created through the API is left alone, including targets registered through the API in
 *   a group the file declares.
 * A resource the file names that already exists from the API is adopted by the file.
 */
export async function applyDeclared(
  cp: ControlPlane,
  declared: DeclaredState,
  options: ApplyDeclaredOptions = {},
): Promise<ApplyDeclaredResult> {
  const result: { -readonly [K in keyof ApplyDeclaredResult]: ApplyDeclaredResult[K] } = { created: [], changed: [], removed: [], registered: 0, deregistered: 0 };
  await checkDeclared(cp, declared, options);

  for (const instance of declared.instances) {
    const existing = cp.describeInstances().find((i) => i.id === instance.id);
    if (existing?.address !== instance.address) await cp.putInstance(instance);
  }

  // Target groups first: listeners forward to them.
  const tgArnByName = new Map<string, string>();
  for (const d of declared.targetGroups) {
    const existing = cp.describeTargetGroups().find((tg) => tg.name === d.name);
    if (existing === undefined) {
      const tg = await cp.createTargetGroup({
        name: d.name,
        protocol: d.protocol,
        port: d.port,
        targetType: d.targetType,
        healthCheck: d.healthCheck,
        attributes: d.attributes,
        source: 'config',
      });
      tgArnByName.set(d.name, tg.arn);
      result.created.push(`target group ${d.name}`);
    } else {
      await cp.setSource(existing.arn, 'config');
      if (await cp.replaceTargetGroupSettings(existing.arn, d.healthCheck, d.attributes)) result.changed.push(`target group ${d.name}`);
      tgArnByName.set(d.name, existing.arn);
    }
  }

  // Load balancers and their listeners.
  const declaredLbNames = new Set(declared.loadBalancers.map((lb) => lb.name));
  for (const d of declared.loadBalancers) {
    let lb = cp.describeLoadBalancers({ type: d.type === 'classic' ? 'classic' : 'elbv2' }).find((l) => l.name === d.name);
    if (lb === undefined) {
      lb = await cp.createLoadBalancer({ name: d.name, type: d.type, attributes: d.attributes, source: 'config' });
      result.created.push(`load balancer ${d.name}`);
    } else {
      await cp.setSource(lb.arn, 'config');
      if (await cp.replaceLoadBalancerAttributes(lb.arn, d.attributes)) result.changed.push(`load balancer ${d.name}`);
    }
    const current = cp.describeListeners({ loadBalancerArn: lb.arn });
    const wanted = new Set(d.listeners.map((l) => l.port));
    for (const dl of d.listeners) {
      const targetGroupArn = tgArnByName.get(dl.targetGroup);
      if (targetGroupArn === undefined) {
        throw ebbError('ConfigInvalid', `Listener ${d.name}:${dl.port} forwards to target group '${dl.targetGroup}', which is not declared`);
      }
      const existing = current.find((l) => l.port === dl.port);
      const address = dl.address ?? '0.0.0.0';
      const open = (): Promise<unknown> =>
        cp.createListener({
          loadBalancerArn: lb.arn,
          protocol: dl.protocol,
          port: dl.port,
          address,
          defaultActions: [{ type: 'forward', targetGroupArn }],
          source: 'config',
        });
      if (existing === undefined) {
        await open();
        result.created.push(`listener ${d.name}:${dl.port}`);
      } else if (existing.address !== address) {
        // The bind address cannot change in place: reopen the listener.
        await cp.deleteListener(existing.arn);
        await open();
        result.changed.push(`listener ${d.name}:${dl.port}`);
      } else {
        if (existing.protocol !== dl.protocol || existing.defaultActions[0]?.targetGroupArn !== targetGroupArn) {
          await cp.modifyListener(existing.arn, { protocol: dl.protocol, defaultActions: [{ type: 'forward', targetGroupArn }] });
          result.changed.push(`listener ${d.name}:${dl.port}`);
        }
        await cp.setSource(existing.arn, 'config');
      }
    }
    // Removed last, so a failure above leaves the listeners that were serving still serving.
    for (const l of current) {
      if (!wanted.has(l.port) && l.source === 'config') {
        await cp.deleteListener(l.arn);
        result.removed.push(`listener ${d.name}:${l.port}`);
      }
    }
  }
  for (const lb of [...cp.describeLoadBalancers(), ...cp.describeLoadBalancers({ type: 'classic' })]) {
    if (lb.source === 'config' && !declaredLbNames.has(lb.name)) {
      await cp.deleteLoadBalancer(lb.arn);
      result.removed.push(`load balancer ${lb.name}`);
    }
  }

  // Targets: register what is declared, deregister (drain) what the file declared before and no longer does.
  for (const d of declared.targetGroups) {
    const arn = tgArnByName.get(d.name);
    if (arn === undefined) continue;
    const tg = cp.describeTargetGroups({ arns: [arn] })[0];
    if (tg === undefined) continue;
    const wanted = d.targets.map((t) => ({ id: t.id, port: t.port ?? tg.port }));
    const regs = cp.registrationsOf(arn);
    const toRegister = wanted.filter((w) => !regs.some((r) => r.id === w.id && r.port === w.port && !r.draining));
    if (toRegister.length > 0) {
      await cp.registerTargets(arn, toRegister, 'config');
      result.registered += toRegister.length;
    }
    const toDeregister = regs.filter(
      (r) => r.source === 'config' && !r.draining && !wanted.some((w) => w.id === r.id && w.port === r.port),
    );
    if (toDeregister.length > 0) {
      await cp.deregisterTargets(arn, toDeregister.map((r) => ({ id: r.id, port: r.port })));
      result.deregistered += toDeregister.length;
    }
  }

  // Target groups the file no longer declares: drain their targets, then remove them once unused.
  const declaredTgNames = new Set(declared.targetGroups.map((tg) => tg.name));
  for (const tg of cp.describeTargetGroups()) {
    if (tg.source !== 'config' || declaredTgNames.has(tg.name)) continue;
    if (cp.loadBalancersOfTargetGroup(tg.arn).length > 0) continue; // an API listener still uses it
    const regs = cp.registrationsOf(tg.arn).filter((r) => !r.draining);
    if (regs.length > 0) await cp.deregisterTargets(tg.arn, regs.map((r) => ({ id: r.id, port: r.port })));
    if (cp.registrationsOf(tg.arn).length === 0) {
      await cp.deleteTargetGroup(tg.arn);
      result.removed.push(`target group ${tg.name}`);
    }
  }
  return result;
}

/** Everything that can be known to fail before a change is made; throws ConfigInvalid and changes nothing. */
export async function checkDeclared(cp: ControlPlane, declared: DeclaredState, options: ApplyDeclaredOptions = {}): Promise<void> {
  checkImmutableFields(cp, declared);
  await checkListeners(cp, declared, options);
}

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
 * Every listener the file declares must be able to open before anything changes: its port must not
 * be another listener's, and a new address:port must be free on this machine.
 */
async function checkListeners(cp: ControlPlane, declared: DeclaredState, options: ApplyDeclaredOptions): Promise<void> {
  const all = [...cp.describeLoadBalancers(), ...cp.describeLoadBalancers({ type: 'classic' })];
  const existing = all.flatMap((lb) => cp.describeListeners({ loadBalancerArn: lb.arn }).map((l) => ({ ...l, lbName: lb.name })));
  for (const d of declared.loadBalancers) {
    for (const dl of d.listeners) {
      const address = dl.address ?? '0.0.0.0';
      const same = existing.find((l) => l.lbName === d.name && l.port === dl.port);
      const clash = existing.find(
        (l) =>
          l !== same &&
          !(l.lbName === d.name && l.source === 'config') &&
          l.port === dl.port &&
          (l.address === address || l.address === '0.0.0.0' || address === '0.0.0.0'),
      );
      if (clash !== undefined) {
        throw ebbError(
          'ConfigInvalid',
          `Listener ${d.name}:${dl.port} clashes with listener ${clash.arn} of load balancer '${clash.lbName}', created through the API; choose another port or delete that listener`,
        );
      }
      const heldByEbb = existing.some((l) => l.port === dl.port && (l.address === address || l.address === '0.0.0.0'));
      if (!heldByEbb && options.checkPort !== undefined) {
        const problem = await options.checkPort(address, dl.port);
        if (problem !== null) {
          throw ebbError(
            'ConfigInvalid',
            `Listener ${d.name}:${dl.port} cannot open ${address}:${dl.port} (${problem}); free the port or choose another. Nothing was changed`,
          );
        }
      }
    }
  }
}
