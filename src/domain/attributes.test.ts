import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import {
  listenerAttributesWithDefaults,
  listenerSettings,
  loadBalancerAttributesWithDefaults,
  targetGroupAttributesWithDefaults,
  validateLoadBalancerAttributeChange,
  validateTargetGroupAttributes,
} from './attributes.ts';
import { defaultHealthCheck, healthCheckWithDefaults, matcherProblem } from './health-check.ts';

const code = (c: string, re?: RegExp) => (e: unknown) => EbbError.is(e) && e.code === c && (re === undefined || re.test(e.message));

test("a TCP group's attributes are NLB's, with AWS's defaults; ALB's are not its", () => {
  const tcp = targetGroupAttributesWithDefaults({}, 'TCP');
  assert.equal(tcp['proxy_protocol_v2.enabled'], 'false');
  assert.equal(tcp['deregistration_delay.connection_termination.enabled'], 'false');
  assert.equal(tcp['target_health_state.unhealthy.connection_termination.enabled'], 'true');
  assert.equal(tcp['target_health_state.unhealthy.draining_interval_seconds'], '0');
  assert.equal(tcp['stickiness.type'], 'source_ip', "NLB's stickiness type");
  assert.equal(tcp['load_balancing.algorithm.type'], undefined);
  const http = targetGroupAttributesWithDefaults({}, 'HTTPS');
  assert.equal(http['stickiness.type'], 'lb_cookie');
  assert.equal(http['proxy_protocol_v2.enabled'], undefined);
  assert.throws(() => validateTargetGroupAttributes({ 'proxy_protocol_v2.enabled': 'true' }, 'HTTP'), code('ValidationError', /not supported on a HTTP target group/));
  assert.throws(() => validateTargetGroupAttributes({ 'slow_start.duration_seconds': '30' }, 'TCP'), code('ValidationError', /not supported on a TCP target group/));
  assert.throws(() => validateTargetGroupAttributes({ 'stickiness.type': 'lb_cookie' }, 'TCP'), code('ValidationError', /must be source_ip on a TCP target group/));
  assert.throws(() => validateTargetGroupAttributes({ 'stickiness.type': 'source_ip' }, 'HTTP'), code('ValidationError', /lb_cookie or app_cookie/));
  validateTargetGroupAttributes({ 'proxy_protocol_v2.enabled': 'true', 'stickiness.type': 'source_ip' }, 'TCP');
});

test('the unhealthy draining interval: 0 to 360000, configurable only with unhealthy connection termination off (InvalidConfigurationRequest)', () => {
  const TERM = 'target_health_state.unhealthy.connection_termination.enabled';
  const INTERVAL = 'target_health_state.unhealthy.draining_interval_seconds';
  assert.throws(() => validateTargetGroupAttributes({ [INTERVAL]: '30' }, 'TCP'), code('InvalidConfigurationRequest', /only be configured when .*connection_termination.enabled is false.*true, the default/));
  assert.throws(() => validateTargetGroupAttributes({ [INTERVAL]: '30', [TERM]: 'true' }, 'TCP'), code('InvalidConfigurationRequest'));
  validateTargetGroupAttributes({ [INTERVAL]: '30', [TERM]: 'false' }, 'TCP');
  validateTargetGroupAttributes({ [INTERVAL]: '0' }, 'TCP');
  // Against what the group has: the interval onto termination off, then termination back on.
  validateTargetGroupAttributes({ [INTERVAL]: '360000' }, 'TCP', { [TERM]: 'false' });
  assert.throws(() => validateTargetGroupAttributes({ [TERM]: 'true' }, 'TCP', { [TERM]: 'false', [INTERVAL]: '60' }), code('InvalidConfigurationRequest', /set .* to false in the same call, or the interval to 0/));
  assert.throws(() => validateTargetGroupAttributes({ [INTERVAL]: '360001', [TERM]: 'false' }, 'TCP'), code('ValidationError', /from 0 to 360000/));
  assert.throws(() => validateTargetGroupAttributes({ [INTERVAL]: '-1', [TERM]: 'false' }, 'TCP'), code('ValidationError'));
});

