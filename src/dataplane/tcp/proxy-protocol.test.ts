import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeProxyV2, PROXY_V2_SIGNATURE, readProxyHeader } from './proxy-protocol.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('the signature is the 12 bytes of proxy-protocol.txt §2.2', () => {
  assert.deepEqual(PROXY_V2_SIGNATURE, hex('0d0a0d0a 000d0a51 5549540a'));
});

test('TCP over IPv4: the header HAProxy writes, byte for byte', () => {
  // A header HAProxy wrote for 172.19.0.1:42578 → 172.19.0.3:80: signature, 0x21 (v2, PROXY), 0x11
  // (AF_INET, STREAM), length 12, then source address, destination address, source port, destination port.
  const b = encodeProxyV2({ sourceAddress: '172.19.0.1', sourcePort: 42578, destinationAddress: '172.19.0.3', destinationPort: 80 });
  assert.deepEqual(b, hex('0d0a0d0a000d0a515549540a 21 11 000c ac130001 ac130003 a652 0050'));
});

test('TCP over IPv6: 0x21 family, 36-byte block with each address in network order', () => {
  const b = encodeProxyV2({ sourceAddress: '2001:db8::1', sourcePort: 1234, destinationAddress: '::1', destinationPort: 443 });
  assert.equal(b.length, 16 + 36);
  assert.deepEqual(
    b,
    hex(
      '0d0a0d0a000d0a515549540a 21 21 0024' +
        '20010db8 00000000 00000000 00000001' +
        '00000000 00000000 00000000 00000001' +
        '04d2 01bb',
    ),
  );
});

test('IPv6 forms: full, compressed in the middle, an embedded IPv4 tail, a zone id', () => {
  const at = (src: string): string => encodeProxyV2({ sourceAddress: src, sourcePort: 1, destinationAddress: '::1', destinationPort: 2 }).subarray(16, 32).toString('hex');
  assert.equal(at('fe80:0:0:0:1:2:3:4'), 'fe800000000000000001000200030004');
  assert.equal(at('fe80::1:2:3:4'), 'fe800000000000000001000200030004');
  assert.equal(at('64:ff9b::192.0.2.33'), '0064ff9b0000000000000000c0000221');
  assert.equal(at('fe80::1%eth0'), 'fe800000000000000000000000000001');
  assert.equal(at('::'), '00000000000000000000000000000000');
});

test('IPv4-mapped addresses on both sides (a dual-stack listener) give TCP over IPv4', () => {
  const b = encodeProxyV2({ sourceAddress: '::ffff:10.0.0.7', sourcePort: 5000, destinationAddress: '::FFFF:127.0.0.1', destinationPort: 8443 });
  assert.deepEqual(b, hex('0d0a0d0a000d0a515549540a 21 11 000c 0a000007 7f000001 1388 20fb'));
});

test('an IPv4 client on an IPv6 destination: TCP over IPv6 with the client mapped', () => {
  const b = encodeProxyV2({ sourceAddress: '10.0.0.7', sourcePort: 5000, destinationAddress: '2001:db8::2', destinationPort: 80 });
  assert.equal(b[13], 0x21);
  assert.equal(b.subarray(16, 32).toString('hex'), '00000000000000000000ffff0a000007');
});

test('no address (a socket already closed): LOCAL with no address block', () => {
  const b = encodeProxyV2({ sourceAddress: '', sourcePort: 0, destinationAddress: '127.0.0.1', destinationPort: 80 });
  assert.deepEqual(b, hex('0d0a0d0a000d0a515549540a 20 00 0000'));
});

