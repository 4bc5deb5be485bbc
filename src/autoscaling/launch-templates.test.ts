import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { EbbError } from '../shared/errors.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { LaunchTemplateCatalog } from './launch-templates.ts';
import type { LaunchTemplateRecord } from './records.ts';

const SCRIPT = Buffer.from('#!/bin/sh\nexec python3 -m http.server "$PORT"\n').toString('base64');
const OTHER = Buffer.from('#!/bin/sh\necho v2\n').toString('base64');

function setup(): { catalog: LaunchTemplateCatalog; store: InMemoryStateStore; clock: FakeClock; users: Map<string, string[]> } {
  const store = new InMemoryStateStore();
  const clock = new FakeClock();
  const users = new Map<string, string[]>();
  const catalog = new LaunchTemplateCatalog({ commit: (ops) => store.commit(ops), clock, usedBy: (id) => users.get(id) ?? [] });
  return { catalog, store, clock, users };
}

async function stored(store: InMemoryStateStore): Promise<unknown[]> {
  return [...((await store.load()).get('launchTemplate')?.values() ?? [])];
}

/** Rejects with an EbbError of this code (and message matching `message`). */
async function refused(fn: () => unknown, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(
    async () => {
      await fn();
    },
    (err: unknown) => {
      assert.ok(EbbError.is(err), String(err));
      assert.equal(err.code, code, err.message);
      if (message !== undefined) assert.match(err.message, message);
      return true;
    },
  );
}

/** Asserts that `fn` is refused with `code` and that neither the store nor the catalog changed. */
async function refusedWithoutChange(s: ReturnType<typeof setup>, fn: () => unknown, code: string, message?: RegExp): Promise<void> {
  const commits = s.store.commits;
  const before = await stored(s.store);
  const memory = structuredClone(s.catalog.all());
  await refused(fn, code, message);
  assert.equal(s.store.commits, commits, 'nothing committed');
  assert.deepEqual(await stored(s.store), before);
  assert.deepEqual(s.catalog.all(), memory);
}

test('create: an lt- id, version 1 as default and latest, the plain record committed as it is kept in memory', async () => {
  const { catalog, store, clock } = setup();
  const t = await catalog.create({ name: 'web(1)/a.b-c_d', versionDescription: 'first', data: { userData: SCRIPT }, tags: [{ key: 'team', value: 'edge' }] });
  assert.match(t.id, /^lt-[0-9a-f]{17}$/);
  assert.deepEqual(
    { ...t, id: 'x' },
    {
      id: 'x',
      name: 'web(1)/a.b-c_d',
      createdAt: clock.wallTime(),
      defaultVersion: 1,
      latestVersion: 1,
      versions: [{ versionNumber: 1, versionDescription: 'first', createdAt: clock.wallTime(), data: { userData: SCRIPT } }],
      tags: [{ key: 'team', value: 'edge' }],
      source: 'api',
    },
  );
  assert.deepEqual(await stored(store), [t]);
  // Plain JSON: no undefined properties anywhere.
  const bare = await catalog.create({ name: 'bare', data: {} });
  assert.deepEqual(bare.versions[0], { versionNumber: 1, createdAt: clock.wallTime(), data: {} });
  assert.deepEqual(JSON.parse(JSON.stringify(bare)), bare);
  assert.deepEqual(catalog.find({ name: 'bare' }), bare);
  assert.deepEqual(catalog.find({ id: t.id }), t);
  assert.equal(catalog.find({ id: 'lt-00000000000000000' }), undefined);
});

test('names: 3-128 of letters, digits and ( ) . - / _; a name in use is AlreadyExists', async () => {
  const s = setup();
  await s.catalog.create({ name: 'web', data: {} });
  for (const name of ['ab', 'x'.repeat(129), 'has space', 'star*', 'dollar$', '']) {
    await refusedWithoutChange(s, () => s.catalog.create({ name, data: {} }), 'InvalidLaunchTemplateName.MalformedException', /between 3 and 128/);
  }
  await s.catalog.create({ name: 'x'.repeat(128), data: {} });
  await refusedWithoutChange(s, () => s.catalog.create({ name: 'web', data: {} }), 'InvalidLaunchTemplateName.AlreadyExistsException', /already in use/);
});

