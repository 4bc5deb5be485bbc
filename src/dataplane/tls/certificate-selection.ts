import type { ListenerCertificate } from '../../domain/routing-snapshot.ts';

/**
 * Which of a listener's certificates a handshake presents, by the name the client sent (SNI), as ALB
 * chooses: a certificate naming the host exactly, else one whose wildcard `*.example.com` covers it (one
 * label, never more: `*.example.com` covers `a.example.com`, not `example.com` nor `a.b.example.com`, as
 * RFC 6125 §6.4.3 and browsers read it), else the listener's default certificate (its first). When
 * several certificates name the same host the first in the listener's order wins; ALB's "smart
 * selection" between an RSA and an ECDSA certificate by what the client supports is not done (Node tells
 * the SNI callback only the name).
 */
export class CertificateIndex {
  readonly #default: ListenerCertificate;
  readonly #exact = new Map<string, ListenerCertificate>();
  /** By what follows `*.` (`example.com` for `*.example.com`). */
  readonly #wildcard = new Map<string, ListenerCertificate>();

  /** `certificates` is non-empty, the default first (ListenerTls). */
  constructor(certificates: readonly [ListenerCertificate, ...ListenerCertificate[]]) {
    this.#default = certificates[0];
    for (const c of certificates) {
      for (const raw of c.names) {
        const name = normalName(raw);
        if (name.startsWith('*.')) {
          const rest = name.slice(2);
          if (rest !== '' && !this.#wildcard.has(rest)) this.#wildcard.set(rest, c);
        } else if (name !== '' && !this.#exact.has(name)) this.#exact.set(name, c);
      }
    }
  }

  get defaultCertificate(): ListenerCertificate {
    return this.#default;
  }

  /** The certificate for `serverName` (the client's SNI; null or empty when it sent none). */
  select(serverName: string | null): ListenerCertificate {
    if (serverName === null || serverName === '') return this.#default;
    const name = normalName(serverName);
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wild = this.#wildcard.get(name.slice(dot + 1));
      if (wild !== undefined) return wild;
    }
    return this.#default;
  }
}

/** Names compare without case and without a trailing dot (`Example.COM.` is `example.com`). */
function normalName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}
