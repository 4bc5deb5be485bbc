import type { InstanceRecord, ListenerRecord, LoadBalancerRecord, Tag, TargetGroupRecord } from '../domain/resources.ts';
import type {
  ClassicAttributesChange,
  CreateListenerInput,
  CreateLoadBalancerInput,
  CreateLoadBalancerStackInput,
  CreateTargetGroupInput,
  DeregisterOptions,
  ModifyListenerInput,
  TargetInput,
} from './inputs.ts';
import type { DrainRecord, ListenerCertificateView, LoadBalancerStack, TargetHealthDescription } from './outputs.ts';
import type { HealthCheckConfig } from '../domain/health-check.ts';
import type { ControlEvents } from './events.ts';
import type { TypedEmitter } from '../shared/typed-emitter.ts';
import type { CertificateCommands } from './certificates.ts';

/**
 * The control plane's facade: every command the API and the configuration translate into. Commands
 * validate, persist (resolving only once the change is durable), then apply. Errors are EbbError with
 * AWS codes (TargetGroupNotFound, ValidationError, ...). ARNs are the AWS form.
 */
export interface ControlApi {
  readonly events: TypedEmitter<ControlEvents>;
  readonly region: string;
  readonly accountId: string;
  /** Server certificates: ACM's ImportCertificate and the rest (certificates.ts). */
  readonly certificates: CertificateCommands;

  // Load balancers
  createLoadBalancer(input: CreateLoadBalancerInput): Promise<LoadBalancerRecord>;
  /** A load balancer with its target groups and listeners in one change (all or nothing). */
  createLoadBalancerStack(input: CreateLoadBalancerStackInput): Promise<LoadBalancerStack>;
  /** No filter: all (Classic ones only when `type` says so). Unknown ARN or name: LoadBalancerNotFound. */
  describeLoadBalancers(filter?: { arns?: readonly string[]; names?: readonly string[]; type?: 'elbv2' | 'classic' }): LoadBalancerRecord[];
  /** With its listeners; `withTargetGroups`: with the groups they forward to too, in the same commit. */
  deleteLoadBalancer(arn: string, options?: { readonly withTargetGroups?: boolean }): Promise<void>;
  /** The full set, defaults filled in. */
  describeLoadBalancerAttributes(arn: string): Record<string, string>;
  modifyLoadBalancerAttributes(arn: string, attributes: Readonly<Record<string, string>>): Promise<Record<string, string>>;
  /** A Classic load balancer's attributes, settings and groups' draining, in one change. */
  modifyClassicAttributes(arn: string, change: ClassicAttributesChange): Promise<LoadBalancerRecord>;

  // Listeners
  createListener(input: CreateListenerInput): Promise<ListenerRecord>;
  describeListeners(filter: { loadBalancerArn?: string; listenerArns?: readonly string[] }): ListenerRecord[];
  modifyListener(arn: string, input: ModifyListenerInput): Promise<ListenerRecord>;
  deleteListener(arn: string): Promise<void>;
  /** HTTPS and TLS listeners: the default certificate (isDefault), then those chosen by SNI; none for HTTP and TCP. */
  describeListenerCertificates(arn: string): ListenerCertificateView[];
  /** Certificates chosen by SNI; resolves with those asked for (isDefault false). */
  addListenerCertificates(arn: string, certificateArns: readonly string[]): Promise<ListenerCertificateView[]>;
  /** The default certificate cannot be removed: OperationNotPermitted. */
  removeListenerCertificates(arn: string, certificateArns: readonly string[]): Promise<void>;
  /** The attributes a listener of its protocol has (`tcp.idle_timeout.seconds` for TCP), defaults filled in. */
  describeListenerAttributes(arn: string): Record<string, string>;
  modifyListenerAttributes(arn: string, attributes: Readonly<Record<string, string>>): Promise<Record<string, string>>;

  // Target groups
  createTargetGroup(input: CreateTargetGroupInput): Promise<TargetGroupRecord>;
  describeTargetGroups(filter?: { arns?: readonly string[]; names?: readonly string[]; loadBalancerArn?: string }): TargetGroupRecord[];
  /** ARNs of the load balancers whose listeners forward to the group. */
  loadBalancersOfTargetGroup(arn: string): string[];
  modifyTargetGroup(arn: string, healthCheck: Partial<HealthCheckConfig>): Promise<TargetGroupRecord>;
  deleteTargetGroup(arn: string): Promise<void>;
  describeTargetGroupAttributes(arn: string): Record<string, string>;
  modifyTargetGroupAttributes(arn: string, attributes: Readonly<Record<string, string>>): Promise<Record<string, string>>;

  // Targets
  registerTargets(targetGroupArn: string, targets: readonly TargetInput[]): Promise<void>;
  deregisterTargets(targetGroupArn: string, targets: readonly TargetInput[], options?: DeregisterOptions): Promise<void>;
  /** No targets: every registered (and draining) one. Named but unregistered: unused / Target.NotRegistered. */
  describeTargetHealth(targetGroupArn: string, targets?: readonly TargetInput[]): TargetHealthDescription[];
  drainRecords(limit?: number): DrainRecord[];

  // Tags (load balancers, target groups, listeners, by ARN)
  addTags(arns: readonly string[], tags: readonly Tag[]): Promise<void>;
  removeTags(arns: readonly string[], keys: readonly string[]): Promise<void>;
  describeTags(arns: readonly string[]): Array<{ arn: string; tags: readonly Tag[] }>;

  // Instances (Classic ELB and Auto Scaling name targets by instance id)
  putInstance(instance: InstanceRecord): Promise<void>;
  /** Forgets an instance that no target group registers or drains any more (nothing otherwise). */
  deleteInstance(id: string): Promise<void>;
  describeInstances(): InstanceRecord[];
}
