import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import type { DeclaredState } from '../control/declared-state.ts';
import { EbbError } from '../shared/errors.ts';
import { loadConfigFile, parseConfig } from './load-config.ts';

/** The example from the README / issue, verbatim. */
const EXAMPLE = `loadBalancers:
  - name: web
    listeners:
      - protocol: HTTP
        port: 8080
        defaultActions:
          - type: forward
            targetGroup: web
targetGroups:
  - name: web
    protocol: HTTP
    port: 80                    # port for targets listed without one
    healthCheck:                # AWS defaults and ranges for everything left out
      path: /health
      intervalSeconds: 5
      timeoutSeconds: 2
      healthyThresholdCount: 2
      unhealthyThresholdCount: 2
      matcher: "200-399"
    attributes:
      deregistration_delay.timeout_seconds: 30
      load_balancing.algorithm.type: round_robin
    targets:
      - { id: 127.0.0.1, port: 3001 }
      - { id: 127.0.0.1, port: 3002 }
`;

/** Runs parseConfig expecting ConfigInvalid; returns the message. */
function invalid(text: string, fileName = 'lb.yaml'): string {
  try {
    parseConfig(text, fileName);
  } catch (err) {
    assert.ok(EbbError.is(err), `expected an EbbError, got ${String(err)}`);
    assert.equal(err.code, 'ConfigInvalid');
    return err.message;
  }
  assert.fail('the configuration was accepted');
}

describe('parseConfig: valid files', () => {
  it('the example parses to the expected DeclaredState', () => {
    const cfg = parseConfig(EXAMPLE, 'lb.yaml');
    const expected: DeclaredState = {
      loadBalancers: [
        {
          name: 'web',
          type: 'application',
          attributes: {},
          listeners: [{ protocol: 'HTTP', port: 8080, address: '0.0.0.0', targetGroup: 'web' }],
        },
      ],
      targetGroups: [
        {
          name: 'web',
          protocol: 'HTTP',
          port: 80,
          targetType: 'ip',
          healthCheck: {
            path: '/health',
            intervalSeconds: 5,
            timeoutSeconds: 2,
            healthyThresholdCount: 2,
            unhealthyThresholdCount: 2,
            matcher: '200-399',
          },
          attributes: { 'deregistration_delay.timeout_seconds': '30', 'load_balancing.algorithm.type': 'round_robin' },
          targets: [
            { id: '127.0.0.1', port: 3001 },
            { id: '127.0.0.1', port: 3002 },
          ],
        },
      ],
      instances: [],
    };
    assert.deepEqual(cfg.declared, expected);
    assert.deepEqual(cfg.admin, {});
  });

  it('an empty file declares nothing', () => {
    assert.deepEqual(parseConfig('', 'lb.yaml').declared, { loadBalancers: [], targetGroups: [], instances: [] });
    assert.deepEqual(parseConfig('# only a comment\n', 'lb.yaml').declared.targetGroups, []);
  });

  it('fills defaults: target port from the group, listener address, LB type; converts attribute values to strings', () => {
    const cfg = parseConfig(
      `loadBalancers:
  - name: edge
    attributes: { deletion_protection.enabled: true, idle_timeout.timeout_seconds: 120 }
    listeners:
      - { protocol: HTTP, port: 7000, address: 127.0.0.1, defaultActions: [ { type: forward, targetGroup: db } ] }
targetGroups:
  - name: db
    protocol: HTTP
    port: 5432
    healthCheck: { port: traffic-port, enabled: true }
    attributes: { deregistration_delay.timeout_seconds: 45 }
    targets:
      - { id: 10.0.0.1 }
      - { id: 10.0.0.2, port: 6432 }
`,
      'lb.yaml',
    );
    const lb = cfg.declared.loadBalancers[0];
    assert.equal(lb?.type, 'application');
    assert.deepEqual(lb?.attributes, { 'deletion_protection.enabled': 'true', 'idle_timeout.timeout_seconds': '120' });
    assert.equal(lb?.listeners[0]?.address, '127.0.0.1');
    const tg = cfg.declared.targetGroups[0];
    assert.deepEqual(tg?.targets, [
      { id: '10.0.0.1', port: 5432 },
      { id: '10.0.0.2', port: 6432 },
    ]);
    assert.deepEqual(tg?.healthCheck, { port: 'traffic-port', enabled: true });
    assert.deepEqual(tg?.attributes, { 'deregistration_delay.timeout_seconds': '45' });
  });

  it('instance targets name declared instances; targetType is inferred', () => {
    const cfg = parseConfig(
      `instances:
  - { id: i-0abc, address: 127.0.0.1 }
  - { id: i-0def, address: localhost }
targetGroups:
  - name: app
    protocol: HTTP
    port: 3000
    healthCheck: { protocol: HTTPS, port: 3443, matcher: 200 }
    targets: [ { id: i-0abc }, { id: i-0def, port: 3001 } ]
`,
      'lb.yaml',
    );
    assert.deepEqual(cfg.declared.instances, [
      { id: 'i-0abc', address: '127.0.0.1' },
      { id: 'i-0def', address: 'localhost' },
    ]);
    assert.equal(cfg.declared.targetGroups[0]?.targetType, 'instance');
    assert.equal(cfg.declared.targetGroups[0]?.healthCheck.matcher, '200');
  });

  it('anchors and merge keys share a block between target groups', () => {
    const cfg = parseConfig(
      `targetGroups:
  - name: a
    protocol: HTTP
    port: 80
    healthCheck: &hc { path: /ready, intervalSeconds: 10 }
  - name: b
    protocol: HTTP
    port: 81
    healthCheck:
      <<: *hc
      matcher: "200-299"
`,
      'lb.yaml',
    );
    assert.deepEqual(cfg.declared.targetGroups[1]?.healthCheck, { path: '/ready', intervalSeconds: 10, matcher: '200-299' });
  });

  it('reads the admin block; stateDir is resolved against the file, an unquoted account id is accepted', () => {
    const cfg = parseConfig(
      `admin:
  address: "127.0.0.1:9900"
  region: eu-west-1
  accountId: 123456789012
  credentials:
    - { accessKeyId: AKIDEXAMPLE, secretAccessKey: secret }
  authentication: false
  stateDir: ./state
`,
      '/etc/ebb/lb.yaml',
    );
    assert.deepEqual(cfg.admin, {
      address: '127.0.0.1:9900',
      region: 'eu-west-1',
      accountId: '123456789012',
      credentials: [{ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }],
      authentication: false,
      stateDir: resolve('/etc/ebb/state'),
    });
    assert.equal(parseConfig('admin: { address: "[::1]:0" }', 'x.yaml').admin.address, '[::1]:0');
  });
});

