import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BodySlots, clientOf } from './body-slots.ts';

test('clientOf: IPv4 as is, IPv4-mapped as IPv4, IPv6 by its /64', () => {
  assert.equal(clientOf('127.0.0.1'), '127.0.0.1');
  assert.equal(clientOf('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(clientOf('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(clientOf('2001:0db8:0001:0002::9'), '2001:db8:1:2::/64');
  assert.equal(clientOf('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(clientOf('::1'), '0:0:0:0::/64');
  assert.equal(clientOf('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(clientOf('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  assert.equal(clientOf(undefined), 'unknown');
});

test('BodySlots: the per-address share, the reserve and the total, each refused by name', () => {
  const slots = new BodySlots({ total: 4, reserved: 1, perAddress: 2 });
  const a1 = slots.take('10.0.0.1', false);
  const a2 = slots.take('10.0.0.1', false);
  assert.equal(typeof a1, 'function');
  assert.equal(typeof a2, 'function');
  assert.equal(slots.take('10.0.0.1', true), 'address');
  // Two addresses in one /64 are one client.
  const b1 = slots.take('2001:db8::1', false);
  assert.equal(typeof b1, 'function');
  assert.equal(slots.take('2001:db8::2', false), 'ordinary');
  const keyed = slots.take('2001:db8::2', true);
  assert.equal(typeof keyed, 'function');
  assert.equal(slots.take('10.0.0.9', true), 'total');
  assert.equal(slots.inUse, 4);

  // Giving a slot back twice frees it once.
  if (typeof a1 !== 'function') assert.fail('a1');
  a1();
  a1();
  assert.equal(slots.inUse, 3);
  assert.equal(typeof slots.take('10.0.0.1', false), 'string', 'only the reserve is free, and this caller names no key');
  assert.equal(typeof slots.take('10.0.0.1', true), 'function');
});
