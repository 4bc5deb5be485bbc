import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { FakeClock } from '../../../test/fakes/fake-clock.ts';
import type { AutoScalingApi, Ec2InstanceView } from '../../autoscaling/autoscaling-api.ts';
import { LaunchTemplateCatalog } from '../../autoscaling/launch-templates.ts';
import type { ControlApi } from '../../control/control-api.ts';
import { EbbError } from '../../shared/errors.ts';
import { InMemoryStateStore } from '../../store/in-memory-state-store.ts';
import { dispatch } from '../dispatch.ts';
import { QueryParams } from '../query-parser.ts';

/**
 * The EC2 actions through dispatch, with EC2's flattened parameters written as botocore's
 * EC2Serializer writes them, over a real LaunchTemplateCatalog behind a minimal facade.
 */

const SCRIPT = Buffer.from('#!/bin/sh\necho hi\n').toString('base64');

function facade(instances: Ec2InstanceView[] = []): AutoScalingApi {
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
    describeInstances: (ids) => {
      if (ids === undefined) return instances;
      const unknown = ids.filter((id) => !instances.some((i) => i.instanceId === id));
      if (unknown.length > 0) throw new EbbError('InvalidInstanceID.NotFound', `The instance IDs '${unknown.join(', ')}' do not exist`);
      return instances.filter((i) => ids.includes(i.instanceId));
    },
  };
  return { ...api, events: new EventEmitter() } as unknown as AutoScalingApi;
}

type Answer = Record<string, any>;

/** The entries of an EC2 list as fast-xml-parser reads it (an empty list is ''). */
function items(list: unknown): Answer[] {
  return list === '' || list === undefined ? [] : ((list as Answer)['item'] as Answer[]);
}

/** Runs one EC2 action and returns the members of its response, parsed back from the XML. */
async function call(as: AutoScalingApi | undefined, action: string, params: Record<string, string> = {}): Promise<Answer> {
  const all = new Map(Object.entries({ Action: action, Version: '2016-11-15', ...params }));
  const out = await dispatch(new QueryParams(all), {
    control: {} as ControlApi,
    ...(as === undefined ? {} : { autoscaling: as }),
    requestId: 'req-1',
  });
  assert.equal(out.service, 'ec2');
  const parsed = new XMLParser({ parseTagValue: false, isArray: (name) => name === 'item' }).parse(out.xml) as Answer;
  const body = parsed[`${action}Response`] as Answer;
  assert.equal(body['requestId'], 'req-1');
  return body;
}

async function fails(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(EbbError.is(err), String(err));
    assert.equal(err.code, code, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  });
}

