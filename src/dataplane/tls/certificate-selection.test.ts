import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ListenerCertificate } from '../../domain/routing-snapshot.ts';
import { CertificateIndex } from './certificate-selection.ts';

const cert = (arn: string, names: string[]): ListenerCertificate => ({ arn, certificatePem: '', privateKeyPem: '', names });

const DEFAULT = cert('default', ['www.example.com']);
const A = cert('a', ['a.example.com', 'A2.Example.com']);
const WILD = cert('wild', ['*.apps.example.com']);
const A_AGAIN = cert('a-again', ['a.example.com', '*.example.com']);
const index = new CertificateIndex([DEFAULT, A, WILD, A_AGAIN]);

test('an exact name wins over a wildcard, and the first certificate naming it over later ones', () => {
  assert.equal(index.select('a.example.com').arn, 'a');
  assert.equal(index.select('www.example.com').arn, 'default');
});

test('names compare without case and without a trailing dot', () => {
  assert.equal(index.select('a2.example.com').arn, 'a');
  assert.equal(index.select('A.EXAMPLE.COM.').arn, 'a');
});

test('a wildcard covers exactly one label', () => {
  assert.equal(index.select('x.apps.example.com').arn, 'wild');
  assert.equal(index.select('apps.example.com').arn, 'a-again', '*.example.com covers apps.example.com');
  assert.equal(index.select('y.x.apps.example.com').arn, 'default', 'two labels: no wildcard matches');
  assert.equal(index.select('b.example.com').arn, 'a-again');
  assert.equal(index.select('example.com').arn, 'default');
});

test('no SNI, or a name no certificate serves, gets the default certificate', () => {
  assert.equal(index.select(null).arn, 'default');
  assert.equal(index.select('').arn, 'default');
  assert.equal(index.select('other.test').arn, 'default');
  assert.equal(index.select('.example.com').arn, 'default', 'an empty first label is no label');
  assert.equal(index.defaultCertificate.arn, 'default');
});
