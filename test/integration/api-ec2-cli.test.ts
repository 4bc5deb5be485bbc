import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createAdminHandler } from '../../src/api/admin-server.ts';
import { AutoScaling } from '../../src/autoscaling/auto-scaling.ts';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import { ActiveHealthChecker } from '../../src/health/active-health-checker.ts';
import { realClock } from '../../src/shared/clock.ts';
import { InMemoryStateStore } from '../../src/store/in-memory-state-store.ts';
import { FakeInstanceRunner } from '../fakes/fake-instance-runner.ts';
import { ACCESS_KEY_ID, aws, cliEnv, failsWith, missingClient, ok, python, REGION, SECRET_ACCESS_KEY, waitFor, type ApiHarness, type CliResult } from './api-harness.ts';

/**
 * ebb's EC2 API (launch templates, DescribeInstances) driven by the real `aws ec2` CLI (v1) and by
 * boto3, against an in-process admin endpoint with the control plane and Auto Scaling behind it.
 * The instance runner is a fake: the one group the boto3 test makes "launches" an instance without a
 * process, so DescribeInstances answers with the facade's real view of it.
 * Each CLI call costs a Python start and the loading of EC2's large model (about a second), so the
 * CLI covers each command once and boto3, in one process, the rest (filters, paginators, more errors).
 */

const skipCli = missingClient('aws');
const skipBoto = missingClient('boto3');
const BOTO3_SCRIPT = fileURLToPath(new URL('../clients/boto3_ec2_flow.py', import.meta.url));
const USER_DATA = Buffer.from('#!/bin/sh\nexec python3 -m http.server "$PORT"\n').toString('base64');
const USER_DATA_2 = Buffer.from('#!/bin/sh\necho two\n').toString('base64');

let h: ApiHarness;
let autoscaling: AutoScaling;
let runner: FakeInstanceRunner;

before(async () => {
  if (skipCli !== null && skipBoto !== null) return;
  const store = new InMemoryStateStore();
  const dataPlane = new HttpDataPlane({ id: 'api-ec2-test' });
  const healthChecker = new ActiveHealthChecker({ clock: realClock });
  const control = new ControlPlane({ clock: realClock, store, dataPlanes: [dataPlane], healthChecker, region: REGION, accountId: '123456789012' });
  await control.start();
  runner = new FakeInstanceRunner(realClock);
  autoscaling = new AutoScaling({ clock: realClock, store, control, runner });
  await autoscaling.start();
  const internalErrors: unknown[] = [];
  const server = createServer(
    createAdminHandler({
      control,
      autoscaling,
      auth: { credentials: [{ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }] },
      log: (entry) => {
        if (entry['level'] === 'error') internalErrors.push(entry);
      },
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const env = cliEnv(ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION);
  h = {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    control,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    region: REGION,
    env,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await autoscaling.close();
      await control.close();
      await dataPlane.close(200);
      if (internalErrors.length > 0) throw new Error(`admin API logged internal errors: ${JSON.stringify(internalErrors)}`);
    },
  };
});
after(async () => {
  if (skipCli !== null && skipBoto !== null) return;
  await h.close();
});

const ec2 = (...args: string[]): Promise<CliResult> => aws(h, ['ec2', ...args]);

test('aws ec2: launch templates from create to delete, describe-instances, and the EC2 error codes', { skip: skipCli ?? false, timeout: 60_000 }, async () => {
  const created = ok(
    await ec2(
      'create-launch-template',
      '--launch-template-name', 'cli-web',
      '--version-description', 'first',
      '--launch-template-data', JSON.stringify({ UserData: USER_DATA, TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'role', Value: 'web' }] }] }),
      '--tag-specifications', 'ResourceType=launch-template,Tags=[{Key=team,Value=edge}]',
    ),
  ).LaunchTemplate;
  assert.match(created.LaunchTemplateId, /^lt-[0-9a-f]{17}$/);
  assert.equal(created.LaunchTemplateName, 'cli-web');
  assert.equal(created.DefaultVersionNumber, 1);
  assert.equal(created.LatestVersionNumber, 1);
  assert.deepEqual(created.Tags, [{ Key: 'team', Value: 'edge' }]);
  assert.equal(created.CreatedBy, 'arn:aws:iam::123456789012:root');
  const id = created.LaunchTemplateId as string;

  const v2 = ok(
    await ec2('create-launch-template-version', '--launch-template-name', 'cli-web', '--source-version', '1', '--version-description', 'second', '--launch-template-data', JSON.stringify({ UserData: USER_DATA_2 })),
  ).LaunchTemplateVersion;
  assert.equal(v2.VersionNumber, 2);
  assert.equal(v2.DefaultVersion, false);
  assert.equal(v2.VersionDescription, 'second');
  // From version 1: its instance tags, with the new UserData.
  assert.deepEqual(v2.LaunchTemplateData, { UserData: USER_DATA_2, TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'role', Value: 'web' }] }] });

  const versions = ok(await ec2('describe-launch-template-versions', '--launch-template-id', id, '--versions', '$Latest', '$Default'));
  assert.deepEqual(
    versions.LaunchTemplateVersions.map((v: any) => [v.VersionNumber, v.DefaultVersion, v.LaunchTemplateData.UserData]),
    [[2, false, USER_DATA_2], [1, true, USER_DATA]],
  );

  // The errors: the CLI exits non-zero and prints the AWS code.
  failsWith(await ec2('create-launch-template', '--launch-template-name', 'cli-web', '--launch-template-data', '{}'), 'InvalidLaunchTemplateName.AlreadyExistsException', /already in use/);
  failsWith(
    await ec2('create-launch-template-version', '--launch-template-id', id, '--launch-template-data', JSON.stringify({ UserData: 'not base64!' })),
    'InvalidUserData.Malformed',
    /BASE64/,
  );
  failsWith(await ec2('describe-launch-templates', '--launch-template-names', 'cli-web', 'cli-missing'), 'InvalidLaunchTemplateName.NotFoundException', /cli-missing/);
  assert.deepEqual(ok(await ec2('describe-instances')), { Reservations: [] });

  const modified = ok(await ec2('modify-launch-template', '--launch-template-id', id, '--default-version', '2')).LaunchTemplate;
  assert.equal(modified.DefaultVersionNumber, 2);

  const deleted = ok(await ec2('delete-launch-template-versions', '--launch-template-name', 'cli-web', '--versions', '1', '2'));
  assert.deepEqual(deleted.SuccessfullyDeletedLaunchTemplateVersions, [{ LaunchTemplateId: id, LaunchTemplateName: 'cli-web', VersionNumber: 1 }]);
  assert.equal(deleted.UnsuccessfullyDeletedLaunchTemplateVersions.length, 1);
  assert.equal(deleted.UnsuccessfullyDeletedLaunchTemplateVersions[0].VersionNumber, 2);
  assert.match(deleted.UnsuccessfullyDeletedLaunchTemplateVersions[0].ResponseError.Message, /default version/);

  const gone = ok(await ec2('delete-launch-template', '--launch-template-id', id)).LaunchTemplate;
  assert.equal(gone.LaunchTemplateName, 'cli-web');
  assert.deepEqual(autoscaling.describeLaunchTemplates(), []);
});