test('UserData: strict base64 (alphabet, quads, padding), at most 16 KiB decoded', async () => {
  const s = setup();
  for (const bad of ['not base64!', 'YQ=', 'YQ===', 'YR==', 'Y Q==', 'YQ==YQ==', 'YWJj\n', '-_8=']) {
    await refusedWithoutChange(s, () => s.catalog.create({ name: 'user-data', data: { userData: bad } }), 'InvalidUserData.Malformed', /BASE64/);
  }
  const limit = Buffer.alloc(16 * 1024, 'a').toString('base64');
  const over = Buffer.alloc(16 * 1024 + 1, 'a').toString('base64');
  await refusedWithoutChange(s, () => s.catalog.create({ name: 'user-data', data: { userData: over } }), 'InvalidUserData.Malformed', /16384 bytes/);
  const t = await s.catalog.create({ name: 'user-data', data: { userData: limit } });
  assert.equal(t.versions[0]?.data.userData, limit);
  // An empty UserData is no UserData.
  const empty = await s.catalog.create({ name: 'user-data-empty', data: { userData: '' } });
  assert.deepEqual(empty.versions[0]?.data, {});
});

test('data rules: a script or a command, not both; tags as EC2 has them', async () => {
  const s = setup();
  await refusedWithoutChange(s, () => s.catalog.create({ name: 'both', data: { userData: SCRIPT, command: ['node', 'app.js'] } }), 'InvalidParameterCombination');
  await refusedWithoutChange(s, () => s.catalog.create({ name: 'cmd', data: { command: [] } }), 'InvalidParameterValue');
  await refusedWithoutChange(s, () => s.catalog.create({ name: 'cmd', data: { stopTimeoutSeconds: 1.5 } }), 'InvalidParameterValue');
  await refusedWithoutChange(s, () => s.catalog.create({ name: 'cmd', data: { environment: { 'A=B': 'x' } } }), 'InvalidParameterValue');
  await refusedWithoutChange(s, () => s.catalog.create({ name: 'tags', data: {}, tags: [{ key: 'aws:x', value: '' }] }), 'InvalidParameterValue', /reserved/);
  await refusedWithoutChange(s, () => s.catalog.create({ name: 'tags', data: {}, tags: [{ key: 'a', value: '' }, { key: 'a', value: 'b' }] }), 'InvalidParameterValue', /twice/);
  const many = Array.from({ length: 51 }, (_, i) => ({ key: `k${i}`, value: '' }));
  await refusedWithoutChange(s, () => s.catalog.create({ name: 'tags', data: { instanceTags: many } }), 'InvalidParameterValue', /at most 50/);
  await refusedWithoutChange(s, () => s.catalog.create({ name: 'tags', data: {}, tags: [{ key: 'k'.repeat(129), value: '' }] }), 'InvalidParameterValue');
  const ok = await s.catalog.create({
    name: 'cmd',
    data: { command: ['node', 'app.js'], environment: { MODE: 'prod' }, workingDirectory: '/srv', stopTimeoutSeconds: 10, instanceTags: [{ key: 'role', value: 'web' }] },
  });
  assert.deepEqual(ok.versions[0]?.data, {
    command: ['node', 'app.js'],
    environment: { MODE: 'prod' },
    workingDirectory: '/srv',
    stopTimeoutSeconds: 10,
    instanceTags: [{ key: 'role', value: 'web' }],
  });
});

