import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCredentialsFile, parseCredentialsFile } from './credentials-file.ts';

test('the file ebb writes parses back to its keys and region', () => {
  const text = formatCredentialsFile({ accessKeyId: 'EBBABC', secretAccessKey: 'se/cr+et=', region: 'eu-west-1' }, new Date(0), '/s/credentials');
  assert.match(text, /^\[ebb\]$/m);
  assert.match(text, /AWS_SHARED_CREDENTIALS_FILE=\/s\/credentials AWS_PROFILE=ebb/);
  assert.deepEqual(parseCredentialsFile(text), { accessKeyId: 'EBBABC', secretAccessKey: 'se/cr+et=', region: 'eu-west-1' });
});

test('only the named profile counts; comments, spacing and key case are as the AWS tools allow', () => {
  const text = [
    '; a comment',
    '[default]',
    'aws_access_key_id = AKIADEFAULT',
    'aws_secret_access_key = default-secret',
    '',
    '[ ebb ]',
    '  AWS_ACCESS_KEY_ID=EBBKEY  ',
    '# another comment',
    'aws_secret_access_key =s3cret',
    '[other]',
    'region = us-west-2',
  ].join('\r\n');
  assert.deepEqual(parseCredentialsFile(text), { accessKeyId: 'EBBKEY', secretAccessKey: 's3cret', region: undefined });
  assert.equal(parseCredentialsFile('[ebb]\naws_access_key_id = X\n'), null, 'no secret');
  assert.equal(parseCredentialsFile('[default]\naws_access_key_id = X\naws_secret_access_key = Y\n'), null, 'no [ebb] profile');
});