describe('parseConfig: bad files name the line and the field', () => {
  // Each case: a file, the line the problem is on, the field path and a phrase the message must carry.
  const cases: Array<{ name: string; text: string; line: number; path: string; says: RegExp }> = [
    {
      name: 'unknown key (with the allowed ones), beside the missing one it was meant to be',
      text: EXAMPLE.replace('    protocol: HTTP\n    port: 80', '    protocol: HTTP\n    prot: 80'),
      line: 12,
      path: 'targetGroups[0].prot',
      says: /unknown key "prot"; allowed keys: name, protocol, port, targetType, healthCheck, attributes, targets/,
    },
    {
      name: 'a required key missing',
      text: EXAMPLE.replace('    protocol: HTTP\n    port: 80', '    protocol: HTTP'),
      line: 10,
      path: 'targetGroups[0].port',
      says: /is required \(an integer from 1 to 65535\)/,
    },
    {
      name: 'wrong type',
      text: EXAMPLE.replace('port: 8080', 'port: "8080"'),
      line: 5,
      path: 'loadBalancers[0].listeners[0].port',
      says: /must be an integer from 1 to 65535; got "8080"/,
    },
    {
      name: 'a key with no value',
      text: EXAMPLE.replace('port: 8080', 'port:'),
      line: 5,
      path: 'loadBalancers[0].listeners[0].port',
      says: /must be an integer from 1 to 65535; got no value$/,
    },
    {
      name: 'wrong type: a mapping where a list is expected',
      text: EXAMPLE.replace('    targets:\n      - { id: 127.0.0.1, port: 3001 }\n      - { id: 127.0.0.1, port: 3002 }', '    targets: { id: 127.0.0.1 }'),
      line: 23,
      path: 'targetGroups[0].targets',
      says: /must be a list; got a mapping/,
    },
    {
      name: 'out-of-range interval',
      text: EXAMPLE.replace('intervalSeconds: 5', 'intervalSeconds: 2'),
      line: 15,
      path: 'targetGroups[0].healthCheck.intervalSeconds',
      says: /must be an integer from 5 to 300; got 2/,
    },
    {
      name: 'timeout not below interval',
      text: EXAMPLE.replace('timeoutSeconds: 2', 'timeoutSeconds: 5'),
      line: 16,
      path: 'targetGroups[0].healthCheck.timeoutSeconds',
      says: /must be smaller than intervalSeconds \(5\); got 5$/,
    },
    {
      name: 'timeout default not below a short interval',
      text: EXAMPLE.replace('      timeoutSeconds: 2\n', ''),
      line: 15,
      path: 'targetGroups[0].healthCheck.intervalSeconds',
      says: /must be greater than timeoutSeconds \(5, the default for HTTP\); got 5; set a shorter timeoutSeconds as well/,
    },
    {
      name: 'bad matcher',
      text: EXAMPLE.replace('matcher: "200-399"', 'matcher: "20x"'),
      line: 19,
      path: 'targetGroups[0].healthCheck.matcher',
      says: /matcher '20x' is not valid: use codes like 200, 200,202 or 200-399/,
    },
    {
      name: 'health-check path without a slash',
      text: EXAMPLE.replace('path: /health', 'path: health'),
      line: 14,
      path: 'targetGroups[0].healthCheck.path',
      says: /must be a path starting with '\/'.*; got "health"/,
    },
    {
      name: 'TCP health check on an HTTP group',
      text: EXAMPLE.replace('      path: /health\n', '      protocol: TCP\n'),
      line: 14,
      path: 'targetGroups[0].healthCheck.protocol',
      says: /Health check protocol TCP is not supported for health checks of an HTTP target group; use HTTP or HTTPS/,
    },
    {
      name: 'slow start with least outstanding requests',
      text: EXAMPLE.replace('load_balancing.algorithm.type: round_robin', 'load_balancing.algorithm.type: least_outstanding_requests\n      slow_start.duration_seconds: 30'),
      line: 23,
      path: 'targetGroups[0].attributes["slow_start.duration_seconds"]',
      says: /You cannot enable both slow start mode and least outstanding requests/,
    },
    {
      name: 'an HTTPS target group whose matcher names 5xx codes',
      text: EXAMPLE.replace('    protocol: HTTP\n    port: 80', '    protocol: HTTPS\n    port: 80').replace('matcher: "200-399"', 'matcher: "200-502"'),
      line: 19,
      path: 'targetGroups[0].healthCheck.matcher',
      says: /names codes above 499, which an HTTPS target group's checks cannot count as healthy; use codes from 200 to 499/,
    },
    {
      name: 'unknown attribute key',
      text: EXAMPLE.replace('load_balancing.algorithm.type: round_robin', 'load_balancing.algorithm: round_robin'),
      line: 22,
      path: 'targetGroups[0].attributes["load_balancing.algorithm"]',
      says: /Attribute key 'load_balancing.algorithm' is not recognized for a target group; allowed keys: deregistration_delay.timeout_seconds, /,
    },
    {
      name: 'attribute not for this protocol',
      text: EXAMPLE.replace('load_balancing.algorithm.type: round_robin', 'deregistration_delay.connection_termination.enabled: true'),
      line: 22,
      path: 'targetGroups[0].attributes["deregistration_delay.connection_termination.enabled"]',
      says: /not supported on a HTTP target group/,
    },
    {
      name: 'out-of-range deregistration delay',
      text: EXAMPLE.replace('deregistration_delay.timeout_seconds: 30', 'deregistration_delay.timeout_seconds: 4000'),
      line: 21,
      path: 'targetGroups[0].attributes["deregistration_delay.timeout_seconds"]',
      says: /must be from 0 to 3600; got '4000'/,
    },
    {
      name: 'listener naming a missing group',
      text: EXAMPLE.replace('targetGroup: web', 'targetGroup: api'),
      line: 8,
      path: 'loadBalancers[0].listeners[0].defaultActions[0].targetGroup',
      says: /names target group "api", which is not declared under targetGroups; declared: web/,
    },
    {
      name: 'duplicate target group names',
      text: `${EXAMPLE}  - name: web\n    protocol: HTTP\n    port: 81\n`,
      line: 26,
      path: 'targetGroups[1].name',
      says: /the target group name "web" is already used at targetGroups\[0\]\.name/,
    },
    {
      name: 'invalid target group name',
      text: EXAMPLE.replace('  - name: web\n    protocol', '  - name: -web\n    protocol'),
      line: 10,
      path: 'targetGroups[0].name',
      says: /name '-web' is not valid: use 1-32 letters, digits and hyphens/,
    },
    {
      name: 'TCP listener on an application load balancer',
      text: EXAMPLE.replace('      - protocol: HTTP\n', '      - protocol: TCP\n'),
      line: 4,
      path: 'loadBalancers[0].listeners[0].protocol',
      says: /Listener protocol 'TCP' must be one of 'HTTP, HTTPS' for a load balancer of type application; TCP and TLS listeners belong to a load balancer of type network/,
    },
    {
      name: 'an HTTPS listener without certificates',
      text: EXAMPLE.replace('      - protocol: HTTP\n', '      - protocol: HTTPS\n'),
      line: 4,
      path: 'loadBalancers[0].listeners[0].protocol',
      says: /an HTTPS listener needs certificates: a list whose first entry is the default, each \{ certificateFile, privateKeyFile \} or \{ certificateArn \}/,
    },
    {
      name: 'a Classic load balancer in the file',
      text: EXAMPLE.replace('  - name: web\n    listeners:', '  - name: web\n    type: classic\n    listeners:'),
      line: 3,
      path: 'loadBalancers[0].type',
      says: /Classic load balancers are created through the Classic ELB API/,
    },
    {
      name: 'a target id that is not an IP address',
      text: EXAMPLE.replace('- { id: 127.0.0.1, port: 3002 }', '- { id: i-0abc, port: 3002 }'),
      line: 25,
      path: 'targetGroups[0].targets[1].id',
      says: /must be an IP address; got "i-0abc"\. The group's targetType is ip \(the default when any id is an IP address\); to name instances, set targetType: instance/,
    },
    {
      name: 'an instance target that is not declared',
      text: EXAMPLE.replace('    targets:\n', '    targetType: instance\n    targets:\n').replace('- { id: 127.0.0.1, port: 3002 }', '- { id: i-0abc, port: 3002 }'),
      line: 26,
      path: 'targetGroups[0].targets[1].id',
      says: /names instance "i-0abc", which is not declared under instances; declare it there with its address/,
    },
    {
      name: 'the same port twice',
      text: EXAMPLE.replace(
        '            targetGroup: web\n',
        '            targetGroup: web\n      - { protocol: HTTP, port: 8080, address: 127.0.0.1, defaultActions: [ { type: forward, targetGroup: web } ] }\n',
      ),
      line: 9,
      path: 'loadBalancers[0].listeners[1].port',
      says: /port 8080 on 127.0.0.1 is already taken by the listener at loadBalancers\[0\]\.listeners\[0\]/,
    },
    {
      name: 'YAML syntax error',
      text: EXAMPLE.replace('      - { id: 127.0.0.1, port: 3001 }', '      - { id: 127.0.0.1, port: 3001'),
      line: 25,
      path: '',
      says: /YAML syntax error: /,
    },
    {
      name: 'YAML duplicate key',
      text: EXAMPLE.replace('      intervalSeconds: 5\n', '      intervalSeconds: 5\n      intervalSeconds: 6\n'),
      line: 16,
      path: '',
      says: /YAML syntax error: Map keys must be unique \("intervalSeconds"\)/,
    },
    {
      name: 'admin: bad address and account id',
      text: `${EXAMPLE}admin:\n  address: localhost\n  accountId: "1234"\n`,
      line: 27,
      path: 'admin.address',
      says: /must be "HOST:PORT", such as "127.0.0.1:9900"; got "localhost"/,
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const message = invalid(c.text);
      const prefix = new RegExp(`^lb\\.yaml:${c.line}:\\d+: ${c.path === '' ? '' : `${escape(c.path)}: `}`);
      const line = message.split('\n').find((l) => prefix.test(l));
      assert.ok(line !== undefined, `no problem reported at line ${c.line} for '${c.path}'; message: ${message}`);
      assert.match(line, c.says, `message: ${message}`);
      if (process.env.SHOW_CONFIG_ERRORS) console.log(message);
    });
  }

  it('the message for the example with a short interval reads exactly so', () => {
    assert.equal(
      invalid(EXAMPLE.replace('intervalSeconds: 5', 'intervalSeconds: 2'), 'lb.yaml'),
      'lb.yaml:15:24: targetGroups[0].healthCheck.intervalSeconds: must be an integer from 5 to 300; got 2',
    );
  });

  it('lists every problem, one per line, in file order', () => {
    const text = EXAMPLE.replace('port: 8080', 'port: 0')
      .replace('intervalSeconds: 5', 'intervalSeconds: 2')
      .replace('    port: 80 ', '    port: 80\n    colour: blue ')
      .replace('matcher: "200-399"', 'matcher: "600"');
    const lines = invalid(text).split('\n');
    assert.deepEqual(
      lines.map((l) => /^lb\.yaml:(\d+):\d+: (\S+):/.exec(l)?.slice(1, 3)),
      [
        ['5', 'loadBalancers[0].listeners[0].port'],
        ['13', 'targetGroups[0].colour'],
        ['16', 'targetGroups[0].healthCheck.intervalSeconds'],
        ['20', 'targetGroups[0].healthCheck.matcher'],
      ],
    );
  });

  it('lists cross-check problems together too', () => {
    const text = EXAMPLE.replace('targetGroup: web', 'targetGroup: nope').replace(
      'deregistration_delay.timeout_seconds: 30',
      'deregistration_delay.timeout_seconds: -1',
    );
    const lines = invalid(text).split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', /^lb\.yaml:8:26: .*targetGroup: names target group "nope"/);
    assert.match(lines[1] ?? '', /^lb\.yaml:21:45: .*deregistration_delay\.timeout_seconds"\]: Attribute 'deregistration_delay\.timeout_seconds' must be an integer from 0 to 3600; got '-1'/);
  });

  it('a file that is not a mapping says what the top level must be', () => {
    assert.equal(
      invalid('- web\n'),
      'lb.yaml:1:1: top level: must be a mapping with loadBalancers, targetGroups, instances and admin; got a list',
    );
  });
});

describe('loadConfigFile', () => {
  it('reads a file, and names it in errors', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ebb-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const good = join(dir, 'lb.yaml');
    await writeFile(good, EXAMPLE);
    assert.equal((await loadConfigFile(good)).declared.targetGroups[0]?.name, 'web');
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, EXAMPLE.replace('port: 8080', 'port: 70000'));
    await assert.rejects(loadConfigFile(bad), (err: unknown) => {
      assert.ok(EbbError.is(err));
      assert.equal(err.code, 'ConfigInvalid');
      assert.equal(err.message, `${bad}:5:15: loadBalancers[0].listeners[0].port: must be an integer from 1 to 65535; got 70000`);
      return true;
    });
  });

  it('a missing file is ConfigUnreadable naming the path', async () => {
    await assert.rejects(loadConfigFile('/nonexistent/ebb/lb.yaml'), (err: unknown) => {
      assert.ok(EbbError.is(err));
      assert.equal(err.code, 'ConfigUnreadable');
      assert.match(err.message, /Cannot read the configuration file \/nonexistent\/ebb\/lb\.yaml: no such file/);
      return true;
    });
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
