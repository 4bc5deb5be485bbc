/**
 * An instance's place behind the group's load balancers, through the control plane: registered by
 * instance id on its own port in every target group of the group (and of its Classic load
 * balancers), deregistered before it leaves, and "drained" once no target group has it registered
 * or draining. This is the only room that calls the control plane's target commands.
 */
import type { ControlApi } from '../control/control-api.ts';
import { ebbError } from '../shared/errors.ts';
import type { AutoScalingGroupRecord, AutoScalingInstanceRecord } from './records.ts';

export class LoadBalancing {
  readonly #control: ControlApi;

  constructor(control: ControlApi) {
    this.#control = control;
  }

  /** Target group ARNs (ELBv2) of the group and of its Classic load balancers, each once; ones since deleted are left out. */
  targetGroupsOf(group: Pick<AutoScalingGroupRecord, 'targetGroupArns' | 'loadBalancerNames'>): string[] {
    const arns = new Set<string>();
    const known = new Set(this.#control.describeTargetGroups().map((tg) => tg.arn));
    for (const arn of group.targetGroupArns) if (known.has(arn)) arns.add(arn);
    for (const name of group.loadBalancerNames) {
      for (const arn of this.classicTargetGroups(name)) arns.add(arn);
    }
    return [...arns];
  }

  /** The target groups a Classic load balancer's listeners forward to ([] when it is gone). */
  classicTargetGroups(name: string): string[] {
    const lb = this.#control.describeLoadBalancers({ type: 'classic' }).find((l) => l.name === name);
    if (lb === undefined) return [];
    return this.#control.describeListeners({ loadBalancerArn: lb.arn }).flatMap((l) => l.defaultActions.map((a) => a.targetGroupArn));
  }

  /** The instances the control plane knows by id (declared under `instances:` or put through the API). */
  knownInstances(): Array<{ id: string; address: string }> {
    return this.#control.describeInstances().map((i) => ({ id: i.id, address: i.address }));
  }

  /** The port an attached server is registered on: its group's first target group's port (80 without one). */
  defaultPort(group: Pick<AutoScalingGroupRecord, 'targetGroupArns' | 'loadBalancerNames'>): number {
    const [first] = this.targetGroupsOf(group);
    return this.#control.describeTargetGroups().find((tg) => tg.arn === first)?.port ?? 80;
  }

  /** Refuses target groups that do not exist or cannot take instances, and Classic names that are unknown. */
  checkAttachments(targetGroupArns: readonly string[], loadBalancerNames: readonly string[]): void {
    const groups = new Map(this.#control.describeTargetGroups().map((tg) => [tg.arn, tg]));
    for (const arn of targetGroupArns) {
      const tg = groups.get(arn);
      if (tg === undefined) throw ebbError('ValidationError', `Provided Target Groups may not be valid: ${arn} does not exist. Create it first, or check the ARN.`);
      if (tg.targetType !== 'instance') {
        throw ebbError('ValidationError', `Target group ${tg.name} has target type ${tg.targetType}; Auto Scaling registers instances, so it needs target type instance.`);
      }
    }
    const classic = new Set(this.#control.describeLoadBalancers({ type: 'classic' }).map((l) => l.name));
    for (const name of loadBalancerNames) {
      if (!classic.has(name)) throw ebbError('ValidationError', `Provided Load Balancers may not be valid: no Classic load balancer is named ${name}.`);
    }
  }

  /** Registers the instance in `targetGroupArns` (its address first, so instance targets resolve). */
  async register(instance: AutoScalingInstanceRecord, targetGroupArns: readonly string[]): Promise<void> {
    if (targetGroupArns.length === 0) return;
    const known = this.#control.describeInstances().find((i) => i.id === instance.instanceId);
    if (known?.address !== instance.address) await this.#control.putInstance({ id: instance.instanceId, address: instance.address });
    for (const arn of targetGroupArns) await this.#control.registerTargets(arn, [{ id: instance.instanceId, port: instance.port }]);
  }

  /** Deregisters the instance from each of `targetGroupArns` where it is registered; its drains start. */
  async deregister(instance: AutoScalingInstanceRecord, targetGroupArns: readonly string[], options: { timeoutSeconds?: number } = {}): Promise<void> {
    for (const arn of targetGroupArns) {
      if (this.#registered(arn, instance)) await this.#control.deregisterTargets(arn, [{ id: instance.instanceId, port: instance.port }], options);
    }
  }

  /** The control plane forgets a launched instance once it is gone (it is registered nowhere by then). */
  async forget(instance: AutoScalingInstanceRecord): Promise<void> {
    if (instance.origin === 'launched') await this.#control.deleteInstance(instance.instanceId);
  }

  /** Every target group that has the instance (by id and port) registered or draining, whoever registered it. */
  holding(instance: AutoScalingInstanceRecord): string[] {
    return this.#control
      .describeTargetGroups()
      .map((tg) => tg.arn)
      .filter((arn) => this.#registered(arn, instance) || this.#state(arn, instance) === 'draining');
  }

  /** True when none of `targetGroupArns` has the instance registered, and no target group at all drains it. */
  drained(instance: AutoScalingInstanceRecord, targetGroupArns: readonly string[]): boolean {
    if (targetGroupArns.some((arn) => this.#registered(arn, instance))) return false;
    return this.#control.describeTargetGroups().every((tg) => this.#state(tg.arn, instance) !== 'draining');
  }

  /** Every target group has the instance healthy (a group no listener uses counts, as it cannot be checked). */
  healthy(instance: AutoScalingInstanceRecord, targetGroupArns: readonly string[]): boolean {
    return targetGroupArns.every((arn) => {
      const h = this.#health(arn, instance);
      return h?.state === 'healthy' || (h?.state === 'unused' && h.reason === 'Target.NotInUse');
    });
  }

  /** Some target group reports the instance unhealthy. */
  unhealthy(instance: AutoScalingInstanceRecord, targetGroupArns: readonly string[]): boolean {
    return targetGroupArns.some((arn) => this.#health(arn, instance)?.state === 'unhealthy');
  }

  #registered(arn: string, instance: AutoScalingInstanceRecord): boolean {
    const h = this.#health(arn, instance);
    return h !== undefined && h.state !== 'draining' && !(h.state === 'unused' && h.reason === 'Target.NotRegistered');
  }

  #state(arn: string, instance: AutoScalingInstanceRecord): string | undefined {
    return this.#health(arn, instance)?.state;
  }

  #health(arn: string, instance: AutoScalingInstanceRecord): { state: string; reason?: string | undefined } | undefined {
    try {
      const [d] = this.#control.describeTargetHealth(arn, [{ id: instance.instanceId, port: instance.port }]);
      return d === undefined ? undefined : { state: d.health.state, reason: d.health.reason };
    } catch {
      return undefined; // the target group is gone: nothing is registered there
    }
  }
}
