/**
 * The OpenAPI 3.1 document of ebb's own API (`GET /ebb/v1/openapi.json`), written by hand beside the
 * builders in views.ts and ebb-api.ts. Every object schema lists all its properties as required and
 * allows no others, so a test can hold each answer to it field by field (test/integration/ebb-api.test.ts).
 * OpenAPI 3.1 schemas are JSON Schema 2020-12 (https://spec.openapis.org/oas/v3.1.0#schema-object),
 * so a nullable field is `type: [T, 'null']`.
 */

type Schema = Record<string, unknown>;

const str = (description?: string): Schema => ({ type: 'string', ...(description !== undefined && { description }) });
const int = (description?: string): Schema => ({ type: 'integer', ...(description !== undefined && { description }) });
const num = (description?: string): Schema => ({ type: 'number', ...(description !== undefined && { description }) });
const bool = (description?: string): Schema => ({ type: 'boolean', ...(description !== undefined && { description }) });
const time = (description: string): Schema => ({ type: 'string', format: 'date-time', description });
const nullable = (s: Schema): Schema => ({ ...s, type: [s['type'], 'null'] });
const oneOrNull = (s: Schema): Schema => ({ oneOf: [s, { type: 'null' }] });
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const arr = (items: Schema, description?: string): Schema => ({ type: 'array', items, ...(description !== undefined && { description }) });
const enumOf = (values: readonly string[], description?: string): Schema => ({ type: 'string', enum: [...values], ...(description !== undefined && { description }) });
const obj = (properties: Record<string, Schema>, description?: string): Schema => ({
  type: 'object',
  ...(description !== undefined && { description }),
  properties,
  required: Object.keys(properties),
  additionalProperties: false,
});

const TARGET_STATES = ['initial', 'healthy', 'unhealthy', 'unhealthy.draining', 'unused', 'draining', 'unavailable'];

const targetFields = {
  targetGroupArn: str(),
  targetGroupName: str('Empty when the group was deleted since.'),
  targetId: str('An IP address or an instance id.'),
  port: int(),
  target: str('ID:PORT, an IPv6 address in brackets.'),
};

const drainTimes = {
  startedAt: time('When the deregistration was committed.'),
  deadline: time('When what is still in flight is cut.'),
  timeoutSeconds: int('This drain\'s delay: the call\'s own, else the group\'s deregistration_delay.timeout_seconds.'),
  elapsedMs: int(),
  timeLeftMs: int('Until the deadline; 0 once it passed.'),
};

const work = {
  requestsInFlight: int('HTTP requests sent to the target and not finished, over every data plane.'),
  tunnelsOpen: int('Upgraded (WebSocket) tunnels open to the target.'),
  connections: int('Connections open to the target, busy or idle.'),
};

const drainRecordProps = {
  id: str(),
  ...targetFields,
  startedAt: time('When the drain began.'),
  endedAt: time('When it ended.'),
  durationMs: int(),
  timeoutSeconds: int(),
  outcome: enumOf(['idle', 'deadline', 'cancelled'], 'idle: nothing was left in flight; deadline: the delay ran out and what remained was cut; cancelled: registered again, or its group was deleted.'),
  requestsCompleted: int('Requests that finished during the drain.'),
  requestsCut: int('Requests cut at the deadline.'),
  tunnelsClosed: int('Tunnels closed at the deadline.'),
  connectionsClosed: int('Connections closed at the deadline.'),
  flowsLeftOpen: int("A TCP group's flows left open at the deadline (without deregistration_delay.connection_termination.enabled they live on until they close, as on NLB); 0 otherwise."),
};

const health = obj({ state: enumOf(TARGET_STATES), reason: nullable(str()), description: nullable(str()) });