test('CreateLaunchTemplate reads EC2 parameters and answers launchTemplate with lowerCamel members', async () => {
  const as = facade();
  const r = await call(as, 'CreateLaunchTemplate', {
    LaunchTemplateName: 'web',
    VersionDescription: 'first',
    'LaunchTemplateData.UserData': SCRIPT,
    'LaunchTemplateData.ImageId': 'ami-12345678',
    'LaunchTemplateData.TagSpecification.1.ResourceType': 'instance',
    'LaunchTemplateData.TagSpecification.1.Tag.1.Key': 'role',
    'LaunchTemplateData.TagSpecification.1.Tag.1.Value': 'web',
    'LaunchTemplateData.TagSpecification.2.ResourceType': 'volume',
    'LaunchTemplateData.TagSpecification.2.Tag.1.Key': 'ignored',
    'TagSpecification.1.ResourceType': 'launch-template',
    'TagSpecification.1.Tag.1.Key': 'team',
    'TagSpecification.1.Tag.1.Value': 'edge',
    ClientToken: 'abc',
  });
  const lt = r['launchTemplate'] as Answer;
  assert.match(lt['launchTemplateId'], /^lt-[0-9a-f]{17}$/);
  assert.equal(lt['launchTemplateName'], 'web');
  assert.equal(lt['defaultVersionNumber'], '1');
  assert.equal(lt['latestVersionNumber'], '1');
  assert.equal(lt['createdBy'], 'arn:aws:iam::123456789012:root');
  assert.equal(lt['createTime'], '2026-01-01T00:00:00.000Z');
  assert.deepEqual(lt['tagSet'], { item: [{ key: 'team', value: 'edge' }] });
  const [version] = as.describeLaunchTemplateVersions({ name: 'web' });
  assert.deepEqual(version?.template.versions[0]?.data, { userData: SCRIPT, instanceTags: [{ key: 'role', value: 'web' }] });

  await fails(call(as, 'CreateLaunchTemplate', { 'LaunchTemplateData.UserData': SCRIPT }), 'MissingParameter', /LaunchTemplateName/);
  await fails(
    call(as, 'CreateLaunchTemplate', { LaunchTemplateName: 'web2', 'TagSpecification.1.ResourceType': 'instance' }),
    'InvalidParameterValue',
    /TagSpecification\.1\.ResourceType/,
  );
  await fails(
    call(as, 'CreateLaunchTemplate', { LaunchTemplateName: 'web2', 'LaunchTemplateData.TagSpecification.1.ResourceType': 'vpc' }),
    'InvalidParameterValue',
    /LaunchTemplateData\.TagSpecification\.1\.ResourceType/,
  );
  await fails(call(as, 'CreateLaunchTemplate', { LaunchTemplateName: 'web2', DryRun: 'true' }), 'InvalidParameterValue', /DryRun/);
  await fails(call(as, 'CreateLaunchTemplate', { LaunchTemplateName: 'web2', DryRun: 'maybe' }), 'InvalidParameterValue', /DryRun/);
  await fails(call(as, 'CreateLaunchTemplate', { LaunchTemplateName: 'web', 'LaunchTemplateData.UserData': SCRIPT }), 'InvalidLaunchTemplateName.AlreadyExistsException');
  await fails(call(as, 'CreateLaunchTemplate', { LaunchTemplateName: 'web2', 'LaunchTemplateData.UserData': 'a!' }), 'InvalidUserData.Malformed');
  // No LaunchTemplateData at all (botocore sends nothing for `{}`): a template with empty data.
  const empty = await call(as, 'CreateLaunchTemplate', { LaunchTemplateName: 'empty' });
  assert.equal((empty['launchTemplate'] as Answer)['launchTemplateName'], 'empty');
});

