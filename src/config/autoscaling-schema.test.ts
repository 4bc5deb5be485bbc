import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { parseConfig } from './load-config.ts';

/** The example, with the target group it names. */
const EXAMPLE = `autoScaling:
  onShutdown: stop
targetGroups:
  - { name: app, protocol: HTTP, port: 80, targetType: instance }
launchTemplates:
  - name: app
    command: [node, server.js, 8080]
    environment: { NODE_ENV: production, WORKERS: 2 }
    workingDirectory: ./app
    stopTimeoutSeconds: 30
  - name: script
    script: |
      #!/bin/sh
      exec sleep 60
autoScalingGroups:
  - name: web
    launchTemplate: app
    launchTemplateVersion: 3
    minSize: 1
    maxSize: 6
    desiredCapacity: 3
    targetGroups: [app]
    loadBalancerNames: [classic-lb]
    healthCheckType: ELB
    healthCheckGracePeriod: 10
    defaultInstanceWarmup: 5
    terminationPolicies: [OldestInstance]
    lifecycleHooks:
      - name: drain-notify
        transition: autoscaling:EC2_INSTANCE_TERMINATING
        heartbeatTimeout: 60
        defaultResult: CONTINUE
        notificationTargetURL: http://127.0.0.1:9000/hook
        notificationMetadata: "..."
  - name: batch
    launchTemplate: script
    minSize: 0
    maxSize: 2
    lifecycleHooks:
      - { name: log, transition: autoscaling:EC2_INSTANCE_LAUNCHING, notificationCommand: [sh, -c, "cat >> /tmp/hooks.log"] }
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, 'as.yaml');
  } catch (err) {
    assert.ok(EbbError.is(err) && err.code === 'ConfigInvalid', String(err));
    return err.message.split('\n');
  }
  assert.fail('the file was accepted');
}

describe('the Auto Scaling sections of the file', () => {
  it('read into a declaration with AWS\'s defaults; a script is kept base64-encoded; a relative working directory is the file\'s', () => {
    const cfg = parseConfig(EXAMPLE, '/etc/ebb/ebb.yaml');
    assert.equal(cfg.autoScaling.onShutdown, 'stop');
    assert.deepEqual(cfg.autoScaling.declared.launchTemplates, [
      {
        name: 'app',
        data: { command: ['node', 'server.js', '8080'], environment: { NODE_ENV: 'production', WORKERS: '2' }, workingDirectory: '/etc/ebb/app', stopTimeoutSeconds: 30 },
      },
      { name: 'script', data: { userData: Buffer.from('#!/bin/sh\nexec sleep 60\n').toString('base64') } },
    ]);
    const [web, batch] = cfg.autoScaling.declared.groups;
    assert.deepEqual(web, {
      name: 'web',
      launchTemplate: 'app',
      launchTemplateVersion: '3',
      minSize: 1,
      maxSize: 6,
      desiredCapacity: 3,
      targetGroups: ['app'],
      loadBalancerNames: ['classic-lb'],
      healthCheckType: 'ELB',
      healthCheckGracePeriod: 10,
      defaultInstanceWarmup: 5,
      terminationPolicies: ['OldestInstance'],
      newInstancesProtectedFromScaleIn: false,
      lifecycleHooks: [
        {
          name: 'drain-notify',
          transition: 'autoscaling:EC2_INSTANCE_TERMINATING',
          heartbeatTimeout: 60,
          defaultResult: 'CONTINUE',
          notificationTargetURL: 'http://127.0.0.1:9000/hook',
          notificationMetadata: '...',
        },
      ],
    });
    assert.deepEqual(batch, {
      name: 'batch',
      launchTemplate: 'script',
      launchTemplateVersion: '$Default',
      minSize: 0,
      maxSize: 2,
      targetGroups: [],
      loadBalancerNames: [],
      healthCheckType: 'EC2',
      healthCheckGracePeriod: 0,
      terminationPolicies: ['Default'],
      newInstancesProtectedFromScaleIn: false,
      lifecycleHooks: [{ name: 'log', transition: 'autoscaling:EC2_INSTANCE_LAUNCHING', heartbeatTimeout: 3600, defaultResult: 'ABANDON', notificationCommand: ['sh', '-c', 'cat >> /tmp/hooks.log'] }],
    });
  });

  it('a file without them declares none, and says nothing of the shutdown', () => {
    const cfg = parseConfig('', 'empty.yaml');
    assert.deepEqual(cfg.autoScaling.declared, { launchTemplates: [], groups: [] });
    assert.equal(cfg.autoScaling.onShutdown, undefined);
  });

  it('where() points at a field as the other problems do', () => {
    const cfg = parseConfig(EXAMPLE, 'as.yaml');
    assert.equal(cfg.autoScaling.where(['autoScalingGroups', 0, 'targetGroups', 0]), 'as.yaml:22:20: autoScalingGroups[0].targetGroups[0]');
    assert.equal(cfg.autoScaling.where(['autoScalingGroups', 1, 'launchTemplate']), 'as.yaml:36:21: autoScalingGroups[1].launchTemplate');
  });

  it('bad values: each problem on its line, with the field and what was expected', () => {
    const text = `targetGroups:
  - { name: ips, protocol: HTTP, port: 80 }
