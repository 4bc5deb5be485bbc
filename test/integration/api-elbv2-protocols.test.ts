/**
 * Issue 10, test 6: the API for every protocol, driven by the real clients against `ebb serve` as a
 * process. The `aws` CLI makes a network load balancer with a TCP listener in front of a TCP group (and
 * reads and changes the listener's idle timeout), imports a certificate with `aws acm
 * import-certificate`, makes an HTTPS listener with it and a security policy, adds, lists and removes a
 * second certificate, and lists the policies; real clients then go through both listeners. boto3 makes a
 * TLS listener and pages through DescribeSSLPolicies, and reads the modelled errors.
 */
import assert from 'node:assert/strict';
import { get as httpsGet } from 'node:https';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { leafCert, testCa } from '../support/certs.ts';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { spawnEbb, waitForStart } from '../support/ebb-process.ts';
import { freePort } from '../support/ports.ts';
import { waitUntil } from '../support/timing.ts';
import { aws, cliEnv, missingClient, ok, python, startHoldingBackend, type ApiHarness, type HoldingBackend } from './api-harness.ts';
import { startTcpBackend, tcpConnect, type TcpBackend } from './tcp-helpers.ts';

const skipCli = missingClient('aws');
const skipBoto = missingClient('boto3');
const BOTO_SCRIPT = fileURLToPath(new URL('../clients/boto3_listeners.py', import.meta.url));
const c = new Cleanup();
/** What the client helpers need of a harness: where ebb is and the clients' environment. */
let h: Pick<ApiHarness, 'endpoint' | 'env'>;
let tcpBackend: TcpBackend;
let web: HoldingBackend;

before(async () => {
  if (skipCli !== null && skipBoto !== null) return;
  const dir = await tempDir(c);
  const ebb = spawnEbb(c, ['--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth'], undefined, { stopGraceMs: 5000 });
  const started = await waitForStart(ebb);
  const env = cliEnv('AKIDPROTOCOLS', 'unused-with-no-auth');
  h = { endpoint: `http://${String(started['admin'])}`, env };
  tcpBackend = await startTcpBackend(c, 'db', (s) => s.on('data', (b: Buffer) => s.write(`db:${b.toString('latin1')}`)));
  web = await startHoldingBackend('web');
  c.add(() => web.close());
});
after(async () => {
  await c.run();
});

test('aws CLI: a network load balancer, a TCP group and a TCP listener that carries bytes; its idle timeout read and changed', { skip: skipCli ?? false, timeout: 90_000 }, async () => {
  const [nlbOut, tgOut, port] = await Promise.all([
    aws(h, ['elbv2', 'create-load-balancer', '--name', 'cli-nlb', '--type', 'network', '--subnets', 'subnet-1']),
    aws(h, ['elbv2', 'create-target-group', '--name', 'cli-tcp', '--protocol', 'TCP', '--port', String(tcpBackend.port), '--target-type', 'ip']),
    freePort(),
  ]);
  const nlb = ok(nlbOut).LoadBalancers[0];
  const tg = ok(tgOut).TargetGroups[0];
  assert.equal(nlb.Type, 'network');
  assert.match(nlb.LoadBalancerArn, /:loadbalancer\/net\/cli-nlb\/[0-9a-f]+$/);
  assert.deepEqual(
    [tg.Protocol, tg.HealthCheckProtocol, tg.HealthCheckTimeoutSeconds, tg.HealthCheckIntervalSeconds, tg.HealthyThresholdCount, tg.UnhealthyThresholdCount, tg.Matcher],
    ['TCP', 'TCP', 10, 30, 5, 2, undefined],
    'AWS\'s defaults for a TCP group',
  );
  const [listenerOut] = await Promise.all([
    aws(h, ['elbv2', 'create-listener', '--load-balancer-arn', nlb.LoadBalancerArn, '--protocol', 'TCP', '--port', String(port), '--default-actions', `Type=forward,TargetGroupArn=${tg.TargetGroupArn}`]),
    aws(h, ['elbv2', 'register-targets', '--target-group-arn', tg.TargetGroupArn, '--targets', `Id=127.0.0.1,Port=${tcpBackend.port}`]).then(ok),
  ]);
  const listener = ok(listenerOut).Listeners[0];
  assert.deepEqual([listener.Protocol, listener.Port, listener.Certificates, listener.SslPolicy], ['TCP', port, undefined, undefined]);

  // A real flow through the listener (the group fails open while its first TCP check is pending).
  const flow = await tcpConnect(c, port);
  flow.socket.write('ping');
  await waitUntil(() => flow.text() === 'db:ping', 'the backend\'s answer through the TCP listener', 5000);
  flow.socket.destroy();

  const attrs = ok(await aws(h, ['elbv2', 'describe-listener-attributes', '--listener-arn', listener.ListenerArn])).Attributes;
  assert.deepEqual(attrs, [
    { Key: 'tcp.idle_timeout.seconds', Value: '350' },
    { Key: 'ebb.accept_proxy_protocol.enabled', Value: 'false' },
  ]);
  const changed = ok(await aws(h, ['elbv2', 'modify-listener-attributes', '--listener-arn', listener.ListenerArn, '--attributes', 'Key=tcp.idle_timeout.seconds,Value=120'])).Attributes;
  assert.deepEqual(changed, [
    { Key: 'tcp.idle_timeout.seconds', Value: '120' },
    { Key: 'ebb.accept_proxy_protocol.enabled', Value: 'false' },
  ]);
});

