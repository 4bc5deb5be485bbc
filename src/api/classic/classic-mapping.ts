import { createHash } from 'node:crypto';
import type { ControlApi } from '../../control/control-api.ts';
import type { TargetHealthDescription } from '../../control/inputs.ts';
import type { HealthCheckConfig } from '../../domain/health-check.ts';
import type { ListenerRecord, LoadBalancerRecord, TargetGroupRecord } from '../../domain/resources.ts';
import { EbbError, ebbError } from '../../shared/errors.ts';

/**
 * How a Classic load balancer lives in the control plane, which knows only ELBv2 resources:
 *
 * - the load balancer is a facade load balancer of type `classic` (ARN `…:loadbalancer/NAME`);
 * - each distinct InstancePort gets one target group, named `classic-<lbname>-<port>` (or
 *   `clb-<hash>-<port>` when that would pass 32 characters);
 * - each Classic listener is a facade listener on LoadBalancerPort forwarding to the group of its
 *   InstancePort; the load balancer's groups are those its listeners forward to (ELBv2
 *   DescribeTargetGroups leaves them out of its listing);
 * - instances are registered by id in every group of the load balancer (the facade resolves ids to
 *   addresses through its instance directory);
 * - ConnectionDraining is the groups' `deregistration_delay.timeout_seconds`: the Timeout when
 *   enabled, 0 when disabled (0 closes what is in flight at once, as Classic does with draining off).
 *   The Timeout is also kept in the load balancer's `classic` settings so it is remembered while
 *   draining is off; Enabled is read back from the groups, the one source of truth;
 * - CrossZoneLoadBalancing is kept in the `classic` settings too (ebb has no zones to balance across);
 * - no setting is kept in tags, which any caller may change; ebb reads no tag;
 * - ConnectionSettings.IdleTimeout is the load balancer attribute `idle_timeout.timeout_seconds`;
 * - the one Classic health check is applied to every group.
 */

export const DELAY_KEY = 'deregistration_delay.timeout_seconds';
export const DEFAULT_DRAINING_TIMEOUT = 300;

export interface ClassicLoadBalancer {
  readonly lb: LoadBalancerRecord;
  /** Its target groups, by instance port. */
  readonly groups: readonly TargetGroupRecord[];
  readonly listeners: readonly ListenerRecord[];
}

export function classicGroupName(lbName: string, instancePort: number): string {
  const readable = `classic-${lbName}-${instancePort}`;
  if (readable.length <= 32) return readable;
  const hash = createHash('sha256').update(lbName).digest('hex').slice(0, 16);
  return `clb-${hash}-${instancePort}`;
}

export function notFound(name: string): EbbError {
  return ebbError('LoadBalancerNotFound', `There is no ACTIVE Load Balancer named '${name}'`);
}

/** The Classic load balancers with these names (all when none given); an unknown name is LoadBalancerNotFound. */
export function findClassicLoadBalancers(control: ControlApi, names?: readonly string[]): LoadBalancerRecord[] {
  if (names === undefined || names.length === 0) return control.describeLoadBalancers({ type: 'classic' });
  const all = control.describeLoadBalancers({ type: 'classic' });
  const out: LoadBalancerRecord[] = [];
  for (const name of names) {
    const lb = all.find((l) => l.name === name);
    if (lb === undefined) throw notFound(name);
    out.push(lb);
  }
  return out;
}

/** One Classic load balancer with its groups and listeners. */
export function findClassic(control: ControlApi, name: string): ClassicLoadBalancer {
  const [lb] = findClassicLoadBalancers(control, [name]);
  if (lb === undefined) throw notFound(name);
  return expand(control, lb);
}

export function expand(control: ControlApi, lb: LoadBalancerRecord): ClassicLoadBalancer {
  const groups = [...control.describeTargetGroups({ loadBalancerArn: lb.arn })].sort((a, b) => a.port - b.port);
  const listeners = [...control.describeListeners({ loadBalancerArn: lb.arn })].sort((a, b) => a.port - b.port);
  return { lb, groups, listeners };
}

export interface DrainingSettings {
  readonly enabled: boolean;
  readonly timeout: number;
}

export function drainingSettings(control: ControlApi, clb: ClassicLoadBalancer): DrainingSettings {
  const first = clb.groups[0];
  const delay = first === undefined ? DEFAULT_DRAINING_TIMEOUT : Number(control.describeTargetGroupAttributes(first.arn)[DELAY_KEY] ?? DEFAULT_DRAINING_TIMEOUT);
  return { enabled: delay > 0, timeout: clb.lb.classic?.drainingTimeoutSeconds ?? (delay > 0 ? delay : DEFAULT_DRAINING_TIMEOUT) };
}

/** The Classic `HealthCheck.Target` string for a group's health check. */
export function healthTarget(group: TargetGroupRecord): string {
  const hc = group.healthCheck;
  const port = hc.port === 'traffic-port' ? group.port : hc.port;
  return hc.protocol === 'TCP' ? `TCP:${port}` : `${hc.protocol}:${port}${hc.path}`;
}

