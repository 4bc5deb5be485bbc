import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { fileCertificateArn } from './certificates-declared.ts';
import { loadConfigFile, parseConfig } from './load-config.ts';

/** The file's network load balancers, TCP, TLS and HTTPS listeners, their certificates and the NLB attributes. */

const SITE = 'arn:aws:acm:us-east-1:123456789012:certificate/site';

const FILE = `certificates:
  - { arn: ${SITE}, certificateFile: tls/site.crt, privateKeyFile: tls/site.key }
loadBalancers:
  - name: nlb
    type: network
    listeners:
      - protocol: TCP
        port: 5432
        attributes: { tcp.idle_timeout.seconds: 1200 }
        defaultActions: [ { type: forward, targetGroup: db } ]
      - protocol: TLS
        port: 6432
        certificates: [ { certificateArn: ${SITE} } ]
        defaultActions: [ { type: forward, targetGroup: db } ]
  - name: web
    listeners:
      - protocol: HTTPS
        port: 8443
        sslPolicy: ELBSecurityPolicy-FS-1-2-Res-2020-10
        certificates:
          - { certificateFile: tls/web.crt, privateKeyFile: tls/web.key }
          - { certificateArn: ${SITE} }
        defaultActions: [ { type: forward, targetGroup: app } ]
targetGroups:
  - name: db
    protocol: TCP
    port: 5432
    healthCheck: { protocol: HTTP, path: /ready }
    attributes:
      proxy_protocol_v2.enabled: true
      deregistration_delay.connection_termination.enabled: true
      target_health_state.unhealthy.connection_termination.enabled: false
      target_health_state.unhealthy.draining_interval_seconds: 60
    targets: [ { id: 127.0.0.1 } ]
  - name: app
    protocol: HTTPS
    port: 443
    targets: [ { id: 127.0.0.1 } ]
`;

function invalid(text: string): string {
  try {
    parseConfig(text, '/srv/ebb/lb.yaml');
  } catch (err) {
    assert.ok(EbbError.is(err) && err.code === 'ConfigInvalid', String(err));
    return err.message;
  }
  assert.fail('the configuration was accepted');
}

/** The one problem reported on `line` for `path`. */
function problemAt(message: string, line: number, path: string): string {
  const found = message.split('\n').find((l) => l.startsWith(`/srv/ebb/lb.yaml:${line}:`) && l.includes(` ${path}: `));
  assert.ok(found !== undefined, `no problem at line ${line} for ${path}; message:\n${message}`);
  return found;
}

