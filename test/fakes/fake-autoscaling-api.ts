import { EventEmitter } from 'node:events';
import type { AutoScalingApi } from '../../src/autoscaling/autoscaling-api.ts';
import type {
  AutoScalingGroupRecord,
  AutoScalingInstanceRecord,
  InstanceRefreshRecord,
  LaunchTemplateRecord,
  LifecycleHookRecord,
  ScalingActivityRecord,
} from '../../src/autoscaling/records.ts';

/**
 * A recording AutoScalingApi for the API handlers' tests: every method call is recorded (name and
 * arguments) and answers what the test set with `returns` (a value, or a function of the
 * arguments), `undefined` otherwise, or throws what it set with `fails`. It answers any method name,
 * so it keeps up with the facade as it grows; the handlers' types are checked against the real
 * interface.
 */
export interface RecordedCall {
  readonly method: string;
  readonly args: unknown[];
}

export class FakeAutoScalingApi {
  readonly calls: RecordedCall[] = [];
  readonly api: AutoScalingApi;
  readonly #results = new Map<string, (args: unknown[]) => unknown>();

  constructor(options: { region?: string; accountId?: string } = {}) {
    const fixed: Record<string, unknown> = {
      region: options.region ?? 'us-east-1',
      accountId: options.accountId ?? '123456789012',
      events: new EventEmitter(),
    };
    const results = this.#results;
    const calls = this.calls;
    this.api = new Proxy(
      {},
      {
        get(_target, prop) {
          if (typeof prop !== 'string') return undefined;
          if (prop in fixed) return fixed[prop];
          // Not a thenable: `await fake.api` must not find a `then` method.
          if (prop === 'then') return undefined;
          return (...args: unknown[]) => {
            calls.push({ method: prop, args });
            const result = results.get(prop);
            return result === undefined ? undefined : result(args);
          };
        },
      },
    ) as AutoScalingApi;
  }

  /** What `method` answers from now on: a value, or a function of its arguments. */
  returns(method: keyof AutoScalingApi, value: unknown): this {
    this.#results.set(method, typeof value === 'function' ? (value as (args: unknown[]) => unknown) : () => value);
    return this;
  }

  /** `method` throws `error` from now on (the handlers await it, so a throw is a rejection to them). */
  fails(method: keyof AutoScalingApi, error: Error): this {
    this.#results.set(method, () => {
      throw error;
    });
    return this;
  }

  /** The calls made so far, and forgets them. */
  take(): RecordedCall[] {
    return this.calls.splice(0);
  }
}

// ---------------------------------------------------------------- canned records

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);
export const SAMPLE_TIME = T0;
export const TEMPLATE_ID = 'lt-0123456789abcdef0';
export const GROUP_ARN =
  'arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:6a1c1b8e-0000-4000-8000-000000000001:autoScalingGroupName/web';
export const TG_ARN = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067';

export function sampleTemplate(overrides: Partial<LaunchTemplateRecord> = {}): LaunchTemplateRecord {
  return {
    id: TEMPLATE_ID,
    name: 'web-template',
    createdAt: T0,
    defaultVersion: 1,
    latestVersion: 2,
    versions: [],
    tags: [],
    source: 'api',
    ...overrides,
  };
}

export function sampleGroup(overrides: Partial<AutoScalingGroupRecord> = {}): AutoScalingGroupRecord {
  return {
    name: 'web',
    arn: GROUP_ARN,
    launchTemplate: { name: 'web-template', version: '$Latest' },
    minSize: 1,
    maxSize: 4,
    desiredCapacity: 2,
    targetGroupArns: [TG_ARN],
    loadBalancerNames: ['classic-web'],
    healthCheckType: 'ELB',
    healthCheckGracePeriodSeconds: 30,
    defaultInstanceWarmupSeconds: 10,
    terminationPolicies: ['OldestInstance', 'Default'],
    newInstancesProtectedFromScaleIn: false,
    tags: [{ key: 'team', value: 'edge' }],
    createdAt: T0,
    source: 'api',
    ...overrides,
  };
}

/** Cast, not built: the record gains members as the facade grows, and these tests read only the ones shown. */
export function sampleInstance(overrides: Partial<AutoScalingInstanceRecord> = {}): AutoScalingInstanceRecord {
  return {
    instanceId: 'i-0a1b2c3d4e5f60001',
    group: 'web',
    lifecycleState: 'InService',
    healthStatus: 'Healthy',
    protectedFromScaleIn: false,
    launchTemplate: { id: TEMPLATE_ID, name: 'web-template', version: 2 },
    origin: 'launched',
    address: '127.0.0.1',
    port: 41001,
    launchedAt: T0,
    inServiceAt: T0 + 5000,
    stateChangedAt: T0 + 5000,
    tags: [],
    entry: 'launch',
    ...overrides,
  } as AutoScalingInstanceRecord;
}

export function sampleActivity(overrides: Partial<ScalingActivityRecord> = {}): ScalingActivityRecord {
  return {
    activityId: '8c2a0f3e-0000-4000-8000-00000000a001',
    group: 'web',
    description: 'Terminating EC2 instance: i-0a1b2c3d4e5f60001',
    cause: 'At 2024-05-01T12:00:00Z instance i-0a1b2c3d4e5f60001 was taken out of service in response to a user request.',
    startTime: T0,
    statusCode: 'InProgress',
    progress: 0,
    details: '{"Instance":"i-0a1b2c3d4e5f60001","Port":41001}',
    ...overrides,
  };
}

export function sampleHook(overrides: Partial<LifecycleHookRecord> = {}): LifecycleHookRecord {
  return {
    group: 'web',
    name: 'drain-hook',
    transition: 'autoscaling:EC2_INSTANCE_TERMINATING',
    notificationTargetArn: 'http://127.0.0.1:9/hook',
    notificationMetadata: '{"team":"edge"}',
    heartbeatTimeoutSeconds: 120,
    defaultResult: 'CONTINUE',
    source: 'api',
    ...overrides,
  };
}

export function sampleRefresh(overrides: Partial<InstanceRefreshRecord> = {}): InstanceRefreshRecord {
  return {
    id: '0e151305-1e57-4a32-a256-1fd14157c5ec',
    group: 'web',
    status: 'InProgress',
    statusReason: 'Waiting for instances to warm up before continuing. For example: i-0a1b2c3d4e5f60002 is warming up.',
    startedAt: T0,
    preferences: {
      minHealthyPercentage: 90,
      maxHealthyPercentage: 120,
      instanceWarmupSeconds: 15,
      skipMatching: true,
      checkpointPercentages: [50, 100],
      checkpointDelaySeconds: 60,
    },
    target: { id: TEMPLATE_ID, version: '3' },
    previous: { id: TEMPLATE_ID, version: '2' },
    toReplace: ['i-0a1b2c3d4e5f60001', 'i-0a1b2c3d4e5f60002', 'i-0a1b2c3d4e5f60003', 'i-0a1b2c3d4e5f60004'],
    replaced: ['i-0a1b2c3d4e5f60001'],
    ...overrides,
  };
}
