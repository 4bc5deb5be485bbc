/**
 * The one registry of errors a user can see. Each code is stable and never reused; the API puts it on
 * the wire as the AWS error `<Code>`, so codes that clients know take their AWS names. Every message
 * says what was wrong and, where it is not obvious, what to do about it; docs/errors.md says what to
 * do for each code. A test (errors.test.ts) fails on a code nothing raises and on a code raised or put
 * on the wire that is not here.
 *
 * `status` is the HTTP status the admin API answers with; `fault` is the AWS fault type.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly fault: 'Sender' | 'Receiver';
}

export const ERROR_CODES = {
  // Generic AWS Query errors
  ValidationError: { status: 400, fault: 'Sender' },
  InvalidAction: { status: 400, fault: 'Sender' },
  MissingParameter: { status: 400, fault: 'Sender' },
  // AWS's common errors InvalidParameterValue and InvalidParameterCombination are not here: no
  // operation of the ELBv2, Classic ELB or Auto Scaling models (botocore service-2.json) lists them,
  // and ELBv2 answers parameters that exclude each other with ValidationError ("Load balancer names
  // and load balancer ARNs cannot be specified at the same time"), as ebb does.
  MalformedQueryString: { status: 400, fault: 'Sender' },
  MissingAuthenticationToken: { status: 403, fault: 'Sender' },
  IncompleteSignature: { status: 400, fault: 'Sender' },
  SignatureDoesNotMatch: { status: 403, fault: 'Sender' },
  InvalidClientTokenId: { status: 403, fault: 'Sender' },
  RequestExpired: { status: 400, fault: 'Sender' },
  InternalFailure: { status: 500, fault: 'Receiver' },
  ServiceUnavailable: { status: 503, fault: 'Receiver' },
  // The admin endpoint's refusals at the HTTP level, before any action runs (no AWS model names them).
  RequestEntityTooLarge: { status: 413, fault: 'Sender' },
  RequestTimeout: { status: 408, fault: 'Sender' },
  // ELBv2
  LoadBalancerNotFound: { status: 400, fault: 'Sender' },
  DuplicateLoadBalancerName: { status: 400, fault: 'Sender' },
  TargetGroupNotFound: { status: 400, fault: 'Sender' },
  DuplicateTargetGroupName: { status: 400, fault: 'Sender' },
  ListenerNotFound: { status: 400, fault: 'Sender' },
  DuplicateListener: { status: 400, fault: 'Sender' },
  InvalidTarget: { status: 400, fault: 'Sender' },
  InvalidConfigurationRequest: { status: 400, fault: 'Sender' },
  ResourceInUse: { status: 400, fault: 'Sender' },
  UnsupportedProtocol: { status: 400, fault: 'Sender' },
  IncompatibleProtocols: { status: 400, fault: 'Sender' },
  InvalidLoadBalancerAction: { status: 400, fault: 'Sender' },
  TooManyTags: { status: 400, fault: 'Sender' },
  DuplicateTagKeys: { status: 400, fault: 'Sender' },
  OperationNotPermitted: { status: 400, fault: 'Sender' },
  // HTTPS and TLS listeners (ELBv2 CreateListener, ModifyListener, AddListenerCertificates, DescribeSSLPolicies)
  CertificateNotFound: { status: 400, fault: 'Sender' },
  SSLPolicyNotFound: { status: 400, fault: 'Sender' },
  TooManyCertificates: { status: 400, fault: 'Sender' },
  ALPNPolicyNotFound: { status: 400, fault: 'Sender' },
  // Classic ELB (InvalidConfigurationRequest is 409 there; the API layer adjusts the status)
  InvalidInstance: { status: 400, fault: 'Sender' },
  InvalidScheme: { status: 400, fault: 'Sender' },
  LoadBalancerAttributeNotFound: { status: 400, fault: 'Sender' },
  // ebb's own, outside the AWS API
  ConfigInvalid: { status: 400, fault: 'Sender' },
  ConfigUnreadable: { status: 400, fault: 'Sender' },
  StoreUnavailable: { status: 500, fault: 'Receiver' },
  ListenAddressInUse: { status: 400, fault: 'Sender' },
  RestartFailed: { status: 500, fault: 'Receiver' },
  // Auto Scaling (autoscaling 2011-01-01)
  AlreadyExists: { status: 400, fault: 'Sender' },
  LimitExceeded: { status: 400, fault: 'Sender' },
  ScalingActivityInProgress: { status: 400, fault: 'Sender' },
  InstanceRefreshInProgress: { status: 400, fault: 'Sender' },
  ActiveInstanceRefreshNotFound: { status: 400, fault: 'Sender' },
  IrreversibleInstanceRefresh: { status: 400, fault: 'Sender' },
  // EC2 (ec2 2016-11-15): launch templates and instances. EC2 answers every client error with 400.
  InvalidParameterValue: { status: 400, fault: 'Sender' },
  InvalidParameterCombination: { status: 400, fault: 'Sender' },
  'InvalidLaunchTemplateName.AlreadyExistsException': { status: 400, fault: 'Sender' },
  'InvalidLaunchTemplateName.NotFoundException': { status: 400, fault: 'Sender' },
  'InvalidLaunchTemplateName.MalformedException': { status: 400, fault: 'Sender' },
  'InvalidLaunchTemplateId.NotFound': { status: 400, fault: 'Sender' },
  'InvalidLaunchTemplateId.Malformed': { status: 400, fault: 'Sender' },
  'InvalidLaunchTemplateId.VersionNotFound': { status: 400, fault: 'Sender' },
  'InvalidUserData.Malformed': { status: 400, fault: 'Sender' },
  'InvalidInstanceID.NotFound': { status: 400, fault: 'Sender' },
  'InvalidInstanceID.Malformed': { status: 400, fault: 'Sender' },
  // Instances ebb runs: a process that could not be started at all.
  InstanceLaunchFailed: { status: 500, fault: 'Receiver' },
  // ACM (acm 2015-12-08, AWS JSON 1.1): certificates, on the admin endpoint's same URL. Its codes are
  // its model's exception names, as the SDKs match them. Every client error is HTTP 400 there.
  ValidationException: { status: 400, fault: 'Sender' },
  InvalidArnException: { status: 400, fault: 'Sender' },
  ResourceNotFoundException: { status: 400, fault: 'Sender' },
  ResourceInUseException: { status: 400, fault: 'Sender' },
  UnknownOperationException: { status: 400, fault: 'Sender' },
  LimitExceededException: { status: 400, fault: 'Sender' },
  InvalidTagException: { status: 400, fault: 'Sender' },
  TooManyTagsException: { status: 400, fault: 'Sender' },
  InvalidParameterException: { status: 400, fault: 'Sender' },
  InvalidArgsException: { status: 400, fault: 'Sender' },
  // GET /metrics on the admin endpoint (Prometheus sends a bearer token, not a SigV4 signature).
  MetricsUnauthorized: { status: 401, fault: 'Sender' },
  MetricsNotEnabled: { status: 403, fault: 'Sender' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

const kEbbError = Symbol.for('ebb.error');

/** An error with a stable code. `instanceof` survives two copies of the package through the brand. */
export class EbbError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly fault: 'Sender' | 'Receiver';

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    const spec: ErrorSpec = ERROR_CODES[code];
    this.name = 'EbbError';
    this.code = code;
    this.status = spec.status;
    this.fault = spec.fault;
    Object.defineProperty(this, kEbbError, { value: true });
  }

  static is(value: unknown): value is EbbError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kEbbError] === true;
  }
}

export function ebbError(code: ErrorCode, message: string): EbbError {
  return new EbbError(code, message);
}

/** One line for a log or a terminal: `Code: message` for ebb's errors, the message otherwise. */
export function describeError(error: unknown): string {
  if (EbbError.is(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
