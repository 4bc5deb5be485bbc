import net from 'node:net';

/**
 * The PROXY protocol (HAProxy's doc/proxy-protocol.txt): the header a proxy writes first on its
 * connection to a backend, carrying the client's address and port. ebb writes version 2 (binary) on
 * every flow to a target of a group with `proxy_protocol_v2.enabled`, as NLB does, and reads version 1
 * (text) or 2 from a load balancer in front of it (`readProxyHeader`).
 */

/** The 12 bytes every version 2 header starts with (§2.2). */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Version 2 in the high nibble; command PROXY (1) or LOCAL (0) in the low one. */
const V2_PROXY = 0x21;
const V2_LOCAL = 0x20;
/** Address family in the high nibble (1 AF_INET, 2 AF_INET6), transport STREAM (1) in the low one. */
const TCP_OVER_IPV4 = 0x11;
const TCP_OVER_IPV6 = 0x21;
const UNSPEC = 0x00;
/** The address block's length: two addresses and two ports. */
const IPV4_BLOCK = 4 + 4 + 2 + 2;
const IPV6_BLOCK = 16 + 16 + 2 + 2;
/** A version 1 line is at most 107 bytes with its CRLF (§2.1). */
const V1_MAX = 107;
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

/** Where a connection came from and where it arrived. */
export interface ProxiedAddresses {
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
}

/**
 * The version 2 header for a TCP connection: command PROXY, TCP over IPv4 when both addresses are
 * IPv4 (or IPv4-mapped IPv6, as a dual-stack socket reports an IPv4 client), else TCP over IPv6 with
 * any IPv4 address mapped. No TLV. An address that is not an IP (a socket already closed reports
 * none) gives the LOCAL command with no address, which the receiver takes as "use the connection's
 * own addresses" (§2.2), rather than a header it would refuse.
 */
export function encodeProxyV2(a: ProxiedAddresses): Buffer {
  const src = unmapIpv4(a.sourceAddress);
  const dst = unmapIpv4(a.destinationAddress);
  const ports = validPort(a.sourcePort) && validPort(a.destinationPort);
  if (ports && net.isIPv4(src) && net.isIPv4(dst)) {
    const out = header(V2_PROXY, TCP_OVER_IPV4, IPV4_BLOCK);
    writeIpv4(src, out, 16);
    writeIpv4(dst, out, 20);
    out.writeUInt16BE(a.sourcePort, 24);
    out.writeUInt16BE(a.destinationPort, 26);
    return out;
  }
  if (ports && net.isIP(src) !== 0 && net.isIP(dst) !== 0) {
    const out = header(V2_PROXY, TCP_OVER_IPV6, IPV6_BLOCK);
    writeIpv6(src, out, 16);
    writeIpv6(dst, out, 32);
    out.writeUInt16BE(a.sourcePort, 48);
    out.writeUInt16BE(a.destinationPort, 50);
    return out;
  }
  return header(V2_LOCAL, UNSPEC, 0);
}

function header(command: number, family: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(16 + length);
  PROXY_V2_SIGNATURE.copy(out, 0);
  out[12] = command;
  out[13] = family;
  out.writeUInt16BE(length, 14);
  return out;
}

function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 0 && p <= 0xffff;
}

/** `::ffff:192.0.2.1` → `192.0.2.1`; anything else as it is. */
function unmapIpv4(address: string): string {
  if (address.length > 7 && address.slice(0, 7).toLowerCase() === '::ffff:') {
    const v4 = address.slice(7);
    if (net.isIPv4(v4)) return v4;
  }
  return address;
}

function writeIpv4(address: string, out: Buffer, at: number): void {
  const parts = address.split('.');
  for (let i = 0; i < 4; i++) out[at + i] = Number(parts[i]);
}

/** Writes the 16 bytes of an IPv6 address (or of an IPv4 one, mapped); the caller has checked it is an IP. */
function writeIpv6(address: string, out: Buffer, at: number): void {
  out.fill(0, at, at + 16);
  if (net.isIPv4(address)) {
    out[at + 10] = 0xff;
    out[at + 11] = 0xff;
    writeIpv4(address, out, at + 12);
    return;
  }
  const zone = address.indexOf('%');
  const plain = zone >= 0 ? address.slice(0, zone) : address;
  const gap = plain.indexOf('::');
  const head = groupsOf(gap >= 0 ? plain.slice(0, gap) : plain);
  const tail = gap >= 0 ? groupsOf(plain.slice(gap + 2)) : [];
  const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i] ?? 0, at + 2 * i);
}

/** The 16-bit groups of a colon-separated run, an embedded IPv4 tail as two groups. */
function groupsOf(run: string): number[] {
  if (run === '') return [];
  const groups: number[] = [];
  for (const g of run.split(':')) {
    if (g.includes('.')) {
      const [a = 0, b = 0, c = 0, d = 0] = g.split('.').map(Number);
      groups.push((a << 8) | b, (c << 8) | d);
    } else groups.push(parseInt(g, 16));
  }
  return groups;
}

