/**
 * HTTP/2 frames written by hand (RFC 9113 §4.1) and the few HPACK fields the tests send (RFC 7541), for
 * clients that must do what Node's own http2 client will not: break a limit, reset at will.
 */

/** A frame: its 9-byte header and `payload`. */
export function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** An HPACK indexed field (RFC 7541 §6.1) from the static table. */
export function indexed(index: number): Buffer {
  return Buffer.from([0x80 | index]);
}

/** An HPACK literal field without indexing, new name (RFC 7541 §6.2.2), lengths under 127. */
export function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name, 'latin1'), Buffer.from([value.length]), Buffer.from(value, 'latin1')]);
}
