import { isIPv6 } from 'node:net';

/**
 * The admin endpoint's budget of request bodies being read or handled at once. A body that arrives
 * slowly holds its slot until the body timeout, so the budget is split three ways to keep one
 * client from starving the rest:
 * - `total` slots in all, which bounds the memory held for bodies;
 * - at most `perAddress` of them for one client address (an IPv6 client counts by its /64, the
 *   smallest block a site is normally given, RFC 6177, so one host cannot pose as many);
 * - `reserved` of them only for requests whose Authorization header names a configured access key.
 *   The key is checked before any body is read, so a caller without a key (with authentication
 *   off) can fill the ordinary slots but never these.
 */
export class BodySlots {
  readonly #total: number;
  readonly #reserved: number;
  readonly #perAddress: number;
  #inUse = 0;
  readonly #byAddress = new Map<string, number>();

  constructor(limits: { readonly total: number; readonly reserved: number; readonly perAddress: number }) {
    this.#total = limits.total;
    this.#reserved = limits.reserved;
    this.#perAddress = limits.perAddress;
  }

  /**
   * Takes a slot for a request from `address`, returning the function that gives it back (once,
   * however often it is called), or the bound that refused it.
   */
  take(address: string | undefined, knownKey: boolean): (() => void) | 'address' | 'ordinary' | 'total' {
    const client = clientOf(address);
    const mine = this.#byAddress.get(client) ?? 0;
    if (mine >= this.#perAddress) return 'address';
    if (this.#inUse >= this.#total) return 'total';
    if (!knownKey && this.#inUse >= this.#total - this.#reserved) return 'ordinary';
    this.#inUse++;
    this.#byAddress.set(client, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inUse--;
      const left = (this.#byAddress.get(client) ?? 1) - 1;
      // Forget an address as soon as it holds nothing, so the map stays as small as the slots in use.
      if (left === 0) this.#byAddress.delete(client);
      else this.#byAddress.set(client, left);
    };
  }

  /** Slots in use (for tests and diagnostics). */
  get inUse(): number {
    return this.#inUse;
  }
}

/**
 * The client a remote address belongs to, for per-client bounds: an IPv4 address as it is (also
 * when node shows it IPv4-mapped, `::ffff:a.b.c.d`), an IPv6 address by its first 64 bits.
 */
export function clientOf(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped !== null) return mapped[1] ?? address;
  const bare = address.split('%')[0] ?? address;
  if (!isIPv6(bare)) return address;
  return `${ipv6Groups(bare).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, as lower-case hex without leading zeros. */
function ipv6Groups(address: string): string[] {
  const [head = '', tail] = address.split('::');
  const split = (part: string): string[] => (part === '' ? [] : part.split(':'));
  // A trailing dotted IPv4 part is two groups; only the first four groups matter here, so its value is not needed.
  const expand = (groups: string[]): string[] => groups.flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const h = expand(split(head));
  const t = expand(tail === undefined ? [] : split(tail));
  const all = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return all.map((g) => parseInt(g, 16).toString(16));
}