test("a network load balancer refuses ALB's attributes in AWS's words and describes only its own", () => {
  assert.throws(
    () => validateLoadBalancerAttributeChange({}, { 'routing.http2.enabled': 'false' }, 'network'),
    code('ValidationError', /Load balancer attribute key 'routing.http2.enabled' is not supported on load balancers with type 'network'/),
  );
  assert.throws(() => validateLoadBalancerAttributeChange({}, { 'idle_timeout.timeout_seconds': '30' }, 'network'), code('ValidationError'));
  validateLoadBalancerAttributeChange({}, { 'deletion_protection.enabled': 'true', 'ebb.target_connect_timeout.seconds': '5' }, 'network');
  validateLoadBalancerAttributeChange({}, { 'routing.http2.enabled': 'false' }, 'application');
  validateLoadBalancerAttributeChange({}, { 'idle_timeout.timeout_seconds': '30' }, 'classic');
  const nlb = loadBalancerAttributesWithDefaults({}, 'network');
  assert.equal(nlb['routing.http2.enabled'], undefined);
  assert.equal(nlb['deletion_protection.enabled'], 'false');
  assert.equal(loadBalancerAttributesWithDefaults({}, 'application')['routing.http2.enabled'], 'true');
  assert.equal(loadBalancerAttributesWithDefaults({})['routing.http2.enabled'], 'true', 'without a type, every key (the data plane reads them)');
});

test('listener attributes by protocol: the TCP idle timeout is a TCP listener’s, accepting PROXY headers a TCP or TLS one’s', () => {
  assert.deepEqual(listenerAttributesWithDefaults({}, 'TCP'), { 'tcp.idle_timeout.seconds': '350', 'ebb.accept_proxy_protocol.enabled': 'false' });
  assert.deepEqual(listenerAttributesWithDefaults({}, 'TLS'), { 'ebb.accept_proxy_protocol.enabled': 'false' });
  assert.deepEqual(listenerAttributesWithDefaults({}, 'HTTPS'), {});
  assert.deepEqual(listenerAttributesWithDefaults({}), { 'tcp.idle_timeout.seconds': '350', 'ebb.accept_proxy_protocol.enabled': 'false' });
  assert.equal(listenerSettings({}, {}).acceptProxyProtocol, false);
  assert.equal(listenerSettings({}, { 'ebb.accept_proxy_protocol.enabled': 'true' }).acceptProxyProtocol, true);
});

test("health-check defaults by the group's protocol and the check's, as AWS answers them", () => {
  const pick = (hc: ReturnType<typeof defaultHealthCheck>) => [hc.protocol, hc.timeoutSeconds, hc.intervalSeconds, hc.healthyThresholdCount, hc.unhealthyThresholdCount, hc.matcher];
  assert.deepEqual(pick(defaultHealthCheck('HTTP')), ['HTTP', 5, 30, 5, 2, '200']);
  assert.deepEqual(pick(defaultHealthCheck('HTTPS')), ['HTTPS', 5, 30, 5, 2, '200']);
  assert.deepEqual(pick(defaultHealthCheck('TCP')), ['TCP', 10, 30, 5, 2, '200-399']);
  assert.deepEqual(pick(healthCheckWithDefaults('TCP', { protocol: 'HTTP' })), ['HTTP', 6, 30, 5, 2, '200-399']);
  assert.deepEqual(pick(healthCheckWithDefaults('TCP', { protocol: 'HTTPS' })), ['HTTPS', 10, 30, 5, 2, '200-399']);
  assert.deepEqual(pick(healthCheckWithDefaults('HTTP', { protocol: 'HTTPS', timeoutSeconds: 3 })), ['HTTPS', 3, 30, 5, 2, '200']);
});

test('matchers: HTTP and HTTPS groups count codes up to 499, TCP groups up to 599', () => {
  assert.match(matcherProblem('HTTP', { protocol: 'HTTP', matcher: '200-500' }) ?? '', /codes above 499.*200 to 499/);
  assert.match(matcherProblem('HTTPS', { protocol: 'HTTPS', matcher: '200,503' }) ?? '', /above 499/);
  assert.equal(matcherProblem('HTTP', { protocol: 'HTTP', matcher: '200-499' }), null);
  assert.equal(matcherProblem('TCP', { protocol: 'HTTP', matcher: '200-599' }), null);
});