test('versions: create from a source, describe with $Latest/$Default and bounds, modify, delete versions', async () => {
  const as = facade();
  const created = await call(as, 'CreateLaunchTemplate', {
    LaunchTemplateName: 'web',
    'LaunchTemplateData.UserData': SCRIPT,
    'LaunchTemplateData.TagSpecification.1.ResourceType': 'instance',
    'LaunchTemplateData.TagSpecification.1.Tag.1.Key': 'role',
    'LaunchTemplateData.TagSpecification.1.Tag.1.Value': 'web',
  });
  const id = (created['launchTemplate'] as Answer)['launchTemplateId'] as string;
  const v2 = (await call(as, 'CreateLaunchTemplateVersion', { LaunchTemplateId: id, SourceVersion: '1', VersionDescription: 'two' }))['launchTemplateVersion'] as Answer;
  assert.equal(v2['versionNumber'], '2');
  assert.equal(v2['versionDescription'], 'two');
  assert.equal(v2['defaultVersion'], 'false');
  assert.deepEqual(v2['launchTemplateData'], {
    userData: SCRIPT,
    tagSpecificationSet: { item: [{ resourceType: 'instance', tagSet: { item: [{ key: 'role', value: 'web' }] } }] },
  });
  await call(as, 'CreateLaunchTemplateVersion', { LaunchTemplateName: 'web', 'LaunchTemplateData.UserData': SCRIPT });

  const versions = async (params: Record<string, string>): Promise<string[]> => {
    const r = await call(as, 'DescribeLaunchTemplateVersions', params);
    return items(r['launchTemplateVersionSet']).map((v) => v['versionNumber'] as string);
  };
  assert.deepEqual(await versions({ LaunchTemplateId: id }), ['3', '2', '1']);
  assert.deepEqual(await versions({ LaunchTemplateName: 'web', 'LaunchTemplateVersion.1': '$Latest', 'LaunchTemplateVersion.2': '$Default' }), ['3', '1']);
  assert.deepEqual(await versions({ LaunchTemplateName: 'web', MinVersion: '2', MaxVersion: '2' }), ['2']);
  assert.deepEqual(await versions({ LaunchTemplateName: 'web', 'Filter.1.Name': 'is-default-version', 'Filter.1.Value.1': 'true' }), ['1']);
  assert.deepEqual(await versions({ 'LaunchTemplateVersion.1': '$Latest' }), ['3']);
  await fails(call(as, 'DescribeLaunchTemplateVersions', { LaunchTemplateId: id, 'LaunchTemplateVersion.1': '8' }), 'InvalidLaunchTemplateId.VersionNotFound');
  await fails(call(as, 'DescribeLaunchTemplateVersions', { LaunchTemplateId: id, MinVersion: 'x' }), 'InvalidParameterValue', /MinVersion/);
  await fails(call(as, 'DescribeLaunchTemplateVersions', { LaunchTemplateId: id, LaunchTemplateName: 'web' }), 'InvalidParameterCombination');

  const modified = (await call(as, 'ModifyLaunchTemplate', { LaunchTemplateName: 'web', SetDefaultVersion: '3' }))['launchTemplate'] as Answer;
  assert.equal(modified['defaultVersionNumber'], '3');
  const unchanged = (await call(as, 'ModifyLaunchTemplate', { LaunchTemplateId: id }))['launchTemplate'] as Answer;
  assert.equal(unchanged['defaultVersionNumber'], '3');
  await fails(call(as, 'ModifyLaunchTemplate', {}), 'MissingParameter');

  const del = await call(as, 'DeleteLaunchTemplateVersions', { LaunchTemplateName: 'web', 'LaunchTemplateVersion.1': '1', 'LaunchTemplateVersion.2': '3', 'LaunchTemplateVersion.3': '9' });
  assert.deepEqual(del['successfullyDeletedLaunchTemplateVersionSet'], { item: [{ launchTemplateId: id, launchTemplateName: 'web', versionNumber: '1' }] });
  const failed = (del['unsuccessfullyDeletedLaunchTemplateVersionSet'] as Answer)['item'] as Answer[];
  assert.deepEqual(failed.map((f) => [f['versionNumber'], f['responseError']['code']]), [['3', 'unexpectedError'], ['9', 'launchTemplateVersionDoesNotExist']]);
  await fails(call(as, 'DeleteLaunchTemplateVersions', { LaunchTemplateName: 'web' }), 'MissingParameter');

  const gone = (await call(as, 'DeleteLaunchTemplate', { LaunchTemplateId: id }))['launchTemplate'] as Answer;
  assert.equal(gone['launchTemplateName'], 'web');
  await fails(call(as, 'DeleteLaunchTemplate', { LaunchTemplateId: id }), 'InvalidLaunchTemplateId.NotFound');
  await fails(call(as, 'DeleteLaunchTemplate', { LaunchTemplateId: 'lt-nope' }), 'InvalidLaunchTemplateId.Malformed');
});