const schemas: Record<string, Schema> = {
  Error: obj(
    {
      code: str('A code of docs/errors.md, the same as the AWS API answers with (TargetGroupNotFound, InvalidTarget, ValidationError, SignatureDoesNotMatch, ...).'),
      message: str('What was wrong and what to do.'),
      requestId: str(),
    },
    'Every error answer. The HTTP status is the code\'s (docs/errors.md).',
  ),
  DrainTimes: obj(drainTimes),
  Target: obj(
    {
      ...targetFields,
      state: enumOf(TARGET_STATES, 'The ELBv2 target health state.'),
      reason: nullable(str('The ELBv2 reason code (Target.DeregistrationInProgress, Elb.InitialHealthChecking, ...); null when healthy.')),
      description: nullable(str()),
      routed: bool('Whether the newest routing snapshot sends new requests to it.'),
      ...work,
      drain: oneOrNull(ref('DrainTimes')),
    },
    'A registration and what is happening to it now. A target named in a query that is not registered is state unused, reason Target.NotRegistered.',
  ),
  Drain: obj({ ...targetFields, ...drainTimes, ...work }, 'A drain in progress.'),
  DrainRecord: obj(drainRecordProps, 'A finished drain.'),
  Listener: obj({ arn: str(), protocol: str(), port: int(), address: str(), targetGroupArn: nullable(str()) }),
  LoadBalancer: obj({ arn: str(), name: str(), type: enumOf(['application', 'network', 'classic']), scheme: enumOf(['internet-facing', 'internal']), listeners: arr(ref('Listener')) }),
  TargetGroup: obj({
    arn: str(),
    name: str(),
    protocol: str(),
    port: int(),
    targetType: enumOf(['instance', 'ip']),
    loadBalancerArns: arr(str()),
    deregistrationDelaySeconds: int(),
    targets: arr(ref('Target')),
  }),
  Snapshot: obj({
    latestVersion: int('The newest routing snapshot published.'),
    appliedVersion: int('The oldest version any data plane has applied: every data plane routes from it or a newer one.'),
  }),
  Status: obj({
    at: time('When the answer was built.'),
    region: str(),
    snapshot: ref('Snapshot'),
    loadBalancers: arr(ref('LoadBalancer')),
    targetGroups: arr(ref('TargetGroup')),
    drains: arr(ref('Drain')),
  }),
  Targets: obj({ at: time('When the answer was built.'), targets: arr(ref('Target')) }),
  Drains: obj({ at: time('When the answer was built.'), drains: arr(ref('Drain')) }),
  DrainRecords: obj({ records: arr(ref('DrainRecord'), 'Newest first.'), limit: int() }),
  Warning: obj({
    kind: enumOf(['no-samples', 'few-samples', 'delay-below-recommendation', 'requests-outlast-recommendation']),
    message: str(),
  }),
  Recommendation: obj(
    {
      targetGroupArn: str(),
      targetGroupName: str(),
      configuredDelaySeconds: int('deregistration_delay.timeout_seconds now.'),
      sampleSize: int('Requests answered by the group\'s targets in the window.'),
      window: obj({
        from: nullable(time('The oldest sample counted.')),
        to: nullable(time('The newest sample counted.')),
        maxSamples: int('Samples kept per group (the newest).'),
        maxAgeSeconds: int('Samples older than this are not counted.'),
      }),
      p99TargetResponseMs: nullable(num('p99 of the target response time (request sent to response head), as CloudWatch\'s TargetResponseTime.')),
      p99RequestDurationMs: nullable(num('p99 of whole requests, until the response was sent: what a drain waits for.')),
      marginPercent: obj({ low: int(), high: int() }),
      recommendedDelaySeconds: nullable(int('p99TargetResponseMs plus the high margin, in whole seconds rounded up; null without samples.')),
      recommendedRangeSeconds: oneOrNull(obj({ low: int(), high: int() })),
      warnings: arr(ref('Warning')),
    },
    'The recommended deregistration delay of one group.',
  ),
  Recommendations: obj({ at: time('When the answer was built.'), targetGroups: arr(ref('Recommendation')) }),
  TargetRef: {
    oneOf: [
      { type: 'string', description: 'ID:PORT ([IPv6]:PORT), or an ID alone for the group\'s port.', examples: ['10.0.0.1:80', 'i-0abc123:8080'] },
      { type: 'object', properties: { id: str(), port: int() }, required: ['id'], additionalProperties: false },
    ],
  },
  DeregisterRequest: {
    type: 'object',
    properties: {
      targetGroup: str('A target group\'s name or ARN.'),
      targets: { type: 'array', items: ref('TargetRef'), minItems: 1, maxItems: 1000 },
      timeoutSeconds: { type: 'integer', minimum: 0, maximum: 3600, description: 'This deregistration\'s delay, instead of the group\'s deregistration_delay.timeout_seconds.' },
    },
    required: ['targetGroup', 'targets'],
    additionalProperties: false,
  },
  RegisterRequest: {
    type: 'object',
    properties: { targetGroup: str('A target group\'s name or ARN.'), targets: { type: 'array', items: ref('TargetRef'), minItems: 1, maxItems: 1000 } },
    required: ['targetGroup', 'targets'],
    additionalProperties: false,
  },
  Deregistered: obj({ targetGroupArn: str(), targetGroupName: str(), timeoutSeconds: int('The delay the drains got.'), targets: arr(ref('Target')) }),
  Registered: obj({ targetGroupArn: str(), targetGroupName: str(), targets: arr(ref('Target')) }),
  WaitAnswer: obj({
    for: enumOf(['not-routed', 'drained']),
    outcome: enumOf(
      ['not-routed', 'drained', 'timeout', 'not-draining'],
      'not-routed / drained: the condition holds. timeout: it did not within the timeout. not-draining (for=drained): the target is registered and not draining, so there is no drain to wait for.',
    ),
    reached: bool('outcome is not-routed or drained.'),
    waitedMs: int(),
    target: ref('Target'),
    snapshot: ref('Snapshot'),
    drain: oneOrNull(ref('DrainRecord')),
  }),
  // Event payloads: the `data` line of each SSE event is one of these, with `type` the event name.
  TargetStateEvent: obj({ type: enumOf(['target:state']), at: time('When it changed.'), ...targetFields, from: health, to: health }),
  DrainStartEvent: obj({ type: enumOf(['drain:start']), at: time('When it began.'), ...targetFields, startedAt: time('When it began.'), deadline: time('The deadline.'), timeoutSeconds: int() }),
  DrainProgressEvent: obj({ type: enumOf(['drain:progress']), at: time('When it was measured.'), ...targetFields, ...drainTimes, ...work }),
  DrainEndEvent: obj({ type: enumOf(['drain:end']), at: time('When it ended.'), ...drainRecordProps }),
  ConfigReloadEvent: obj({
    type: enumOf(['config:reload']),
    at: time('When the reload ended.'),
    file: str(),
    outcome: enumOf(['applied', 'refused', 'restored', 'restore-failed']),
    applied: arr(str()),
    kept: arr(str()),
    error: nullable(str()),
  }),
  AutoScalingActivityEvent: obj({
    type: enumOf(['autoscaling:activity']),
    at: time('When it began, or ended.'),
    activityId: str(),
    autoScalingGroupName: str(),
    description: str(),
    cause: str(),
    statusCode: str('As DescribeScalingActivities says: InProgress, WaitingForELBConnectionDraining, MidLifecycleAction, PreInService, Successful, Failed, Cancelled.'),
    statusMessage: nullable(str()),
    progress: int(),
    startTime: time('When it began.'),
    endTime: nullable(time('When it ended.')),
  }),
  AutoScalingLifecycleEvent: obj({
    type: enumOf(['autoscaling:lifecycle']),
    at: time('When it moved.'),
    autoScalingGroupName: nullable(str()),
    instanceId: str(),
    from: nullable(str('The Auto Scaling lifecycle state it left (null: new).')),
    to: str('The lifecycle state it entered, as AWS names them.'),
    lifecycleActions: arr(
      obj({ lifecycleHookName: str(), lifecycleActionToken: str(), lifecycleTransition: str(), heartbeatDeadline: time('When the action times out unless completed or extended.') }),
    ),
  }),
  // The stream's own events: stream:ready carries heartbeatMs, the last two a reason.
  StreamEvent: {
    type: 'object',
    properties: {
      type: enumOf(['stream:ready', 'stream:dropped', 'stream:closing']),
      at: time('When it was sent.'),
      heartbeatMs: int('stream:ready: the heartbeat interval.'),
      reason: str('stream:dropped, stream:closing: why the stream ends.'),
    },
    required: ['type', 'at'],
    additionalProperties: false,
  },
};