test('boto3: launch templates, paginators, DescribeInstances, and EC2 errors with status and request id', { skip: skipBoto ?? false, timeout: 30_000 }, async () => {
  // One instance for DescribeInstances to show: a group launching from a template, through the facade.
  await autoscaling.createLaunchTemplate({ name: 'ec2-view-template', data: { userData: USER_DATA, instanceTags: [{ key: 'role', value: 'view' }] } });
  await autoscaling.createAutoScalingGroup({ name: 'ec2-view', launchTemplate: { name: 'ec2-view-template' }, minSize: 1, maxSize: 1 });
  await waitFor(() => autoscaling.describeInstances().some((i) => i.state === 'running'), 10_000, 'the group to launch its instance');
  const [launched] = autoscaling.describeInstances();
  assert.equal(runner.launches.length, 1);

  const r = await python(h, BOTO3_SCRIPT);
  assert.equal(r.code, 0, r.stderr);
  const out = r.json as any;
  assert.equal(out.created.LaunchTemplateName, 'boto-web');
  assert.deepEqual(out.created.Tags, [{ Key: 'team', Value: 'edge' }]);
  assert.match(out.request_id, /^[0-9a-f-]{36}$/);
  assert.equal(out.version.VersionNumber, 2);
  assert.deepEqual(out.version.LaunchTemplateData.TagSpecifications, [{ ResourceType: 'instance', Tags: [{ Key: 'role', Value: 'web' }] }]);
  assert.deepEqual(out.paged_templates, ['boto-web']);
  assert.deepEqual(out.versions.map((v: any) => [v.VersionNumber, v.VersionDescription ?? null]), [[2, null], [1, 'from boto3']]);
  assert.equal(out.modified.DefaultVersionNumber, 2);
  assert.deepEqual(out.deleted_versions.SuccessfullyDeletedLaunchTemplateVersions.map((v: any) => v.VersionNumber), [1]);
  assert.deepEqual(out.deleted_versions.UnsuccessfullyDeletedLaunchTemplateVersions.map((v: any) => v.ResponseError.Code), ['unexpectedError']);
  assert.equal(out.paged_reservations.length, 1);
  const instance = out.paged_reservations[0].Instances[0];
  assert.equal(instance.InstanceId, launched?.instanceId);
  assert.deepEqual(instance.State, { Code: 16, Name: 'running' });
  assert.equal(instance.PrivateIpAddress, '127.0.0.1');
  const tags = Object.fromEntries(instance.Tags.map((t: any) => [t.Key, t.Value]));
  assert.equal(tags['aws:autoscaling:groupName'], 'ec2-view');
  assert.equal(tags['aws:ec2launchtemplate:version'], '1');
  assert.equal(tags['ebb:port'], String(launched?.port));
  assert.equal(tags['role'], 'view');
  assert.deepEqual(out.by_group.map((res: any) => res.Instances[0].InstanceId), [launched?.instanceId]);
  assert.deepEqual(out.by_other_group, []);
  assert.equal(out.deleted.LaunchTemplateName, 'boto-web');

  const e = out.errors;
  const codeOf = (x: any): [string, number] => [x.Error.Code, x.Status];
  assert.deepEqual(codeOf(e.unknown_id), ['InvalidLaunchTemplateId.NotFound', 400]);
  assert.match(e.unknown_id.RequestId, /^[0-9a-f-]{36}$/);
  assert.deepEqual(codeOf(e.malformed_id), ['InvalidLaunchTemplateId.Malformed', 400]);
  assert.deepEqual(codeOf(e.both), ['InvalidParameterCombination', 400]);
  assert.deepEqual(codeOf(e.version), ['InvalidLaunchTemplateId.VersionNotFound', 400]);
  assert.deepEqual(codeOf(e.run_instances), ['InvalidAction', 400]);
  assert.match(e.run_instances.Error.Message, /launch templates and DescribeInstances only/);
  assert.deepEqual(codeOf(e.unknown_instance), ['InvalidInstanceID.NotFound', 400]);
  assert.deepEqual(codeOf(e.dry_run), ['InvalidParameterValue', 400]);
});