test('createVersion: numbers count on, SourceVersion overlays, the default stays; selectors as EC2 checks them', async () => {
  const s = setup();
  const t = await s.catalog.create({ name: 'web', data: { userData: SCRIPT, instanceTags: [{ key: 'role', value: 'web' }] } });
  s.clock.advance(1000);
  const v2 = await s.catalog.createVersion({ template: { name: 'web' }, versionDescription: 'two', data: { userData: OTHER } });
  assert.equal(v2.versionNumber, 2);
  assert.equal(v2.template.latestVersion, 2);
  assert.equal(v2.template.defaultVersion, 1);
  assert.deepEqual(v2.template.versions[1], { versionNumber: 2, versionDescription: 'two', createdAt: s.clock.wallTime(), data: { userData: OTHER } });
  const v3 = await s.catalog.createVersion({ template: { id: t.id }, sourceVersion: '1', data: { userData: OTHER } });
  assert.deepEqual(v3.template.versions[2]?.data, { userData: OTHER, instanceTags: [{ key: 'role', value: 'web' }] });
  // A command in the overlay replaces the source's script.
  const v4 = await s.catalog.createVersion({ template: { id: t.id }, sourceVersion: '$Default', data: { command: ['true'] } });
  assert.deepEqual(v4.template.versions[3]?.data, { command: ['true'], instanceTags: [{ key: 'role', value: 'web' }] });
  assert.deepEqual(await stored(s.store), [v4.template]);

  await refusedWithoutChange(s, () => s.catalog.createVersion({ template: { id: t.id }, sourceVersion: '7', data: {} }), 'InvalidLaunchTemplateId.VersionNotFound', /version 7/);
  await refusedWithoutChange(s, () => s.catalog.createVersion({ template: { id: t.id }, sourceVersion: 'seven', data: {} }), 'InvalidParameterValue');
  await refusedWithoutChange(s, () => s.catalog.createVersion({ template: { id: t.id, name: 'web' }, data: {} }), 'InvalidParameterCombination');
  await refusedWithoutChange(s, () => s.catalog.createVersion({ template: {}, data: {} }), 'MissingParameter');
  await refusedWithoutChange(s, () => s.catalog.createVersion({ template: { id: 'lt-123' }, data: {} }), 'InvalidLaunchTemplateId.Malformed');
  await refusedWithoutChange(s, () => s.catalog.createVersion({ template: { id: 'lt-0123456789abcdef0' }, data: {} }), 'InvalidLaunchTemplateId.NotFound', /lt-0123456789abcdef0/);
  await refusedWithoutChange(s, () => s.catalog.createVersion({ template: { name: 'nope' }, data: {} }), 'InvalidLaunchTemplateName.NotFoundException');
  await refusedWithoutChange(s, () => s.catalog.createVersion({ template: { name: 'web' }, data: { userData: '***' } }), 'InvalidUserData.Malformed');
  await refusedWithoutChange(s, () => s.catalog.createVersion({ template: { name: 'web' }, versionDescription: 'd'.repeat(256), data: {} }), 'InvalidParameterValue');
});

test('describe and describeVersions: all, by id and name, $Latest and $Default, unknown ones refused', async () => {
  const { catalog } = setup();
  const a = await catalog.create({ name: 'alpha', data: { userData: SCRIPT } });
  const b = await catalog.create({ name: 'beta', data: {} });
  await catalog.createVersion({ template: { id: a.id }, data: { userData: OTHER } });
  await catalog.createVersion({ template: { id: a.id }, data: {} });
  await catalog.modify({ id: a.id }, '2');

  assert.deepEqual(catalog.describe().map((t) => t.name), ['alpha', 'beta']);
  assert.deepEqual(catalog.describe({ ids: [b.id] }).map((t) => t.name), ['beta']);
  assert.deepEqual(catalog.describe({ names: ['beta', 'alpha'], ids: [a.id] }).map((t) => t.name), ['alpha', 'beta']);
  await refused(() => catalog.describe({ names: ['alpha', 'gamma'] }), 'InvalidLaunchTemplateName.NotFoundException', /gamma/);
  await refused(() => catalog.describe({ ids: ['lt-0000000000000000f'] }), 'InvalidLaunchTemplateId.NotFound');
  await refused(() => catalog.describe({ ids: ['i-123'] }), 'InvalidLaunchTemplateId.Malformed');

  const numbers = (vs: Array<{ versionNumber: number }>): number[] => vs.map((v) => v.versionNumber);
  assert.deepEqual(numbers(catalog.describeVersions({ id: a.id })), [3, 2, 1]);
  assert.deepEqual(numbers(catalog.describeVersions({ name: 'alpha' }, ['$Latest', '$Default', '1', '3'])), [3, 2, 1]);
  assert.deepEqual(numbers(catalog.describeVersions({ name: 'alpha' }, ['$Default', '2'])), [2]);
  const across = catalog.describeVersions({}, ['$Latest', '$Default']);
  assert.deepEqual(across.map((v) => [v.template.name, v.versionNumber]), [['alpha', 3], ['alpha', 2], ['beta', 1]]);
  await refused(() => catalog.describeVersions({}, ['1']), 'MissingParameter');
  await refused(() => catalog.describeVersions({}), 'MissingParameter');
  await refused(() => catalog.describeVersions({ id: a.id }, ['9']), 'InvalidLaunchTemplateId.VersionNotFound');
  await refused(() => catalog.describeVersions({ id: a.id }, ['latest']), 'InvalidParameterValue');
  await refused(() => catalog.describeVersions({ name: 'nope' }), 'InvalidLaunchTemplateName.NotFoundException');
});

