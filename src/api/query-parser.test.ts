import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { parseQueryString, QueryParams } from './query-parser.ts';

function params(body: string): QueryParams {
  return new QueryParams(parseQueryString(body));
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(EbbError.is(err), `expected EbbError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected an error');
}

test('decodes form encoding: + is a space, percent escapes, empty values', () => {
  const p = params('Action=AddTags&Tags.member.1.Key=a%20b&Tags.member.1.Value=c+d&Empty=&Bare');
  assert.equal(p.str('Action'), 'AddTags');
  assert.equal(p.structList('Tags')?.[0]?.str('Key'), 'a b');
  assert.equal(p.structList('Tags')?.[0]?.str('Value'), 'c d');
  assert.equal(p.str('Empty'), '');
  assert.equal(p.str('Bare'), '');
  assert.equal(p.str('Missing'), undefined);
});

test('lists are read in member order, numerically, and an empty list is Name=', () => {
  const p = params('A.member.10=ten&A.member.2=two&A.member.1=one&B=');
  assert.deepEqual(p.list('A'), ['one', 'two', 'ten']);
  assert.deepEqual(p.list('B'), []);
  assert.equal(p.list('C'), undefined);
  assert.equal(code(() => p.requiredList('B')), 'ValidationError');
});

test('structure lists and nested structures', () => {
  const p = params(
    'Targets.member.1.Id=10.0.0.1&Targets.member.1.Port=8080&Targets.member.2.Id=10.0.0.2' +
      '&LoadBalancerAttributes.ConnectionDraining.Enabled=true&LoadBalancerAttributes.ConnectionDraining.Timeout=300',
  );
  const targets = p.requiredStructList('Targets');
  assert.equal(targets.length, 2);
  assert.equal(targets[0]?.requiredStr('Id'), '10.0.0.1');
  assert.equal(targets[0]?.int('Port', { min: 1, max: 65535 }), 8080);
  assert.equal(targets[1]?.int('Port'), undefined);
  const cd = p.struct('LoadBalancerAttributes')?.struct('ConnectionDraining');
  assert.equal(cd?.requiredBool('Enabled'), true);
  assert.equal(cd?.requiredInt('Timeout'), 300);
  assert.equal(p.struct('Nope'), undefined);
  assert.equal(cd?.path('Timeout'), 'LoadBalancerAttributes.ConnectionDraining.Timeout');
});

test('integers, booleans and enums are validated with the wire name in the message', () => {
  const p = params('Port=70000&Size=abc&Flag=yes&Type=gateway&Ok=TRUE');
  assert.throws(() => p.int('Port', { min: 1, max: 65535 }), /'Port'.*from 1 to 65535/);
  assert.throws(() => p.int('Size'), /'Size'.*integer/);
  assert.throws(() => p.bool('Flag'), /true or false/);
  assert.equal(p.bool('Ok'), true);
  assert.throws(() => p.enumOf('Type', ['application', 'network'] as const), /application, network/);
  assert.equal(code(() => p.requiredStr('Absent')), 'ValidationError');
  assert.throws(() => p.requiredStr('Absent'), /Value null at 'Absent'/);
});

test('malformed input is refused, not guessed at', () => {
  assert.equal(code(() => parseQueryString('A=%E0%A4%A')), 'MalformedQueryString');
  assert.equal(code(() => params('A.member.x=1').list('A')), 'ValidationError');
  assert.equal(code(() => params('A.member.0=1').list('A')), 'ValidationError');
  const tooMany = Array.from({ length: 2001 }, (_, i) => `k${i}=v`).join('&');
  assert.equal(code(() => parseQueryString(tooMany)), 'MalformedQueryString');
});