test('DescribeLaunchTemplates: flattened id and name lists, filters with wildcards and tags, paging parameters accepted', async () => {
  const as = facade();
  const ids: string[] = [];
  for (const [name, team] of [['web-a', 'edge'], ['web-b', 'core'], ['batch', 'edge']] as const) {
    const r = await call(as, 'CreateLaunchTemplate', { LaunchTemplateName: name, 'TagSpecification.1.ResourceType': 'launch-template', 'TagSpecification.1.Tag.1.Key': 'team', 'TagSpecification.1.Tag.1.Value': team });
    ids.push((r['launchTemplate'] as Answer)['launchTemplateId'] as string);
  }
  const names = async (params: Record<string, string>): Promise<string[]> => {
    const r = await call(as, 'DescribeLaunchTemplates', params);
    return items(r['launchTemplates']).map((t) => t['launchTemplateName'] as string);
  };
  assert.deepEqual(await names({}), ['web-a', 'web-b', 'batch']);
  assert.deepEqual(await names({ 'LaunchTemplateId.1': ids[2] ?? '', 'LaunchTemplateName.1': 'web-a' }), ['web-a', 'batch']);
  assert.deepEqual(await names({ 'Filter.1.Name': 'launch-template-name', 'Filter.1.Value.1': 'web-*' }), ['web-a', 'web-b']);
  assert.deepEqual(await names({ 'Filter.1.Name': 'launch-template-name', 'Filter.1.Value.1': 'web-?', 'Filter.2.Name': 'tag:team', 'Filter.2.Value.1': 'core' }), ['web-b']);
  assert.deepEqual(await names({ 'Filter.1.Name': 'tag-key', 'Filter.1.Value.1': 'team', MaxResults: '10', NextToken: 'x' }), ['web-a', 'web-b', 'batch']);
  assert.deepEqual(await names({ 'Filter.1.Name': 'launch-template-name', 'Filter.1.Value.1': 'nothing*' }), []);
  await fails(call(as, 'DescribeLaunchTemplates', { 'Filter.1.Name': 'image-id', 'Filter.1.Value.1': 'x' }), 'InvalidParameterValue', /'image-id' is invalid/);
  await fails(call(as, 'DescribeLaunchTemplates', { 'Filter.1.Value.1': 'x' }), 'MissingParameter', /Filter\.1\.Name/);
  await fails(call(as, 'DescribeLaunchTemplates', { MaxResults: 'ten' }), 'InvalidParameterValue', /MaxResults/);
  await fails(call(as, 'DescribeLaunchTemplates', { 'LaunchTemplateName.1': 'missing' }), 'InvalidLaunchTemplateName.NotFoundException');
  await fails(call(as, 'DescribeLaunchTemplates', { 'LaunchTemplateId.member.1': ids[0] ?? '' }), 'InvalidParameterValue', /LaunchTemplateId/);
});

test('DescribeInstances: one reservation per instance, state codes, tags ebb adds, filters, malformed and unknown ids', async () => {
  const running: Ec2InstanceView = {
    instanceId: 'i-0123456789abcdef0',
    state: 'running',
    privateIpAddress: '127.0.0.1',
    port: 41000,
    launchTime: Date.UTC(2026, 0, 2),
    launchTemplate: { id: 'lt-0123456789abcdef0', name: 'web', version: 2 },
    group: 'web-asg',
    tags: [{ key: 'role', value: 'web' }],
    pid: 4242,
    logFile: '/var/lib/ebb/instances/i-0123456789abcdef0/output.log',
  };
  const attached: Ec2InstanceView = { instanceId: 'i-legacy', state: 'stopped', privateIpAddress: '127.0.0.1', port: 8080, launchTime: Date.UTC(2026, 0, 1), group: null, tags: [] };
  const as = facade([running, attached]);
  const r = await call(as, 'DescribeInstances');
  const reservations = (r['reservationSet'] as Answer)['item'] as Answer[];
  assert.equal(reservations.length, 2);
  const first = reservations[0] as Answer;
  assert.equal(first['reservationId'], 'r-0123456789abcdef0');
  assert.equal(first['ownerId'], '123456789012');
  const instance = (first['instancesSet'] as Answer)['item'][0] as Answer;
  assert.equal(instance['instanceId'], 'i-0123456789abcdef0');
  assert.deepEqual(instance['instanceState'], { code: '16', name: 'running' });
  assert.equal(instance['privateIpAddress'], '127.0.0.1');
  assert.equal(instance['launchTime'], '2026-01-02T00:00:00.000Z');
  assert.deepEqual(instance['tagSet']['item'], [
    { key: 'role', value: 'web' },
    { key: 'aws:autoscaling:groupName', value: 'web-asg' },
    { key: 'aws:ec2launchtemplate:id', value: 'lt-0123456789abcdef0' },
    { key: 'aws:ec2launchtemplate:version', value: '2' },
    { key: 'ebb:port', value: '41000' },
    { key: 'ebb:pid', value: '4242' },
    { key: 'ebb:log-file', value: '/var/lib/ebb/instances/i-0123456789abcdef0/output.log' },
  ]);
  const second = ((reservations[1] as Answer)['instancesSet'] as Answer)['item'][0] as Answer;
  assert.deepEqual(second['instanceState'], { code: '80', name: 'stopped' });
  assert.deepEqual(second['tagSet']['item'], [{ key: 'ebb:port', value: '8080' }]);

  const ids = async (params: Record<string, string>): Promise<string[]> => {
    const out = await call(as, 'DescribeInstances', params);
    const set = out['reservationSet'] as Answer | '';
    return ((set === '' ? [] : set['item']) as Answer[]).map((res) => (res['instancesSet'] as Answer)['item'][0]['instanceId'] as string);
  };
  assert.deepEqual(await ids({ 'Filter.1.Name': 'instance-state-name', 'Filter.1.Value.1': 'running', 'Filter.1.Value.2': 'pending' }), ['i-0123456789abcdef0']);
  assert.deepEqual(await ids({ 'Filter.1.Name': 'tag:aws:autoscaling:groupName', 'Filter.1.Value.1': 'web-*' }), ['i-0123456789abcdef0']);
  assert.deepEqual(await ids({ 'Filter.1.Name': 'tag-key', 'Filter.1.Value.1': 'ebb:port' }), ['i-0123456789abcdef0', 'i-legacy']);
  assert.deepEqual(await ids({ 'Filter.1.Name': 'tag-key', 'Filter.1.Value.1': 'role', 'Filter.2.Name': 'instance-state-code', 'Filter.2.Value.1': '80' }), []);
  assert.deepEqual(await ids({ 'InstanceId.1': 'i-legacy' }), ['i-legacy']);
  await fails(call(as, 'DescribeInstances', { 'InstanceId.1': 'i-missing' }), 'InvalidInstanceID.NotFound');
  await fails(call(as, 'DescribeInstances', { 'InstanceId.1': 'web-1' }), 'InvalidInstanceID.Malformed', /web-1/);
  await fails(call(as, 'DescribeInstances', { 'Filter.1.Name': 'vpc-id', 'Filter.1.Value.1': 'x' }), 'InvalidParameterValue');
  // No instances: an empty reservationSet.
  assert.deepEqual(await call(facade(), 'DescribeInstances'), { requestId: 'req-1', reservationSet: '' });
});

