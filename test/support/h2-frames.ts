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

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

/** The whole frames at the start of `buf` (each payload a copy), and what is left of a frame not yet whole. */
export function splitFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let off = 0;
  while (off + 9 <= buf.length) {
    const len = buf.readUIntBE(off, 3);
    if (off + 9 + len > buf.length) break;
    frames.push({
      type: buf[off + 3] as number,
      flags: buf[off + 4] as number,
      stream: buf.readUInt32BE(off + 5) & 0x7fffffff,
      payload: Buffer.from(buf.subarray(off + 9, off + 9 + len)),
    });
    off += 9 + len;
  }
  return { frames, rest: buf.subarray(off) };
}
