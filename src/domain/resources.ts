import type { HealthCheckConfig } from './health-check.ts';

/**
 * The resources, shaped after their AWS counterparts. These are plain records: what is stored, what
 * the API describes. Runtime state (health, drains) lives in the control plane.
 * Times are wall-clock milliseconds since the epoch.
 */
export type ListenerProtocol = 'HTTP' | 'HTTPS' | 'TCP' | 'TLS';
export type TargetGroupProtocol = 'HTTP' | 'HTTPS' | 'TCP';
export type LoadBalancerType = 'application' | 'network' | 'classic';

export interface Tag {
  readonly key: string;
  readonly value: string;
}

export interface LoadBalancerRecord {
  readonly arn: string;
  readonly name: string;
  readonly type: LoadBalancerType;
  readonly scheme: 'internet-facing' | 'internal';
  readonly createdAt: number;
  /** Only the attributes that were set; defaults are filled in when read. */
  readonly attributes: Readonly<Record<string, string>>;
  readonly tags: readonly Tag[];
  /** Where the resource came from: the config file owns what it declares. */
  readonly source: 'api' | 'config';
  /** A Classic load balancer's own settings; present when `type` is `classic`. */
  readonly classic?: ClassicSettings;
}

/**
 * What a Classic load balancer has that the ELBv2 model does not. ConnectionDraining's Enabled is not
 * here: it is its target groups' `deregistration_delay.timeout_seconds` (0: off), the one source of
 * truth for how its instances drain.
 */
export interface ClassicSettings {
  /** ConnectionDraining.Timeout (1-3600), kept while draining is off so that turning it on restores it. */
  readonly drainingTimeoutSeconds: number;
  /** CrossZoneLoadBalancing.Enabled, kept and described; ebb has no zones, so it changes no routing. */
  readonly crossZone: boolean;
}

/** AWS's defaults for a new Classic load balancer created through the API. */
export const DEFAULT_CLASSIC_SETTINGS: ClassicSettings = { drainingTimeoutSeconds: 300, crossZone: false };

export interface ForwardAction {
  readonly type: 'forward';
  readonly targetGroupArn: string;
}

export interface ListenerRecord {
  readonly arn: string;
  readonly loadBalancerArn: string;
  readonly protocol: ListenerProtocol;
  readonly port: number;
  /** Address to bind; `0.0.0.0` unless the operator says otherwise. */
  readonly address: string;
  readonly defaultActions: readonly ForwardAction[];
  readonly tags: readonly Tag[];
  readonly source: 'api' | 'config';
  /**
   * HTTPS and TLS listeners: the default certificate's ARN (CreateListener's one `Certificates`
   * member), then the others added with AddListenerCertificates, chosen by SNI. Absent otherwise.
   */
  readonly certificateArns?: readonly string[];
  /** HTTPS and TLS listeners: the security policy's name (`tls-policies.ts`). */
  readonly sslPolicy?: string;
  /** Listener attributes that were set (`tcp.idle_timeout.seconds`); defaults are filled in when read. */
  readonly attributes?: Readonly<Record<string, string>>;
}

/**
 * A server certificate ebb knows (ACM's ImportCertificate, or declared in the file): the PEM text of
 * the certificate, its chain and its private key, and what was read from the certificate. A file's
 * certificate also names the files it is read from again on every reload.
 */
export interface CertificateRecord {
  readonly arn: string;
  /** The subject's common name, or the first DNS name when it has none. */
  readonly domainName: string;
  /** DNS names the certificate is for (subject alternative names, lower case; wildcards as `*.example.com`). */
  readonly subjectAlternativeNames: readonly string[];
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  /** The intermediate certificates, PEM; empty when none. */
  readonly chainPem: string;
  readonly serial: string;
  readonly issuer: string;
  /** Validity, wall-clock ms. */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly keyAlgorithm: string;
  readonly importedAt: number;
  readonly tags: readonly Tag[];
  readonly source: 'api' | 'config';
  /** A file-declared certificate's files, read again on reload. */
  readonly files?: { readonly certificateFile: string; readonly privateKeyFile: string; readonly chainFile?: string };
}

export interface TargetGroupRecord {
  readonly arn: string;
  readonly name: string;
  readonly protocol: TargetGroupProtocol;
  readonly port: number;
  readonly targetType: 'instance' | 'ip';
  readonly healthCheck: HealthCheckConfig;
  readonly attributes: Readonly<Record<string, string>>;
  readonly tags: readonly Tag[];
  readonly createdAt: number;
  readonly source: 'api' | 'config';
}

/** One registration of a target (id + port) in a target group. */
export interface TargetRegistration {
  readonly targetGroupArn: string;
  /** An IP address, or an instance id resolved through the instance directory. */
  readonly id: string;
  readonly port: number;
  readonly source: 'api' | 'config';
}

/** A named instance (Classic ELB, Auto Scaling) and the address it is reached at. */
export interface InstanceRecord {
  readonly id: string;
  readonly address: string;
}

export function targetKey(targetGroupArn: string, id: string, port: number): string {
  return `${targetGroupArn}|${id}|${port}`;
}