test('aws CLI: acm import-certificate, an HTTPS listener with it and a policy that serves a request, a second certificate added, listed and removed, policies listed', { skip: skipCli ?? false, timeout: 90_000 }, async () => {
  const ca = testCa();
  const [main, other] = [leafCert(['www.protocols.test']), leafCert(['api.protocols.test'])];
  const made = await Promise.all([
    aws(h, ['acm', 'import-certificate', '--certificate', `fileb://${main.certFile}`, '--private-key', `fileb://${main.keyFile}`]),
    aws(h, ['acm', 'import-certificate', '--certificate', `fileb://${other.certFile}`, '--private-key', `fileb://${other.keyFile}`]),
    aws(h, ['elbv2', 'create-load-balancer', '--name', 'cli-alb', '--subnets', 'subnet-1']),
    aws(h, ['elbv2', 'create-target-group', '--name', 'cli-web', '--protocol', 'HTTP', '--port', String(web.port), '--target-type', 'ip']),
  ]);
  const [imported, second] = [ok(made[0]).CertificateArn as string, ok(made[1]).CertificateArn as string];
  const alb = ok(made[2]).LoadBalancers[0];
  const tg = ok(made[3]).TargetGroups[0];
  assert.deepEqual([tg.HealthCheckProtocol, tg.HealthCheckTimeoutSeconds, tg.Matcher], ['HTTP', 5, { HttpCode: '200' }], 'AWS\'s defaults for an HTTP group');
  const port = await freePort();
  const [listenerOut] = await Promise.all([
    aws(h, ['elbv2', 'create-listener', '--load-balancer-arn', alb.LoadBalancerArn, '--protocol', 'HTTPS', '--port', String(port),
      '--certificates', `CertificateArn=${imported}`, '--ssl-policy', 'ELBSecurityPolicy-TLS13-1-2-2021-06', '--default-actions', `Type=forward,TargetGroupArn=${tg.TargetGroupArn}`]),
    aws(h, ['elbv2', 'register-targets', '--target-group-arn', tg.TargetGroupArn, '--targets', `Id=127.0.0.1,Port=${web.port}`]).then(ok),
  ]);
  const listener = ok(listenerOut).Listeners[0];
  assert.deepEqual([listener.Protocol, listener.Certificates, listener.SslPolicy], ['HTTPS', [{ CertificateArn: imported }], 'ELBSecurityPolicy-TLS13-1-2-2021-06']);

  // A real HTTPS request through it, verified against the CA that signed the certificate.
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpsGet({ host: '127.0.0.1', port, path: '/', servername: 'www.protocols.test', ca: ca.certPem, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
  assert.deepEqual(answer, { status: 200, body: 'web\n' });

  const [added, policiesOut] = await Promise.all([
    aws(h, ['elbv2', 'add-listener-certificates', '--listener-arn', listener.ListenerArn, '--certificates', `CertificateArn=${second}`]),
    aws(h, ['elbv2', 'describe-ssl-policies', '--names', 'ELBSecurityPolicy-TLS13-1-2-2021-06', 'ELBSecurityPolicy-2016-08']),
  ]);
  assert.deepEqual(ok(added).Certificates, [{ CertificateArn: second, IsDefault: false }]);
  const listed = ok(await aws(h, ['elbv2', 'describe-listener-certificates', '--listener-arn', listener.ListenerArn])).Certificates;
  assert.deepEqual(listed, [{ CertificateArn: imported, IsDefault: true }, { CertificateArn: second, IsDefault: false }]);
  ok(await aws(h, ['elbv2', 'remove-listener-certificates', '--listener-arn', listener.ListenerArn, '--certificates', `CertificateArn=${second}`]));

  const policies = ok(policiesOut).SslPolicies;
  assert.deepEqual(policies.map((p: any) => p.Name), ['ELBSecurityPolicy-TLS13-1-2-2021-06', 'ELBSecurityPolicy-2016-08']);
  assert.deepEqual(policies[0].SslProtocols, ['TLSv1.3', 'TLSv1.2']);
  assert.deepEqual(policies[0].Ciphers[0], { Name: 'TLS_AES_128_GCM_SHA256', Priority: 1 });
  assert.ok(policies[1].SslProtocols.includes('TLSv1'));
});

test('boto3: ACM, a TLS listener on a network load balancer, NLB attributes, DescribeSSLPolicies paged, the modelled errors', { skip: skipBoto ?? false, timeout: 60_000 }, async () => {
  const leaf = leafCert(['boto.protocols.test']);
  const r = await python(h, BOTO_SCRIPT, [String(await freePort()), leaf.certFile, leaf.keyFile]);
  assert.equal(r.code, 0, r.stderr);
  const out = r.json as any;
  assert.equal(out.nlb_type, 'network');
  assert.deepEqual(out.tcp_group, {
    Protocol: 'TCP', HealthCheckProtocol: 'TCP', HealthCheckTimeoutSeconds: 10, HealthyThresholdCount: 5, UnhealthyThresholdCount: 2, HealthCheckIntervalSeconds: 30, Matcher: null,
  });
  assert.deepEqual(out.tls_listener, { Protocol: 'TLS', Port: out.tls_listener.Port, Certificates: [{ CertificateArn: out.cert_arn }], SslPolicy: 'ELBSecurityPolicy-TLS13-1-3-2021-06' });
  assert.deepEqual(out.tls_attributes, [{ Key: 'ebb.accept_proxy_protocol.enabled', Value: 'false' }], 'a TLS listener keeps the default idle timeout; the attribute is a TCP listener\'s');
  assert.deepEqual(out.tls_certificates, [{ CertificateArn: out.cert_arn, IsDefault: true }]);
  const attr = (key: string): string => out.group_attributes.find((a: any) => a.Key === key)?.Value;
  assert.deepEqual(
    [attr('proxy_protocol_v2.enabled'), attr('target_health_state.unhealthy.connection_termination.enabled'), attr('target_health_state.unhealthy.draining_interval_seconds'), attr('stickiness.type')],
    ['true', 'false', '60', 'source_ip'],
  );
  assert.ok(out.ssl_policy_pages > 2, 'two policies a page, so several pages');
  assert.equal(new Set(out.ssl_policy_names).size, out.ssl_policy_names.length, 'no policy twice across the pages');
  assert.equal(out.ssl_policy_names[0], 'ELBSecurityPolicy-TLS13-1-2-2021-06', 'ebb\'s default first');
  assert.deepEqual(out.ssl_policy.Types, ['application', 'network']);

  const e = out.errors;
  assert.deepEqual([e.unknown_policy.Code, e.unknown_policy.Class], ['SSLPolicyNotFound', 'SSLPolicyNotFoundException']);
  assert.equal(out.modelled_exception, true);
  assert.deepEqual([e.unknown_certificate.Code, e.unknown_certificate.Class], ['CertificateNotFound', 'CertificateNotFoundException']);
  assert.deepEqual([e.bad_pairing.Code, e.bad_pairing.Class], ['IncompatibleProtocols', 'IncompatibleProtocolsException']);
  assert.deepEqual([e.draining_with_termination.Code, e.draining_with_termination.Status], ['InvalidConfigurationRequest', 400]);
  assert.match(e.alb_attribute_on_nlb.Message, /not supported on load balancers with type 'network'/);
  assert.deepEqual([e.remove_default.Code, e.remove_default.Class], ['OperationNotPermitted', 'OperationNotPermittedException']);
  assert.match(e.certificate_on_tcp.Message, /HTTPS and TLS listeners only.*use protocol TLS/);
  assert.equal(e.unknown_listener_policy.Code, 'SSLPolicyNotFound');
  assert.match(e.http_on_nlb.Message, /must be one of 'TCP, TLS' for a load balancer of type network/);
  assert.match(e.idle_timeout_on_tls.Message, /not supported on TLS listeners/);
});