const json = (schema: string, description: string): Schema => ({ description, content: { 'application/json': { schema: ref(schema) } } });
const errors = (...codes: string[]): Record<string, Schema> => ({
  '4XX': json('Error', `A refusal: ${codes.join(', ')}, or an authentication error (MissingAuthenticationToken, IncompleteSignature, InvalidClientTokenId, SignatureDoesNotMatch, RequestExpired).`),
  '5XX': json('Error', 'InternalFailure (the log has the details under the request id) or ServiceUnavailable (ebb is stopping, or too many streams or waits).'),
});
const param = (name: string, description: string, schema: Schema = str(), required = false): Schema => ({ name, in: 'query', required, description, schema });
const groupParam = (required: boolean): Schema => param('targetGroup', 'A target group\'s name or ARN.', str(), required);
const targetParam = (required: boolean): Schema =>
  param('target', 'ID:PORT ([IPv6]:PORT, i-0abc:80), or an ID alone for the group\'s port.', str(), required);

const paths: Record<string, Schema> = {
  '/ebb/v1/status': {
    get: {
      operationId: 'getStatus',
      summary: 'Load balancers with their listeners, target groups with their targets, and the drains in progress',
      responses: { '200': json('Status', 'Everything at once, as `ebb status` and the dashboard show it.'), ...errors('none') },
    },
  },
  '/ebb/v1/targets': {
    get: {
      operationId: 'getTargets',
      summary: 'Targets with state, reason, requests in flight, tunnels, connections and drain times',
      parameters: [groupParam(false), targetParam(false)],
      responses: { '200': json('Targets', 'Every target of every group, of one group, or one target (target needs targetGroup).'), ...errors('TargetGroupNotFound', 'InvalidTarget', 'MissingParameter', 'ValidationError') },
    },
  },
  '/ebb/v1/drains': {
    get: {
      operationId: 'getDrains',
      summary: 'Drains in progress, with start, deadline and time left',
      parameters: [groupParam(false)],
      responses: { '200': json('Drains', 'Drains in progress.'), ...errors('TargetGroupNotFound', 'ValidationError') },
    },
  },
  '/ebb/v1/drain-records': {
    get: {
      operationId: 'getDrainRecords',
      summary: 'Finished drains, newest first',
      parameters: [
        param('targetGroup', 'A group\'s name or ARN (matched against the records, so a deleted group\'s records are found too).'),
        param('target', 'ID:PORT, or an ID alone for every port.'),
        param('outcome', 'Only drains that ended so.', enumOf(['idle', 'deadline', 'cancelled'])),
        param('since', 'Only drains that ended at or after this time (RFC 3339 or epoch ms).'),
        param('until', 'Only drains that ended before this time (RFC 3339 or epoch ms).'),
        param('limit', 'At most this many (1-1000, default 100).', { type: 'integer', minimum: 1, maximum: 1000 }),
      ],
      responses: { '200': json('DrainRecords', 'The records ebb keeps (the newest 1000).'), ...errors('ValidationError', 'InvalidTarget') },
    },
  },
  '/ebb/v1/recommended-delay': {
    get: {
      operationId: 'getRecommendedDelay',
      summary: 'The recommended deregistration delay per group, from the observed p99 target response time plus 20-30 %',
      parameters: [groupParam(false)],
      responses: { '200': json('Recommendations', 'One entry per group.'), ...errors('TargetGroupNotFound', 'ValidationError') },
    },
  },
  '/ebb/v1/deregister': {
    post: {
      operationId: 'deregister',
      summary: 'Deregister targets, optionally with this call\'s own delay; answers once the drains have begun',
      requestBody: { required: true, content: { 'application/json': { schema: ref('DeregisterRequest') } } },
      responses: {
        '200': json('Deregistered', 'The targets as they are once the deregistration is committed: draining, or already unused when nothing was in flight.'),
        ...errors('TargetGroupNotFound', 'InvalidTarget (a target not registered: nothing is deregistered)', 'ValidationError', 'MissingParameter'),
      },
    },
  },
  '/ebb/v1/register': {
    post: {
      operationId: 'register',
      summary: 'Register targets (a draining one is registered again, which cancels its drain)',
      requestBody: { required: true, content: { 'application/json': { schema: ref('RegisterRequest') } } },
      responses: { '200': json('Registered', 'The targets as they are once registered.'), ...errors('TargetGroupNotFound', 'InvalidTarget', 'ValidationError', 'MissingParameter') },
    },
  },
  '/ebb/v1/wait': {
    get: {
      operationId: 'wait',
      summary: 'Wait until a target is routed no more, or until its drain has ended',
      description:
        'for=not-routed answers once no data plane will route a new request to the target: the newest snapshot does not route it and every data plane has applied the one that stopped routing it. ' +
        'for=drained answers once its drain has ended; at once for a target that is not registered (with its last drain record, if kept) and, as not-draining, for one registered and not draining. ' +
        'Either answers 200 with outcome timeout when the timeout passes first.',
      parameters: [
        groupParam(true),
        targetParam(true),
        param('for', 'What to wait for.', enumOf(['not-routed', 'drained']), true),
        param('timeout', 'Seconds (0-3600, decimals allowed; default 300).', { type: 'number', minimum: 0, maximum: 3600 }),
      ],
      responses: { '200': json('WaitAnswer', 'Which happened.'), ...errors('TargetGroupNotFound', 'InvalidTarget', 'MissingParameter', 'ValidationError') },
    },
  },
  '/ebb/v1/events': {
    get: {
      operationId: 'events',
      summary: 'Server-Sent Events: every target state change, drain start, progress (each second) and end, and config reload',
      description:
        'text/event-stream. Each event has `id` (a counter), `event` (its type) and one `data` line of JSON whose `type` is the event name: ' +
        'stream:ready (subscribed), target:state (TargetStateEvent; health changes are state changes), drain:start, drain:progress (once a second per drain while someone listens), drain:end (DrainEndEvent), config:reload, autoscaling:activity (AutoScalingActivityEvent), autoscaling:lifecycle (AutoScalingLifecycleEvent, with the lifecycle actions and their tokens on Pending:Wait and Terminating:Wait), ' +
        'and a last stream:dropped (the client read too slowly) or stream:closing (ebb is stopping). A comment line (`: heartbeat`) comes every 15 s. Last-Event-ID is not honoured: read the state again after reconnecting.',
      responses: {
        '200': {
          description: 'The stream.',
          content: {
            'text/event-stream': {
              schema: {
                oneOf: ['StreamEvent', 'TargetStateEvent', 'DrainStartEvent', 'DrainProgressEvent', 'DrainEndEvent', 'ConfigReloadEvent'].map(ref),
              },
            },
          },
        },
        ...errors('none'),
      },
    },
  },
  '/ebb/v1/openapi.json': {
    get: {
      operationId: 'openapi',
      summary: 'This document',
      security: [],
      responses: { '200': { description: 'OpenAPI 3.1.', content: { 'application/json': { schema: { type: 'object' } } } } },
    },
  },
};

export function openApiDocument(region: string): Schema {
  return {
    openapi: '3.1.0',
    info: {
      title: 'ebb',
      version: '1',
      description:
        'ebb\'s own API, beside its AWS-compatible Query API on the same admin endpoint: what the AWS API cannot say about targets, drains and routing. ' +
        `Requests are signed with AWS Signature Version 4 with the admin credentials, service elasticloadbalancing, region ${region}. See docs/api.md.`,
    },
    servers: [{ url: '/' }],
    security: [{ sigv4: [] }, { session: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: {
        sigv4: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description: `AWS Signature Version 4 (credential scope .../${region}/elasticloadbalancing/aws4_request), as the AWS SDKs, botocore and curl --aws-sigv4 sign.`,
          // How API Gateway marks a SigV4 scheme in OpenAPI (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions-authtype.html).
          'x-amazon-apigateway-authtype': 'awsSigv4',
        },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: 'session',
          description: 'The dashboard\'s session cookie, accepted for GET requests without an Authorization header. Its name is the dashboard\'s.',
        },
      },
    },
  };
}

/** Every `METHOD /path` the document describes (for the test that holds it to the router). */
export function documentedOperations(): string[] {
  return Object.entries(paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
}