test('modify sets the default version; the same default commits nothing; unknown versions are refused', async () => {
  const s = setup();
  const t = await s.catalog.create({ name: 'web', data: { userData: SCRIPT } });
  await s.catalog.createVersion({ template: { id: t.id }, data: { userData: OTHER } });
  const m = await s.catalog.modify({ name: 'web' }, '$Latest');
  assert.equal(m.defaultVersion, 2);
  assert.equal(s.catalog.find({ id: t.id })?.defaultVersion, 2);
  const commits = s.store.commits;
  await s.catalog.modify({ id: t.id }, '2');
  assert.equal(s.store.commits, commits);
  await refusedWithoutChange(s, () => s.catalog.modify({ id: t.id }, '3'), 'InvalidLaunchTemplateId.VersionNotFound');
  await refusedWithoutChange(s, () => s.catalog.modify({ id: t.id }, 'x'), 'InvalidParameterValue');
  await refusedWithoutChange(s, () => s.catalog.modify({ name: 'gone' }, '1'), 'InvalidLaunchTemplateName.NotFoundException');
});

test('deleteVersions: each version on its own; never the default; numbers are never reused', async () => {
  const s = setup();
  const t = await s.catalog.create({ name: 'web', data: { userData: SCRIPT } });
  for (let i = 0; i < 3; i++) await s.catalog.createVersion({ template: { id: t.id }, data: { userData: OTHER } });
  const r = await s.catalog.deleteVersions({ name: 'web' }, ['4', '1', '9', '$Latest', '2', '2']);
  assert.deepEqual(r.deleted, [4, 2]);
  assert.deepEqual(
    r.failed.map((f) => [f.version, f.code]),
    [
      ['1', 'unexpectedError'],
      ['9', 'launchTemplateVersionDoesNotExist'],
      ['$Latest', 'launchTemplateVersionDoesNotExist'],
      ['2', 'launchTemplateVersionDoesNotExist'],
    ],
  );
  assert.match(r.failed[0]?.message ?? '', /default version.*modify-launch-template/);
  const after = s.catalog.find({ id: t.id });
  assert.deepEqual(after?.versions.map((v) => v.versionNumber), [1, 3]);
  assert.equal(after?.latestVersion, 4);
  assert.deepEqual(await stored(s.store), [after]);
  // Version 4 is gone, yet the next is 5: an instance launched from 4 is never taken for the new one.
  const next = await s.catalog.createVersion({ template: { id: t.id }, data: {} });
  assert.equal(next.versionNumber, 5);
  assert.deepEqual(s.catalog.describeVersions({ id: t.id }, ['$Latest']).map((v) => v.versionNumber), [5]);

  // Nothing deletable: nothing committed, and the call still answers.
  const commits = s.store.commits;
  assert.deepEqual((await s.catalog.deleteVersions({ id: t.id }, ['1'])).deleted, []);
  assert.equal(s.store.commits, commits);
  await refusedWithoutChange(s, () => s.catalog.deleteVersions({ id: t.id }, []), 'MissingParameter');
  await refusedWithoutChange(s, () => s.catalog.deleteVersions({ id: t.id }, Array.from({ length: 201 }, (_, i) => String(i + 2))), 'InvalidParameterValue', /200/);
  await refusedWithoutChange(s, () => s.catalog.deleteVersions({ name: 'nope' }, ['2']), 'InvalidLaunchTemplateName.NotFoundException');
});