describe('network load balancers, TCP, TLS and HTTPS listeners in the file', () => {
  it('a valid file: listeners carry their certificates (the default first), policy and attributes', () => {
    const { declared } = parseConfig(FILE, '/srv/ebb/lb.yaml');
    const [nlb, web] = declared.loadBalancers;
    assert.equal(nlb?.type, 'network');
    assert.deepEqual(nlb?.listeners[0], { protocol: 'TCP', port: 5432, address: '0.0.0.0', targetGroup: 'db', attributes: { 'tcp.idle_timeout.seconds': '1200' } });
    assert.deepEqual(nlb?.listeners[1], { protocol: 'TLS', port: 6432, address: '0.0.0.0', targetGroup: 'db', certificateArns: [SITE] });
    const webArn = fileCertificateArn('us-east-1', '123456789012', '/srv/ebb/tls/web.crt', '/srv/ebb/tls/web.key');
    assert.deepEqual(web?.listeners[0], {
      protocol: 'HTTPS',
      port: 8443,
      address: '0.0.0.0',
      targetGroup: 'app',
      certificateArns: [webArn, SITE],
      sslPolicy: 'ELBSecurityPolicy-FS-1-2-Res-2020-10',
    });
    const db = declared.targetGroups.find((g) => g.name === 'db');
    assert.equal(db?.attributes['proxy_protocol_v2.enabled'], 'true');
    assert.deepEqual(db?.healthCheck, { protocol: 'HTTP', path: '/ready' });
    assert.equal(declared.targetGroups.find((g) => g.name === 'app')?.protocol, 'HTTPS');
  });

  it('protocols that do not fit the load balancer or the group are refused with the API’s words', () => {
    const message = invalid(FILE.replace('      - protocol: TCP\n        port: 5432', '      - protocol: HTTP\n        port: 5432').replace('targetGroup: app', 'targetGroup: db'));
    assert.match(problemAt(message, 7, 'loadBalancers[0].listeners[0].protocol'), /Listener protocol 'HTTP' must be one of 'TCP, TLS' for a load balancer of type network/);
    assert.match(problemAt(message, 23, 'loadBalancers[1].listeners[0].defaultActions[0].targetGroup'), /Listener protocol 'HTTPS' is not supported with a target group with the protocol 'TCP' \('db'\): HTTPS listeners forward to HTTP or HTTPS target groups/);
  });

  it('certificates and policies: on HTTPS and TLS listeners only, one way to name each, a policy ebb serves', () => {
    const onTcp = invalid(FILE.replace('        attributes: { tcp.idle_timeout.seconds: 1200 }\n', `        certificates: [ { certificateArn: ${SITE} } ]\n        sslPolicy: ELBSecurityPolicy-2016-08\n`));
    assert.match(problemAt(onTcp, 9, 'loadBalancers[0].listeners[0].certificates'), /applies to HTTPS and TLS listeners only; remove it, or set protocol: TLS/);
    assert.match(problemAt(onTcp, 10, 'loadBalancers[0].listeners[0].sslPolicy'), /applies to HTTPS and TLS listeners only/);
    const policy = invalid(FILE.replace('ELBSecurityPolicy-FS-1-2-Res-2020-10', 'ELBSecurityPolicy-Nope'));
    assert.match(problemAt(policy, 19, 'loadBalancers[1].listeners[0].sslPolicy'), /must be a security policy name such as ELBSecurityPolicy-TLS13-1-2-2021-06 \(aws elbv2 describe-ssl-policies lists those ebb serves\); got "ELBSecurityPolicy-Nope"/);
    const both = invalid(FILE.replace(`          - { certificateArn: ${SITE} }`, `          - { certificateArn: ${SITE}, certificateFile: x.crt }`));
    assert.match(problemAt(both, 22, 'loadBalancers[1].listeners[0].certificates[1].certificateArn'), /names a certificate by ARN, so the files cannot be given too/);
    const halfFiles = invalid(FILE.replace('{ certificateFile: tls/web.crt, privateKeyFile: tls/web.key }', '{ certificateFile: tls/web.crt }'));
    assert.match(problemAt(halfFiles, 21, 'loadBalancers[1].listeners[0].certificates[0].privateKeyFile'), /is required with certificateFile/);
    const none = invalid(FILE.replace(`        certificates: [ { certificateArn: ${SITE} } ]\n`, ''));
    assert.match(problemAt(none, 11, 'loadBalancers[0].listeners[1].protocol'), /a TLS listener needs certificates/);
  });

  it('attributes by protocol and load balancer type, and the unhealthy draining rule, each at its line', () => {
    const nlbAttr = invalid(FILE.replace('    type: network\n', '    type: network\n    attributes: { routing.http2.enabled: false }\n'));
    assert.match(problemAt(nlbAttr, 6, 'loadBalancers[0].attributes["routing.http2.enabled"]'), /Load balancer attribute key 'routing.http2.enabled' is not supported on load balancers with type 'network'; allowed keys: .*deletion_protection\.enabled/);
    const idle = invalid(FILE.replace('tcp.idle_timeout.seconds: 1200', 'tcp.idle_timeout.seconds: 30'));
    assert.match(problemAt(idle, 9, 'loadBalancers[0].listeners[0].attributes["tcp.idle_timeout.seconds"]'), /must be from 60 to 6000; got '30'/);
    const onTls = invalid(FILE.replace(`        certificates: [ { certificateArn: ${SITE} } ]\n`, `        certificates: [ { certificateArn: ${SITE} } ]\n        attributes: { tcp.idle_timeout.seconds: 100 }\n`));
    assert.match(problemAt(onTls, 14, 'loadBalancers[0].listeners[1].attributes["tcp.idle_timeout.seconds"]'), /not supported on TLS listeners; it applies to TCP listeners/);
    const draining = invalid(FILE.replace('target_health_state.unhealthy.connection_termination.enabled: false', 'target_health_state.unhealthy.connection_termination.enabled: true'));
    assert.match(
      problemAt(draining, 33, 'targetGroups[0].attributes["target_health_state.unhealthy.draining_interval_seconds"]'),
      /can only be configured when target_health_state\.unhealthy\.connection_termination\.enabled is false/,
    );
    const onHttp = invalid(FILE.replace('    protocol: HTTPS\n    port: 443\n', '    protocol: HTTPS\n    port: 443\n    attributes: { proxy_protocol_v2.enabled: true }\n'));
    assert.match(problemAt(onHttp, 38, 'targetGroups[1].attributes["proxy_protocol_v2.enabled"]'), /not supported on a HTTPS target group/);
  });
});

it('examples/tcp-and-https.yaml is a valid file', async () => {
  const cfg = await loadConfigFile(new URL('../../examples/tcp-and-https.yaml', import.meta.url).pathname);
  assert.deepEqual(cfg.declared.loadBalancers.map((lb) => [lb.name, lb.type, lb.listeners[0]?.protocol]), [['db', 'network', 'TCP'], ['web', 'application', 'HTTPS']]);
});