test('wildcards: * and ? match runs and single characters, \\ escapes them, and a hostile pattern stays fast', async () => {
  const as = facade();
  for (const [name, pat] of [['a(x)c', 'a*c'], ['axxc', 'axc'], ['a-c', 'a?c'], ['abc', '']] as const) {
    await call(as, 'CreateLaunchTemplate', { LaunchTemplateName: name, 'TagSpecification.1.ResourceType': 'launch-template', 'TagSpecification.1.Tag.1.Key': 'pat', 'TagSpecification.1.Tag.1.Value': pat });
  }
  const names = async (filter: string, value: string): Promise<string[]> => {
    const r = await call(as, 'DescribeLaunchTemplates', { 'Filter.1.Name': filter, 'Filter.1.Value.1': value });
    return items(r['launchTemplates']).map((t) => t['launchTemplateName'] as string);
  };
  assert.deepEqual(await names('launch-template-name', 'a*c'), ['a(x)c', 'axxc', 'a-c', 'abc']);
  assert.deepEqual(await names('launch-template-name', 'a?c'), ['a-c', 'abc']);
  assert.deepEqual(await names('launch-template-name', '*x*'), ['a(x)c', 'axxc']);
  assert.deepEqual(await names('launch-template-name', 'A*'), []);
  assert.deepEqual(await names('tag:pat', 'a*c'), ['a(x)c', 'axxc', 'a-c']);
  assert.deepEqual(await names('tag:pat', 'a\\*c'), ['a(x)c']);
  assert.deepEqual(await names('tag:pat', 'a\\?c'), ['a-c']);
  assert.deepEqual(await names('tag:pat', ''), ['abc']);
  const started = performance.now();
  await call(as, 'CreateLaunchTemplate', { LaunchTemplateName: 'a'.repeat(128) });
  assert.deepEqual(await names('launch-template-name', `${'*a'.repeat(60)}*b`), []);
  assert.ok(performance.now() - started < 1000);
});

test('other EC2 actions are InvalidAction naming what is served; without Auto Scaling every action says so', async () => {
  await fails(call(facade(), 'RunInstances'), 'InvalidAction', /launch templates and DescribeInstances only/);
  await fails(call(facade(), 'toString'), 'InvalidAction');
  await fails(call(undefined, 'DescribeLaunchTemplates'), 'InvalidAction', /Auto Scaling is not running in this ebb/);
  await fails(call(undefined, 'DescribeInstances'), 'InvalidAction', /Auto Scaling is not running/);
});
