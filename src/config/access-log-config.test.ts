import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { ACCESS_LOG_DEFAULTS, parseConfig } from './load-config.ts';

function problems(text: string): string {
  try {
    parseConfig(text, '/etc/ebb/lb.yaml');
  } catch (error) {
    assert.ok(EbbError.is(error) && error.code === 'ConfigInvalid');
    return error.message;
  }
  return assert.fail('expected ConfigInvalid');
}

test('accessLog: stdout with the defaults filled in', () => {
  const cfg = parseConfig('accessLog:\n  output: stdout\n', '/etc/ebb/lb.yaml');
  assert.deepEqual(cfg.accessLog, { output: 'stdout', ...ACCESS_LOG_DEFAULTS });
});

test('accessLog: a file path is relative to the configuration file; rotation and format as written', () => {
  const cfg = parseConfig(
    'accessLog:\n  output: file\n  path: logs/access.log\n  format: json\n  rotateBytes: 1048576\n  rotateSeconds: 3600\n  keep: 0\n',
    '/etc/ebb/lb.yaml',
  );
  assert.deepEqual(cfg.accessLog, {
    output: 'file',
    path: '/etc/ebb/logs/access.log',
    format: 'json',
    rotateBytes: 1048576,
    rotateSeconds: 3600,
    keep: 0,
    bufferBytes: ACCESS_LOG_DEFAULTS.bufferBytes,
  });
});

test('accessLog: a file needs a path, stdout takes none, values are checked with their line', () => {
  assert.match(problems('accessLog:\n  output: file\n'), /lb\.yaml:2:\d+: accessLog(\.path)?: is required with output: file/);
  assert.match(problems('accessLog:\n  output: stdout\n  path: x.log\n'), /accessLog\.path: is only for output: file/);
  assert.match(problems('accessLog:\n  output: syslog\n'), /accessLog\.output: must be one of stdout, file; got "syslog"/);
  assert.match(problems('accessLog:\n  output: stdout\n  format: clf\n'), /accessLog\.format: must be one of alb, json/);
  assert.match(problems('accessLog:\n  output: stdout\n  bufferBytes: 10\n'), /accessLog\.bufferBytes: must be an integer from 65536/);
});
