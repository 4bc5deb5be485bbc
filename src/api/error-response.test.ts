import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ebbError } from '../shared/errors.ts';
import { errorResponse, toWireError } from './error-response.ts';

test('EbbError keeps its code, fault, status and message', () => {
  const wire = toWireError(ebbError('TargetGroupNotFound', 'One or more target groups not found'), 'elbv2');
  assert.deepEqual(wire, { status: 400, type: 'Sender', code: 'TargetGroupNotFound', message: 'One or more target groups not found' });
  assert.equal(toWireError(ebbError('SignatureDoesNotMatch', 'x'), 'elbv2').status, 403);
});

test('Classic InvalidConfigurationRequest is HTTP 409; ELBv2 keeps 400', () => {
  const err = ebbError('InvalidConfigurationRequest', 'Timeout out of range');
  assert.equal(toWireError(err, 'classic').status, 409);
  assert.equal(toWireError(err, 'elbv2').status, 400);
});

test('an unknown error is InternalFailure 500 and leaks neither message nor stack', () => {
  let seen: unknown;
  const secret = new Error('database password is hunter2');
  const res = errorResponse(secret, 'elbv2', 'rid-9', (e) => (seen = e));
  assert.equal(res.status, 500);
  assert.equal(seen, secret);
  assert.match(res.body, /<Code>InternalFailure<\/Code>/);
  assert.match(res.body, /<Type>Receiver<\/Type>/);
  assert.doesNotMatch(res.body, /hunter2|at .*\.ts/);
  assert.equal(res.headers['x-amzn-requestid'], 'rid-9');
  assert.match(res.body, /<RequestId>rid-9<\/RequestId>/);
});

test('EC2 errors: HTTP 400 for client errors in the EC2 envelope', () => {
  const res = errorResponse(ebbError('InvalidUserData.Malformed', 'Invalid BASE64 encoding of user data'), 'ec2', 'rid-3');
  assert.equal(res.status, 400);
  assert.match(res.body, /^<\?xml[^>]*>\n<Response><Errors><Error><Code>InvalidUserData\.Malformed<\/Code><Message>Invalid BASE64 encoding of user data<\/Message><\/Error><\/Errors><RequestID>rid-3<\/RequestID><\/Response>\n$/);
  assert.equal(res.headers['x-amzn-requestid'], 'rid-3');
  assert.equal(toWireError(ebbError('InvalidConfigurationRequest', 'x'), 'ec2').status, 400);
});
