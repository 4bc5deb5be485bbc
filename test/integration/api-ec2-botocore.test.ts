import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AutoScalingApi, Ec2InstanceView } from '../../src/autoscaling/autoscaling-api.ts';
import { LaunchTemplateCatalog } from '../../src/autoscaling/launch-templates.ts';
import { dispatch } from '../../src/api/dispatch.ts';
import { errorResponse } from '../../src/api/error-response.ts';
import { QueryParams } from '../../src/api/query-parser.ts';
import type { ControlApi } from '../../src/control/control-api.ts';
import { InMemoryStateStore } from '../../src/store/in-memory-state-store.ts';
import { FakeClock } from '../fakes/fake-clock.ts';
import { missingClient } from './api-harness.ts';

/**
 * What ebb's EC2 answers become in botocore: every response the handlers write (and the error
 * envelope) is parsed by botocore's own EC2QueryParser against the ec2 model, in one Python run, so
 * names, lists, numbers, booleans and timestamps are checked as boto3 and the aws CLI read them.
 * DescribeInstances is checked with instances here, which the real-client test cannot launch.
 */

const skip = missingClient('boto3');
const SCRIPT = fileURLToPath(new URL('../clients/ec2_parse.py', import.meta.url));
const USER_DATA = Buffer.from('#!/bin/sh\nexec node server.js\n').toString('base64');

function facade(instances: Ec2InstanceView[]): AutoScalingApi {
  const store = new InMemoryStateStore();
  const catalog = new LaunchTemplateCatalog({ commit: (ops) => store.commit(ops), clock: new FakeClock(), usedBy: () => [] });
  const api: Partial<AutoScalingApi> = {
    region: 'us-east-1',
    accountId: '123456789012',
    createLaunchTemplate: (input) => catalog.create(input),
    createLaunchTemplateVersion: (input) => catalog.createVersion(input),
    describeLaunchTemplates: (filter) => catalog.describe(filter),
    describeLaunchTemplateVersions: (t, versions) => catalog.describeVersions(t, versions),
    modifyLaunchTemplate: (t, v) => catalog.modify(t, v),
    deleteLaunchTemplate: (t) => catalog.delete(t),
    deleteLaunchTemplateVersions: (t, versions) => catalog.deleteVersions(t, versions),
    describeInstances: () => instances,
  };
  return { ...api, events: new EventEmitter() } as unknown as AutoScalingApi;
}

interface Case {
  readonly operation: string;
  readonly status: number;
  readonly xml: string;
}

function botocoreParse(cases: readonly Case[]): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const child = execFile('python3', [SCRIPT], { timeout: 20_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(new Error(`${err.message}\n${stderr}`));
        return;
      }
      const out = JSON.parse(stdout) as { protocol: string; parsed: any[] };
      assert.equal(out.protocol, 'ec2');
      resolve(out.parsed);
    });
    child.stdin?.end(JSON.stringify(cases));
  });
}