launchTemplates:
  - name: ap
    userData: "abc"
  - name: two
    command: [node]
    script: echo
  - name: none
  - name: env
    command: [x]
    environment: { "A=B": 1 }
autoScalingGroups:
  - name: web
    launchTemplate: two
    minSize: 3
    maxSize: 2
    targetGroups: [ips, ips]
    lifecycleHooks:
      - { name: h, transition: autoscaling:EC2_INSTANCE_TERMINATING, heartbeatTimeout: 10, notificationTargetURL: "https://x" }
      - { name: h, transition: LAUNCH }
    colour: blue
  - name: web
    launchTemplate: two
    launchTemplateVersion: latest
    minSize: 1
    maxSize: 200
autoScaling: { onShutdown: kill }
`;
    assert.deepEqual(problems(text), [
      "as.yaml:4:11: launchTemplates[0].name: The launch template name 'ap' is not valid: a launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _",
      'as.yaml:5:15: launchTemplates[0].userData: Invalid BASE64 encoding of user data: only A-Z, a-z, 0-9, + and / in groups of four, padded with =, are allowed. Encode the script with base64 (e.g. base64 -w0 script.sh)',
      'as.yaml:8:13: launchTemplates[1].script: a template runs one thing: give only one of command, script and userData (this one also has command)',
      'as.yaml:9:5: launchTemplates[2]: says nothing to run: give command (a program and its arguments), script (a shell script) or userData (a base64 script)',
      'as.yaml:20:88: autoScalingGroups[0].lifecycleHooks[0].heartbeatTimeout: must be an integer from 30 to 7200; got 10',
      'as.yaml:20:115: autoScalingGroups[0].lifecycleHooks[0].notificationTargetURL: must be an http:// URL, where ebb POSTs each notification; got "https://x"',
      'as.yaml:21:32: autoScalingGroups[0].lifecycleHooks[1].transition: must be one of autoscaling:EC2_INSTANCE_LAUNCHING, autoscaling:EC2_INSTANCE_TERMINATING; got "LAUNCH"',
      'as.yaml:22:5: autoScalingGroups[0].colour: unknown key "colour"; allowed keys: name, launchTemplate, launchTemplateVersion, minSize, maxSize, desiredCapacity, targetGroups, loadBalancerNames, healthCheckType, healthCheckGracePeriod, defaultInstanceWarmup, terminationPolicies, newInstancesProtectedFromScaleIn, lifecycleHooks',
      'as.yaml:25:28: autoScalingGroups[1].launchTemplateVersion: must be $Default, $Latest or a version number; got "latest"',
      'as.yaml:27:14: autoScalingGroups[1].maxSize: must be an integer from 0 to 100; got 200',
      'as.yaml:28:28: autoScaling.onShutdown: must be one of leave, stop; got "kill"',
    ]);
  });

  it('values that do not fit together: sizes, names used twice, a target group that cannot take instances, the catalog\'s rules', () => {
    const text = `targetGroups:
  - { name: ips, protocol: HTTP, port: 80 }
launchTemplates:
  - name: app
    command: [node]
  - name: app
    command: [x]
    environment: { "A=B": 1 }
autoScalingGroups:
  - name: web
    launchTemplate: app
    minSize: 3
    maxSize: 2
    targetGroups: [ips, ips]
    lifecycleHooks:
      - { name: h, transition: autoscaling:EC2_INSTANCE_TERMINATING }
      - { name: h, transition: autoscaling:EC2_INSTANCE_LAUNCHING }
  - name: web
    launchTemplate: app
    minSize: 1
    maxSize: 2
    desiredCapacity: 5
`;
    assert.deepEqual(problems(text), [
      'as.yaml:6:11: launchTemplates[1].name: the launch template name "app" is already used at launchTemplates[0].name; launch template names must be unique',
      "as.yaml:8:18: launchTemplates[1].environment: The environment variable 'A=B' is not valid: names are non-empty without '=' or NUL, values are strings without NUL",
      'as.yaml:12:14: autoScalingGroups[0].minSize: must be less than or equal to maxSize (2); got 3',
      'as.yaml:14:20: autoScalingGroups[0].targetGroups[0]: target group "ips" has targetType ip (the default when it lists no instance targets); Auto Scaling registers instances: set targetType: instance on it',
      'as.yaml:14:25: autoScalingGroups[0].targetGroups[1]: target group "ips" is listed twice (also targetGroups[0])',
      'as.yaml:14:25: autoScalingGroups[0].targetGroups[1]: target group "ips" has targetType ip (the default when it lists no instance targets); Auto Scaling registers instances: set targetType: instance on it',
      'as.yaml:17:17: autoScalingGroups[0].lifecycleHooks[1].name: the lifecycle hook name "h" is already used at autoScalingGroups[0].lifecycleHooks[0].name; lifecycle hook names must be unique',
      'as.yaml:18:11: autoScalingGroups[1].name: the Auto Scaling group name "web" is already used at autoScalingGroups[0].name; Auto Scaling group names must be unique',
      'as.yaml:22:22: autoScalingGroups[1].desiredCapacity: must be from minSize (1) to maxSize (2); got 5',
    ]);
  });
});