test('reading version 2: what the encoder wrote, with the bytes behind it left alone', () => {
  const h4 = encodeProxyV2({ sourceAddress: '192.0.2.9', sourcePort: 40000, destinationAddress: '127.0.0.1', destinationPort: 80 });
  assert.deepEqual(readProxyHeader(Buffer.concat([h4, Buffer.from('GET /')])), { kind: 'header', length: 28, source: { address: '192.0.2.9', port: 40000 } });
  const h6 = encodeProxyV2({ sourceAddress: '2001:db8:0:0:1::5', sourcePort: 7, destinationAddress: '::1', destinationPort: 80 });
  assert.deepEqual(readProxyHeader(h6), { kind: 'header', length: 52, source: { address: '2001:db8::1:0:0:5', port: 7 } });
  const local = encodeProxyV2({ sourceAddress: '', sourcePort: 0, destinationAddress: '', destinationPort: 0 });
  assert.deepEqual(readProxyHeader(local), { kind: 'header', length: 16, source: null });
  // TLVs after the addresses (a length larger than the block) are skipped.
  const withTlv = Buffer.concat([hex('0d0a0d0a000d0a515549540a 21 11 0010 c0000209 7f000001 9c40 0050'), hex('04 0001 00')]);
  assert.deepEqual(readProxyHeader(withTlv), { kind: 'header', length: 32, source: { address: '192.0.2.9', port: 40000 } });
});

test('reading version 2 cut anywhere is incomplete, never wrong', () => {
  const h = encodeProxyV2({ sourceAddress: '2001:db8::1', sourcePort: 1, destinationAddress: '::1', destinationPort: 2 });
  for (let i = 0; i < h.length; i++) assert.deepEqual(readProxyHeader(h.subarray(0, i)), { kind: 'incomplete' }, `cut at ${i}`);
});

test('reading version 2: bad version, bad command, addresses longer than the length', () => {
  assert.equal(readProxyHeader(hex('0d0a0d0a000d0a515549540a 11 11 000c')).kind, 'invalid');
  assert.equal(readProxyHeader(hex('0d0a0d0a000d0a515549540a 22 11 000c')).kind, 'invalid');
  assert.equal(readProxyHeader(hex('0d0a0d0a000d0a515549540a 21 11 0004 00000000')).kind, 'invalid');
  assert.equal(readProxyHeader(hex('0d0a0d0a000d0a5155495400')).kind, 'invalid');
  // TLVs must end where the header does (HAProxy refuses the same): one that says it is longer, or bytes too few for a TLV.
  assert.deepEqual(readProxyHeader(hex('0d0a0d0a000d0a515549540a 21 11 0010 c0000209 7f000001 9c40 0050 04 0009 00')), {
    kind: 'invalid',
    reason: 'a TLV of the PROXY header runs past the header’s length',
  });
  assert.equal(readProxyHeader(hex('0d0a0d0a000d0a515549540a 21 11 000e c0000209 7f000001 9c40 0050 0400')).kind, 'invalid');
});

test('reading version 1: TCP4, TCP6, UNKNOWN, and what is refused', () => {
  const v1 = (s: string) => readProxyHeader(Buffer.from(s, 'latin1'));
  assert.deepEqual(v1('PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nhello'), { kind: 'header', length: 45, source: { address: '192.0.2.1', port: 56324 } });
  assert.deepEqual(v1('PROXY TCP6 2001:db8::1 ::1 1 2\r\n'), { kind: 'header', length: 32, source: { address: '2001:db8::1', port: 1 } });
  assert.deepEqual(v1('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'), { kind: 'header', length: 35, source: null });
  assert.deepEqual(v1('PROXY TCP4 192.0.2.1 198.51.100.2 56324'), { kind: 'incomplete' });
  assert.deepEqual(v1('PROX'), { kind: 'incomplete' });
  assert.equal(v1('PROXY TCP4 192.0.2.1 198.51.100.2 056324 443\r\n').kind, 'invalid');
  assert.equal(v1('PROXY TCP4 2001:db8::1 198.51.100.2 1 443\r\n').kind, 'invalid');
  assert.equal(v1('PROXY TCP4 192.0.2.1 198.51.100.2 70000 443\r\n').kind, 'invalid');
  assert.equal(v1(`PROXY TCP4 ${'1'.repeat(120)}`).kind, 'invalid');
  assert.equal(v1('GET / HTTP/1.1\r\n').kind, 'invalid');
  assert.equal(v1('PROXY\r\n').kind, 'invalid');
  assert.equal(v1('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n').kind, 'invalid', 'an IPv6 zone is no address on the wire');
});