test('botocore parses every EC2 answer ebb writes into the shapes its model promises', { skip: skip ?? false, timeout: 30_000 }, async () => {
  const instances: Ec2InstanceView[] = [
    {
      instanceId: 'i-0123456789abcdef0',
      state: 'running',
      privateIpAddress: '127.0.0.1',
      port: 41000,
      launchTime: Date.UTC(2026, 0, 2, 3, 4, 5),
      launchTemplate: { id: 'lt-0123456789abcdef0', name: 'web', version: 2 },
      group: 'web-asg',
      tags: [],
      pid: 4242,
    },
    { instanceId: 'i-attached', state: 'shutting-down', privateIpAddress: '127.0.0.1', port: 8080, launchTime: Date.UTC(2026, 0, 1), group: null, tags: [] },
  ];
  const as = facade(instances);
  const cases: Case[] = [];
  const run = async (action: string, params: Record<string, string> = {}): Promise<void> => {
    const all = new Map(Object.entries({ Action: action, Version: '2016-11-15', ...params }));
    const ctx = { control: {} as ControlApi, autoscaling: as, requestId: `req-${cases.length}` };
    try {
      const out = await dispatch(new QueryParams(all), ctx);
      cases.push({ operation: action, status: 200, xml: out.xml });
    } catch (err) {
      const res = errorResponse(err, 'ec2', ctx.requestId);
      cases.push({ operation: action, status: res.status, xml: res.body });
    }
  };
  await run('CreateLaunchTemplate', {
    LaunchTemplateName: 'web',
    VersionDescription: 'first',
    'LaunchTemplateData.UserData': USER_DATA,
    'LaunchTemplateData.TagSpecification.1.ResourceType': 'instance',
    'LaunchTemplateData.TagSpecification.1.Tag.1.Key': 'role',
    'LaunchTemplateData.TagSpecification.1.Tag.1.Value': 'web',
    'TagSpecification.1.ResourceType': 'launch-template',
    'TagSpecification.1.Tag.1.Key': 'team',
    'TagSpecification.1.Tag.1.Value': 'edge',
  });
  await run('CreateLaunchTemplateVersion', { LaunchTemplateName: 'web', SourceVersion: '1' });
  await run('DescribeLaunchTemplates');
  await run('DescribeLaunchTemplateVersions', { LaunchTemplateName: 'web' });
  await run('ModifyLaunchTemplate', { LaunchTemplateName: 'web', SetDefaultVersion: '2' });
  await run('DeleteLaunchTemplateVersions', { LaunchTemplateName: 'web', 'LaunchTemplateVersion.1': '1', 'LaunchTemplateVersion.2': '2' });
  await run('DescribeInstances');
  await run('DeleteLaunchTemplate', { LaunchTemplateName: 'web' });
  await run('DescribeLaunchTemplates', { 'LaunchTemplateName.1': 'web' });
  assert.deepEqual(cases.map((c) => c.status), [200, 200, 200, 200, 200, 200, 200, 200, 400]);

  const [created, version, described, versions, modified, deletedVersions, reservations, deleted, notFound] = await botocoreParse(cases);

  const lt = created.LaunchTemplate;
  assert.match(lt.LaunchTemplateId, /^lt-[0-9a-f]{17}$/);
  assert.deepEqual(
    { ...lt, LaunchTemplateId: 'x' },
    {
      LaunchTemplateId: 'x',
      LaunchTemplateName: 'web',
      CreateTime: '2026-01-01T00:00:00+00:00',
      CreatedBy: 'arn:aws:iam::123456789012:root',
      DefaultVersionNumber: 1,
      LatestVersionNumber: 1,
      Tags: [{ Key: 'team', Value: 'edge' }],
    },
  );
  assert.equal(created.ResponseMetadata.RequestId, 'req-0');
  assert.deepEqual(version.LaunchTemplateVersion.LaunchTemplateData, {
    UserData: USER_DATA,
    TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'role', Value: 'web' }] }],
  });
  assert.equal(version.LaunchTemplateVersion.VersionNumber, 2);
  assert.equal(version.LaunchTemplateVersion.DefaultVersion, false);
  assert.equal(described.LaunchTemplates.length, 1);
  assert.deepEqual(versions.LaunchTemplateVersions.map((v: any) => [v.VersionNumber, v.DefaultVersion, v.VersionDescription ?? null]), [
    [2, false, null],
    [1, true, 'first'],
  ]);
  assert.equal(modified.LaunchTemplate.DefaultVersionNumber, 2);
  assert.deepEqual(deletedVersions.SuccessfullyDeletedLaunchTemplateVersions, [{ LaunchTemplateId: lt.LaunchTemplateId, LaunchTemplateName: 'web', VersionNumber: 1 }]);
  assert.equal(deletedVersions.UnsuccessfullyDeletedLaunchTemplateVersions[0].VersionNumber, 2);
  assert.equal(deletedVersions.UnsuccessfullyDeletedLaunchTemplateVersions[0].ResponseError.Code, 'unexpectedError');

  assert.equal(reservations.Reservations.length, 2);
  const [first, second] = reservations.Reservations;
  assert.equal(first.ReservationId, 'r-0123456789abcdef0');
  assert.equal(first.OwnerId, '123456789012');
  assert.deepEqual(first.Groups, []);
  const instance = first.Instances[0];
  assert.deepEqual(instance.State, { Code: 16, Name: 'running' });
  assert.equal(instance.InstanceId, 'i-0123456789abcdef0');
  assert.equal(instance.PrivateIpAddress, '127.0.0.1');
  assert.equal(instance.LaunchTime, '2026-01-02T03:04:05+00:00');
  assert.equal(instance.AmiLaunchIndex, 0);
  assert.deepEqual(
    Object.fromEntries(instance.Tags.map((t: any) => [t.Key, t.Value])),
    { 'aws:autoscaling:groupName': 'web-asg', 'aws:ec2launchtemplate:id': 'lt-0123456789abcdef0', 'aws:ec2launchtemplate:version': '2', 'ebb:port': '41000', 'ebb:pid': '4242' },
  );
  assert.deepEqual(second.Instances[0].State, { Code: 32, Name: 'shutting-down' });

  assert.equal(deleted.LaunchTemplate.LaunchTemplateName, 'web');
  assert.equal(notFound.Error.Code, 'InvalidLaunchTemplateName.NotFoundException');
  assert.match(notFound.Error.Message, /template name web, does not exist/);
  assert.equal(notFound.ResponseMetadata.RequestId, 'req-8');
});