test('delete: refused while a group uses the template, then removed from store and memory; the name is free again', async () => {
  const s = setup();
  const t = await s.catalog.create({ name: 'web', data: { userData: SCRIPT } });
  s.users.set(t.id, ['front', 'back']);
  await refusedWithoutChange(s, () => s.catalog.delete({ id: t.id }), 'OperationNotPermitted', /groups front, back/);
  s.users.clear();
  const gone = await s.catalog.delete({ name: 'web' });
  assert.equal(gone.id, t.id);
  assert.deepEqual(await stored(s.store), []);
  assert.equal(s.catalog.find({ id: t.id }), undefined);
  assert.equal(s.catalog.find({ name: 'web' }), undefined);
  await refused(() => s.catalog.delete({ id: t.id }), 'InvalidLaunchTemplateId.NotFound');
  const again = await s.catalog.create({ name: 'web', data: {} });
  assert.notEqual(again.id, t.id);
});

test('resolve: $Latest, $Default and numbers; Auto Scaling ValidationErrors for what cannot be launched', async () => {
  const { catalog } = setup();
  const t = await catalog.create({ name: 'web', data: { userData: SCRIPT } });
  await catalog.createVersion({ template: { id: t.id }, data: { command: ['node', 'app.js'] } });
  await catalog.createVersion({ template: { id: t.id }, data: {} });
  assert.deepEqual(catalog.resolve({ id: t.id }), { id: t.id, name: 'web', version: 1, data: { userData: SCRIPT } });
  assert.equal(catalog.resolve({ name: 'web', version: '$Default' }).version, 1);
  assert.deepEqual(catalog.resolve({ name: 'web', version: '2' }).data, { command: ['node', 'app.js'] });
  await refused(() => catalog.resolve({ name: 'web', version: '$Latest' }), 'ValidationError', /version 3 has nothing to run/);
  await refused(() => catalog.resolve({ id: 'lt-0123456789abcdef0' }), 'ValidationError', /^The specified launch template, with template ID lt-0123456789abcdef0, does not exist\./);
  await refused(() => catalog.resolve({ name: 'nope' }), 'ValidationError', /with template name nope, does not exist/);
  await refused(() => catalog.resolve({ id: t.id, version: '7' }), 'ValidationError', new RegExp(`with template ID ${t.id}, version 7 does not exist`));
  await refused(() => catalog.resolve({ id: t.id, version: 'newest' }), 'ValidationError', /not valid/);
  await refused(() => catalog.resolve({}), 'ValidationError', /exactly one/);
  await refused(() => catalog.resolve({ id: t.id, name: 'web' }), 'ValidationError', /exactly one/);
});