/** What `readProxyHeader` made of the bytes so far. */
export type ProxyHeaderResult =
  /** Not enough bytes yet to know. */
  | { readonly kind: 'incomplete' }
  /** Not a PROXY header, or a malformed one: the connection is closed. */
  | { readonly kind: 'invalid'; readonly reason: string }
  /**
   * A whole header of `length` bytes (the connection's own bytes follow it). `source` is the client
   * the load balancer in front saw, or null when the header says to use the connection's own address
   * (version 2 LOCAL, version 1 UNKNOWN, or a family other than TCP over IPv4/IPv6).
   */
  | { readonly kind: 'header'; readonly length: number; readonly source: { readonly address: string; readonly port: number } | null };

const INCOMPLETE: ProxyHeaderResult = { kind: 'incomplete' };

/**
 * Reads a PROXY header of version 1 or 2 at the start of `b` (what a connection has sent so far).
 * Version 2 TLVs are skipped. A receiver must not guess (§2: the header is mandatory once
 * configured), so anything else is `invalid`.
 */
export function readProxyHeader(b: Buffer): ProxyHeaderResult {
  if (b.length === 0) return INCOMPLETE;
  if (b[0] === 0x0d) return readV2(b);
  if (b[0] === 0x50) return readV1(b);
  return { kind: 'invalid', reason: 'the connection does not start with a PROXY protocol header' };
}

function readV2(b: Buffer): ProxyHeaderResult {
  const sig = Math.min(b.length, 12);
  if (!b.subarray(0, sig).equals(PROXY_V2_SIGNATURE.subarray(0, sig))) {
    return { kind: 'invalid', reason: 'the connection does not start with a PROXY protocol header' };
  }
  if (b.length < 16) return INCOMPLETE;
  const verCmd = b[12] as number;
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: `PROXY protocol version ${verCmd >> 4} is not supported` };
  const command = verCmd & 0x0f;
  if (command > 1) return { kind: 'invalid', reason: `PROXY protocol command ${command} is not defined` };
  const length = 16 + b.readUInt16BE(14);
  if (b.length < length) return INCOMPLETE;
  const family = b[13] as number;
  if (command === 0) return { kind: 'header', length, source: null };
  if (family === TCP_OVER_IPV4) {
    if (length < 16 + IPV4_BLOCK) return { kind: 'invalid', reason: 'the PROXY header is too short for its IPv4 addresses' };
    if (!tlvsFit(b, 16 + IPV4_BLOCK, length)) return BAD_TLV;
    return { kind: 'header', length, source: { address: `${b[16]}.${b[17]}.${b[18]}.${b[19]}`, port: b.readUInt16BE(24) } };
  }
  if (family === TCP_OVER_IPV6) {
    if (length < 16 + IPV6_BLOCK) return { kind: 'invalid', reason: 'the PROXY header is too short for its IPv6 addresses' };
    if (!tlvsFit(b, 16 + IPV6_BLOCK, length)) return BAD_TLV;
    return { kind: 'header', length, source: { address: ipv6Text(b.subarray(16, 32)), port: b.readUInt16BE(48) } };
  }
  // UNSPEC, UDP, UNIX sockets: nothing ebb can use as a TCP client's address.
  return { kind: 'header', length, source: null };
}

const BAD_TLV: ProxyHeaderResult = { kind: 'invalid', reason: 'a TLV of the PROXY header runs past the header’s length' };

/** Whether the TLVs after the addresses (`b[from, end)`: type, 16-bit length, value) end exactly at the header's end, as HAProxy checks. */
function tlvsFit(b: Buffer, from: number, end: number): boolean {
  let at = from;
  while (at < end) {
    if (end - at < 3) return false;
    at += 3 + b.readUInt16BE(at + 1);
  }
  return at === end;
}

function readV1(b: Buffer): ProxyHeaderResult {
  const pre = Math.min(b.length, V1_PREFIX.length);
  if (!b.subarray(0, pre).equals(V1_PREFIX.subarray(0, pre))) {
    return { kind: 'invalid', reason: 'the connection does not start with a PROXY protocol header' };
  }
  const end = b.subarray(0, V1_MAX).indexOf('\r\n');
  if (end < 0) {
    return b.length >= V1_MAX ? { kind: 'invalid', reason: 'the PROXY protocol line is longer than 107 bytes' } : INCOMPLETE;
  }
  const length = end + 2;
  const fields = b.toString('latin1', V1_PREFIX.length, end).split(' ');
  const proto = fields[0];
  if (proto === 'UNKNOWN') return { kind: 'header', length, source: null };
  if ((proto !== 'TCP4' && proto !== 'TCP6') || fields.length !== 5) {
    return { kind: 'invalid', reason: 'the PROXY protocol line is not "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>"' };
  }
  const [, src = '', dst = '', sport = '', dport = ''] = fields;
  const want = proto === 'TCP4' ? 4 : 6;
  // No IPv6 zone (`fe80::1%eth0`), which net.isIP allows: an address on the wire has none.
  if (net.isIP(src) !== want || net.isIP(dst) !== want || src.includes('%') || dst.includes('%') || !v1Port(sport) || !v1Port(dport)) {
    return { kind: 'invalid', reason: 'the PROXY protocol line has an address or port that is not valid' };
  }
  return { kind: 'header', length, source: { address: src, port: Number(sport) } };
}

/** A port as version 1 writes it: decimal, no leading zero, at most 65535. */
function v1Port(s: string): boolean {
  return /^(0|[1-9][0-9]{0,4})$/.test(s) && Number(s) <= 0xffff;
}

/** 16 bytes as Node writes an IPv6 address (lower case, the longest run of zero groups as `::`). */
function ipv6Text(b: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}