/** Parses `HTTP:80/path`, `HTTPS:443/path`, `TCP:5000` or `SSL:5000` into health-check fields. */
export function parseHealthTarget(target: string): Pick<HealthCheckConfig, 'protocol' | 'port' | 'path'> {
  const m = /^(HTTP|HTTPS|TCP|SSL):(\d{1,5})(\/.*)?$/i.exec(target);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port < 1 || port > 65535) {
    throw ebbError(
      'ValidationError',
      `HealthCheck.Target '${target}' is not valid: use PROTOCOL:PORT for TCP or SSL (TCP:5000) and PROTOCOL:PORT/PATH for HTTP or HTTPS (HTTP:80/health), with a port from 1 to 65535`,
    );
  }
  const protocol = (m[1] ?? '').toUpperCase();
  const path = m[3];
  if (protocol === 'HTTP' || protocol === 'HTTPS') {
    if (path === undefined) throw ebbError('ValidationError', `HealthCheck.Target '${target}' needs a path for ${protocol}, e.g. ${protocol}:${port}/`);
    if (path.length > 1024) throw ebbError('ValidationError', 'HealthCheck.Target path must be at most 1024 characters');
    return { protocol, port, path };
  }
  if (path !== undefined) throw ebbError('ValidationError', `HealthCheck.Target '${target}' cannot have a path for ${protocol}; use ${protocol}:${port}`);
  // An SSL check is a TCP connect check in ebb: it proves the port accepts connections.
  return { protocol: 'TCP', port, path: '/' };
}

/** What Classic's DescribeInstanceHealth says for one ELBv2 target health (AWS Classic ELB API reference, DescribeInstanceHealth: InstanceState and ReasonCode). */
export interface ClassicInstanceState {
  readonly InstanceId: string;
  readonly State: 'InService' | 'OutOfService' | 'Unknown';
  readonly ReasonCode: 'ELB' | 'Instance' | 'N/A';
  readonly Description: string;
}

export const NOT_REGISTERED = 'Instance is not currently registered with the LoadBalancer.';
export const DEREGISTRATION_IN_PROGRESS = 'Instance deregistration currently in progress.';

export function classicState(id: string, d: TargetHealthDescription | undefined): ClassicInstanceState {
  if (d === undefined) return { InstanceId: id, State: 'OutOfService', ReasonCode: 'N/A', Description: NOT_REGISTERED };
  const { state, reason } = d.health;
  switch (state) {
    case 'healthy':
      return { InstanceId: id, State: 'InService', ReasonCode: 'N/A', Description: 'N/A' };
    case 'draining':
      return { InstanceId: id, State: 'InService', ReasonCode: 'N/A', Description: DEREGISTRATION_IN_PROGRESS };
    case 'unused':
      return { InstanceId: id, State: 'OutOfService', ReasonCode: 'N/A', Description: NOT_REGISTERED };
    case 'unhealthy':
    case 'unhealthy.draining':
      return {
        InstanceId: id,
        State: 'OutOfService',
        ReasonCode: 'Instance',
        Description: 'Instance has failed at least the UnhealthyThreshold number of health checks consecutively.',
      };
    case 'initial':
      return reason === 'Elb.RegistrationInProgress'
        ? { InstanceId: id, State: 'OutOfService', ReasonCode: 'ELB', Description: 'Instance registration is still in progress.' }
        : {
            InstanceId: id,
            State: 'OutOfService',
            ReasonCode: 'Instance',
            Description: 'Instance has not passed the configured HealthyThreshold number of health checks consecutively.',
          };
    case 'unavailable':
      return { InstanceId: id, State: 'Unknown', ReasonCode: 'ELB', Description: 'Health checks are disabled for this instance.' };
    default: {
      const never: never = state;
      return { InstanceId: id, State: 'Unknown', ReasonCode: 'ELB', Description: `Unknown state ${String(never)}` };
    }
  }
}

/**
 * Each instance's description, from the first group that knows it (every group holds the same
 * instances with the same health check). Ids: registered and draining instances, in first-seen order.
 */
export function instanceDescriptions(control: ControlApi, clb: ClassicLoadBalancer): Map<string, TargetHealthDescription> {
  const out = new Map<string, TargetHealthDescription>();
  for (const g of clb.groups) {
    for (const d of control.describeTargetHealth(g.arn)) {
      if (d.health.state === 'unused') continue;
      if (!out.has(d.id)) out.set(d.id, d);
    }
  }
  return out;
}

/** Registered instances (draining ones have been deregistered and are not listed). */
export function registeredInstanceIds(control: ControlApi, clb: ClassicLoadBalancer): string[] {
  return [...instanceDescriptions(control, clb).values()].filter((d) => d.health.state !== 'draining').map((d) => d.id);
}
