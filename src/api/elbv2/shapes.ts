import type { ControlApi } from '../../control/control-api.ts';
import type { ListenerRecord, LoadBalancerRecord, TargetGroupRecord } from '../../domain/resources.ts';
import type { TargetHealthDescription } from '../../control/inputs.ts';
import { CANONICAL_HOSTED_ZONE_ID, dnsName } from '../common.ts';
import type { XmlObject } from '../xml.ts';

/** ELBv2 output shapes (botocore elbv2 2015-12-01), filled from the control plane's records. */

export function loadBalancerXml(lb: LoadBalancerRecord): XmlObject {
  return {
    LoadBalancerArn: lb.arn,
    DNSName: dnsName(lb.name, lb.arn),
    CanonicalHostedZoneId: CANONICAL_HOSTED_ZONE_ID,
    CreatedTime: new Date(lb.createdAt),
    LoadBalancerName: lb.name,
    Scheme: lb.scheme,
    State: { Code: 'active' },
    Type: lb.type,
    AvailabilityZones: [],
    SecurityGroups: [],
    IpAddressType: 'ipv4',
  };
}

export function targetGroupXml(tg: TargetGroupRecord, control: ControlApi): XmlObject {
  const hc = tg.healthCheck;
  const http = hc.protocol !== 'TCP';
  return {
    TargetGroupArn: tg.arn,
    TargetGroupName: tg.name,
    Protocol: tg.protocol,
    Port: tg.port,
    HealthCheckProtocol: hc.protocol,
    HealthCheckPort: hc.port === 'traffic-port' ? 'traffic-port' : String(hc.port),
    HealthCheckEnabled: hc.enabled,
    HealthCheckIntervalSeconds: hc.intervalSeconds,
    HealthCheckTimeoutSeconds: hc.timeoutSeconds,
    HealthyThresholdCount: hc.healthyThresholdCount,
    UnhealthyThresholdCount: hc.unhealthyThresholdCount,
    HealthCheckPath: http ? hc.path : undefined,
    Matcher: http ? { HttpCode: hc.matcher } : undefined,
    LoadBalancerArns: control.loadBalancersOfTargetGroup(tg.arn),
    TargetType: tg.targetType,
    ProtocolVersion: tg.protocol === 'TCP' ? undefined : 'HTTP1',
    IpAddressType: 'ipv4',
  };
}

export function listenerXml(l: ListenerRecord): XmlObject {
  return {
    ListenerArn: l.arn,
    LoadBalancerArn: l.loadBalancerArn,
    Port: l.port,
    Protocol: l.protocol,
    // The default certificate only, without IsDefault ("This value is not included in the output when
    // describing a listener", botocore elbv2 Certificate); the others are DescribeListenerCertificates'.
    Certificates: l.certificateArns === undefined || l.certificateArns.length === 0 ? undefined : l.certificateArns.slice(0, 1).map((arn) => ({ CertificateArn: arn })),
    SslPolicy: l.sslPolicy,
    DefaultActions: l.defaultActions.map((a, i) => ({
      Type: a.type,
      TargetGroupArn: a.targetGroupArn,
      Order: l.defaultActions.length > 1 ? i + 1 : undefined,
      ForwardConfig: {
        TargetGroups: [{ TargetGroupArn: a.targetGroupArn, Weight: 1 }],
        TargetGroupStickinessConfig: { Enabled: false },
      },
    })),
  };
}

export function attributesXml(attrs: Readonly<Record<string, string>>): XmlObject[] {
  return Object.entries(attrs).map(([Key, Value]) => ({ Key, Value }));
}

export function targetHealthXml(d: TargetHealthDescription): XmlObject {
  return {
    Target: { Id: d.id, Port: d.port },
    HealthCheckPort: d.healthCheckPort,
    TargetHealth: { State: d.health.state, Reason: d.health.reason, Description: d.health.description },
  };
}
