/**
 * What ebb's JSON API answers (docs/api.md, `GET /ebb/v1/openapi.json`), as far as the client reads
 * it. The client may not import the API's own builders (docs/architecture.md: cli talks HTTP and
 * imports only domain and shared), so these mirror the documented shapes; unknown fields are ignored
 * and printed through unchanged with --json.
 */

export interface DrainTimes {
  readonly startedAt: string;
  readonly deadline: string;
  readonly timeoutSeconds: number;
  readonly elapsedMs: number;
  readonly timeLeftMs: number;
}

export interface TargetView {
  readonly targetGroupArn: string;
  readonly targetGroupName: string;
  readonly targetId: string;
  readonly port: number;
  readonly target: string;
  readonly state: string;
  readonly reason: string | null;
  readonly description: string | null;
  readonly routed: boolean;
  readonly requestsInFlight: number;
  readonly tunnelsOpen: number;
  readonly connections: number;
  readonly drain: DrainTimes | null;
}

export interface DrainView extends DrainTimes {
  readonly targetGroupArn: string;
  readonly targetGroupName: string;
  readonly targetId: string;
  readonly port: number;
  readonly target: string;
  readonly requestsInFlight: number;
  readonly tunnelsOpen: number;
  readonly connections: number;
}

export type DrainOutcome = 'idle' | 'deadline' | 'cancelled';

export interface DrainRecordView {
  readonly id: string;
  readonly targetGroupArn: string;
  readonly targetGroupName: string;
  readonly targetId: string;
  readonly port: number;
  readonly target: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
  readonly timeoutSeconds: number;
  readonly outcome: DrainOutcome;
  readonly requestsCompleted: number;
  readonly requestsCut: number;
  readonly tunnelsClosed: number;
  readonly connectionsClosed: number;
  /** Absent from an older ebb's answers. */
  readonly flowsLeftOpen?: number;
}

export interface ListenerView {
  readonly arn: string;
  readonly protocol: string;
  readonly port: number;
  readonly address: string;
  readonly targetGroupArn: string | null;
}

export interface LoadBalancerView {
  readonly arn: string;
  readonly name: string;
  readonly type: string;
  readonly scheme: string;
  readonly listeners: readonly ListenerView[];
}

export interface TargetGroupView {
  readonly arn: string;
  readonly name: string;
  readonly protocol: string;
  readonly port: number;
  readonly targetType: string;
  readonly loadBalancerArns: readonly string[];
  readonly deregistrationDelaySeconds: number;
  readonly targets: readonly TargetView[];
}

/** `GET /ebb/v1/status`. */
export interface StatusView {
  readonly at: string;
  readonly region: string;
  readonly snapshot: { readonly latestVersion: number; readonly appliedVersion: number };
  readonly loadBalancers: readonly LoadBalancerView[];
  readonly targetGroups: readonly TargetGroupView[];
  readonly drains: readonly DrainView[];
}

/** `POST /ebb/v1/register` and `/deregister`. */
export interface ChangeAnswer {
  readonly targetGroupArn: string;
  readonly targetGroupName: string;
  readonly timeoutSeconds?: number;
  readonly targets: readonly TargetView[];
}

/** `GET /ebb/v1/wait`. */
export interface WaitAnswer {
  readonly for: 'not-routed' | 'drained';
  readonly outcome: 'not-routed' | 'drained' | 'timeout' | 'not-draining';
  readonly reached: boolean;
  readonly waitedMs: number;
  readonly target: TargetView;
  readonly snapshot: { readonly latestVersion: number; readonly appliedVersion: number };
  readonly drain: DrainRecordView | null;
}

/** `GET /ebb/v1/drains`. */
export interface DrainsAnswer {
  readonly at: string;
  readonly drains: readonly DrainView[];
}

/** `GET /ebb/v1/drain-records`. */
export interface DrainRecordsAnswer {
  readonly records: readonly DrainRecordView[];
  readonly limit: number;
}
