import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { checkAddresses, checkPort } from './port-probe.ts';

const messageOf = async (p: Promise<void>): Promise<string> => {
  try {
    await p;
  } catch (error) {
    assert.ok(EbbError.is(error) && error.code === 'ListenAddressInUse', String(error));
    return error.message;
  }
  return 'no error';
};

test('an address in use is named with its errno code; a free one is not', async (t) => {
  const held = createServer();
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
  t.after(() => held.close());
  const port = (held.address() as { port: number }).port;
  assert.equal(await checkPort('127.0.0.1', port), 'EADDRINUSE');
  const message = await messageOf(
    checkAddresses([
      { what: 'the admin API', host: '127.0.0.1', port: 0 },
      { what: 'listener web:1', host: '127.0.0.1', port },
    ]),
  );
  assert.match(message, new RegExp(`listener web:1 cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`));
  assert.doesNotMatch(message, /the admin API cannot/);
});

test('two of the addresses taking one port are refused without probing; port 0 takes none', async () => {
  const probed: string[] = [];
  const probe = (host: string, port: number): Promise<string | null> => {
    probed.push(`${host}:${port}`);
    return Promise.resolve(null);
  };
  const message = await messageOf(
    checkAddresses(
      [
        { what: 'the admin API', host: '127.0.0.1', port: 9900 },
        { what: 'listener web:9900', host: '0.0.0.0', port: 9900 },
        { what: 'listener other:9901', host: '::', port: 9901 },
        { what: 'listener v4:9901', host: '127.0.0.2', port: 9901 },
        { what: 'listener a:9902', host: '127.0.0.1', port: 9902 },
        { what: 'listener b:9902', host: '127.0.0.2', port: 9902 },
      ],
      probe,
    ),
  );
  assert.match(message, /listener web:9900 on 0\.0\.0\.0:9900 takes the port of the admin API on 127\.0\.0\.1:9900/);
  assert.match(message, /listener v4:9901 on 127\.0\.0\.2:9901 takes the port of listener other:9901 on \[::\]:9901/);
  assert.doesNotMatch(message, /9902/, 'two hosts on one port do not clash');
  await checkAddresses([{ what: 'the admin API', host: '127.0.0.1', port: 0 }, { what: 'again', host: '127.0.0.1', port: 0 }], probe);
  assert.ok(!probed.some((p) => p.endsWith(':0')));
});