test('putDeclared: creates, makes a new default version when the data changed, adopts, or leaves alone', async () => {
  const s = setup();
  const created = await s.catalog.putDeclared({ name: 'file', data: { command: ['node', 'a.js'], environment: { A: '1' } } });
  assert.equal(created.change, 'created');
  assert.equal(created.template.source, 'config');
  const commits = s.store.commits;
  // Same data, keys in another order: unchanged and nothing committed.
  const same = await s.catalog.putDeclared({ name: 'file', data: { environment: { A: '1' }, command: ['node', 'a.js'] } });
  assert.equal(same.change, 'unchanged');
  assert.equal(s.store.commits, commits);
  const changed = await s.catalog.putDeclared({ name: 'file', data: { command: ['node', 'b.js'] } });
  assert.equal(changed.change, 'new-version');
  assert.equal(changed.template.defaultVersion, 2);
  assert.equal(changed.template.latestVersion, 2);
  assert.deepEqual(changed.template.versions[1]?.data, { command: ['node', 'b.js'] });
  assert.deepEqual(await stored(s.store), [changed.template]);

  const api = await s.catalog.create({ name: 'made-by-api', data: { userData: SCRIPT } });
  const adopted = await s.catalog.putDeclared({ name: 'made-by-api', data: { userData: SCRIPT } });
  assert.deepEqual([adopted.change, adopted.template.source, adopted.template.latestVersion], ['adopted', 'config', 1]);
  assert.equal(api.source, 'api');
  await refusedWithoutChange(s, () => s.catalog.putDeclared({ name: 'file', data: { userData: 'x' } }), 'InvalidUserData.Malformed');
  await refusedWithoutChange(s, () => s.catalog.putDeclared({ name: 'n', data: {} }), 'InvalidLaunchTemplateName.MalformedException');
});

test('limits: 5000 versions per template and 5000 templates', async () => {
  const s = setup();
  const versions = Array.from({ length: 5000 }, (_, i) => ({ versionNumber: i + 1, createdAt: 0, data: {} }));
  const full: LaunchTemplateRecord = {
    id: 'lt-00000000000000001', name: 'full', createdAt: 0, defaultVersion: 1, latestVersion: 5000, versions, tags: [], source: 'api',
  };
  s.catalog.restore([full]);
  await refusedWithoutChange(s, () => s.catalog.createVersion({ template: { name: 'full' }, data: {} }), 'InvalidParameterValue', /5000 versions/);
  const many: LaunchTemplateRecord[] = Array.from({ length: 5000 }, (_, i) => ({
    ...full,
    id: `lt-${i.toString(16).padStart(17, '0')}`,
    name: `t-${i}`,
    versions: [],
  }));
  s.catalog.restore(many);
  await refusedWithoutChange(s, () => s.catalog.create({ name: 'one-more', data: {} }), 'InvalidParameterValue', /at most 5000 launch templates/);
});

test('a commit that fails changes nothing in memory, for every command', async () => {
  const s = setup();
  const t = await s.catalog.create({ name: 'web', data: { userData: SCRIPT } });
  await s.catalog.createVersion({ template: { id: t.id }, data: { userData: OTHER } });
  const attempts: Array<() => Promise<unknown>> = [
    () => s.catalog.create({ name: 'other', data: {} }),
    () => s.catalog.createVersion({ template: { id: t.id }, data: {} }),
    () => s.catalog.modify({ id: t.id }, '2'),
    () => s.catalog.deleteVersions({ id: t.id }, ['2']),
    () => s.catalog.delete({ id: t.id }),
    () => s.catalog.putDeclared({ name: 'web', data: { command: ['x'] } }),
    () => s.catalog.putDeclared({ name: 'declared', data: {} }),
  ];
  for (const attempt of attempts) {
    s.store.failNextCommit();
    await refusedWithoutChange(s, attempt, 'StoreUnavailable');
  }
  assert.equal(s.catalog.find({ name: 'other' }), undefined);
  assert.equal(s.catalog.find({ name: 'declared' }), undefined);
});

test('restore: the stored records come back, oldest first, found by id and name', async () => {
  const s = setup();
  const a = await s.catalog.create({ name: 'a-one', data: {} });
  s.clock.advance(10);
  const b = await s.catalog.create({ name: 'b-two', data: { userData: SCRIPT } });
  const records = (await stored(s.store)) as LaunchTemplateRecord[];
  const fresh = new LaunchTemplateCatalog({ commit: (ops) => s.store.commit(ops), clock: s.clock, usedBy: () => [] });
  fresh.restore([...records].reverse());
  assert.deepEqual(fresh.all(), [a, b]);
  assert.deepEqual(fresh.find({ name: 'b-two' }), b);
  assert.equal(fresh.resolve({ id: b.id }).version, 1);
});
