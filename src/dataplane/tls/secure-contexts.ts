import { createHash } from 'node:crypto';
import tls from 'node:tls';
import type { ListenerCertificate, TlsPolicySettings } from '../../domain/routing-snapshot.ts';
import { secureContextOptions } from '../../domain/tls-policies.ts';

/**
 * The key-exchange groups a listener offers, in the server's order: X25519, then P-256 and P-384, the
 * groups ELB's policies name. Node's default (`auto`) would add P-521 and X448, which ELB does not offer.
 */
export const ECDH_CURVES = 'X25519:prime256v1:secp384r1';

/** What `tls.createSecureContext` and `tls.createServer` take for one certificate under one policy. */
export function contextOptions(
  certificate: ListenerCertificate,
  policy: TlsPolicySettings,
): tls.SecureContextOptions & { honorCipherOrder: true } {
  return {
    cert: certificate.certificatePem,
    key: certificate.privateKeyPem,
    ...secureContextOptions(policy),
    ecdhCurve: ECDH_CURVES,
  };
}

/**
 * One `SecureContext` per certificate content and policy, built once and shared by every generation
 * that uses it (building one parses the key: about a millisecond for RSA 2048). Keyed by the ARN, a
 * hash of the PEMs (a certificate re-imported under the same ARN is new content) and the policy.
 * `retain` drops every context a new set of certificates no longer uses; a handshake that holds one
 * keeps it alive until it ends.
 */
export class SecureContextCache {
  readonly #contexts = new Map<string, tls.SecureContext>();

  /** The context for `certificate` under `policy`; throws what `tls.createSecureContext` throws (a key that does not match, a PEM OpenSSL refuses). */
  get(certificate: ListenerCertificate, policy: TlsPolicySettings): tls.SecureContext {
    const key = contextKey(certificate, policy);
    let ctx = this.#contexts.get(key);
    if (ctx === undefined) {
      ctx = tls.createSecureContext(contextOptions(certificate, policy));
      this.#contexts.set(key, ctx);
    }
    return ctx;
  }

  /** Keeps only the contexts of `certificates` under `policy`. */
  retain(certificates: readonly ListenerCertificate[], policy: TlsPolicySettings): void {
    const keep = new Set(certificates.map((c) => contextKey(c, policy)));
    for (const key of this.#contexts.keys()) if (!keep.has(key)) this.#contexts.delete(key);
  }

  get size(): number {
    return this.#contexts.size;
  }
}

function contextKey(certificate: ListenerCertificate, policy: TlsPolicySettings): string {
  const hash = createHash('sha256').update(certificate.certificatePem).update('\0').update(certificate.privateKeyPem).digest('base64');
  return `${certificate.arn}\n${hash}\n${policyKey(policy)}`;
}

export function policyKey(p: TlsPolicySettings): string {
  return `${p.name}|${p.minVersion}|${p.maxVersion}|${p.ciphers}|${p.ciphersuites}`;
}
