/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and are never forwarded.
 * Transfer-Encoding is re-framed by whoever writes the next hop; Upgrade is forwarded only on the
 * upgrade path, which adds it back itself.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** True for a lower-case header name that never crosses a hop. */
export function isHopByHop(lowerName: string): boolean {
  return HOP_BY_HOP.has(lowerName);
}

/**
 * The extra header names a `Connection` header lists (`Connection: close, X-Foo` names `x-foo`),
 * lower-cased; `close`, `keep-alive` and `upgrade` are options, not names, but stripping them is
 * harmless. Returns null when there is nothing beyond the standard options (the common case).
 */
export function connectionNamedHeaders(connectionValue: string): Set<string> | null {
  if (connectionValue.indexOf(',') < 0) {
    // One option or name, the common case (`keep-alive`, `close`): no split.
    const name = connectionValue.trim().toLowerCase();
    return name === '' || name === 'close' || name === 'keep-alive' || name === 'upgrade' ? null : new Set([name]);
  }
  let out: Set<string> | null = null;
  const parts = connectionValue.split(',');
  for (let i = 0; i < parts.length; i++) {
    const name = (parts[i] as string).trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive' || name === 'upgrade') continue;
    (out ??= new Set()).add(name);
  }
  return out;
}
