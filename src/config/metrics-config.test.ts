import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { parseConfig } from './load-config.ts';

function problems(text: string): string {
  try {
    parseConfig(text, '/etc/ebb/lb.yaml');
  } catch (err) {
    assert.ok(EbbError.is(err) && err.code === 'ConfigInvalid');
    return err.message;
  }
  assert.fail('expected ConfigInvalid');
}

test('admin.metrics: a bearer token file, resolved against the file\'s directory, or public', () => {
  assert.deepEqual(parseConfig('admin:\n  metrics:\n    bearerTokenFile: secrets/metrics-token\n', '/etc/ebb/lb.yaml').admin.metrics, {
    bearerTokenFile: '/etc/ebb/secrets/metrics-token',
  });
  assert.deepEqual(parseConfig('admin:\n  metrics:\n    bearerTokenFile: /run/token\n', '/etc/ebb/lb.yaml').admin.metrics, { bearerTokenFile: '/run/token' });
  assert.deepEqual(parseConfig('admin:\n  metrics:\n    public: true\n', '/etc/ebb/lb.yaml').admin.metrics, { public: true });
  assert.equal(parseConfig('admin:\n  region: eu-west-1\n', '/etc/ebb/lb.yaml').admin.metrics, undefined);
});

test('admin.metrics problems are reported with their line, as every other key', () => {
  assert.equal(
    problems('admin:\n  metrics:\n    bearerTokenFile: token\n    public: true\n'),
    '/etc/ebb/lb.yaml:4:13: admin.metrics.public: cannot be true together with bearerTokenFile (true serves /metrics to anyone, so the token would never be asked for); keep one of the two',
  );
  assert.equal(problems('admin:\n  metrics:\n    public: "yes"\n'), '/etc/ebb/lb.yaml:3:13: admin.metrics.public: must be true or false; got "yes"');
  assert.equal(
    problems('admin:\n  metrics:\n    token: abc\n'),
    '/etc/ebb/lb.yaml:3:5: admin.metrics.token: unknown key "token"; allowed keys: bearerTokenFile, public',
  );
  assert.equal(problems('admin:\n  metrics:\n    bearerTokenFile: ""\n'), '/etc/ebb/lb.yaml:3:22: admin.metrics.bearerTokenFile: must be a non-empty string; got ""');
});
