import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../shared/clock.ts';

/**
 * The dashboard's sign-ins: sessions (what its cookie names) and one-time sign-in links (what
 * `ebb dashboard` prints). Both are bearer secrets, so ebb keeps only their SHA-256: a lookup's timing
 * says nothing about a token, and a heap dump gives none away. Both stores are bounded.
 */

/** A fresh random token: 256 bits, URL- and cookie-safe. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Whether two strings are equal, in time that depends on their length only. */
export function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y) && a.length === b.length;
}

export interface Session {
  /** Sent with every change the page makes (header `x-csrf-token`); the page reads it from /dashboard/api/session. */
  readonly csrfToken: string;
  /** Monotonic ms. */
  readonly createdAt: number;
  /** Monotonic ms; moves on each use. */
  lastUsedAt: number;
  /** Wall ms when the session ends at the latest. */
  readonly expiresAtWall: number;
  /** Who signed in: the access key id of the form, or how (a one-time link, authentication off). */
  readonly who: string;
}

export interface SessionLimits {
  /** Sessions kept at once; beyond, the least recently used is ended (default 64). */
  readonly maxSessions?: number;
  /** A session unused this long ends (default 1 h). */
  readonly idleMs?: number;
  /** A session ends this long after sign-in, used or not (default 12 h). */
  readonly maxAgeMs?: number;
}

export const DEFAULT_SESSION_LIMITS = { maxSessions: 64, idleMs: 60 * 60_000, maxAgeMs: 12 * 60 * 60_000 } as const;

export class SessionStore {
  readonly #clock: Clock;
  readonly #max: number;
  readonly #idleMs: number;
  readonly #maxAgeMs: number;
  /** By the digest of the cookie's token; a Map keeps insertion order, refreshed on use, so the first is the least recently used. */
  readonly #sessions = new Map<string, Session>();

  constructor(clock: Clock, limits: SessionLimits = {}) {
    this.#clock = clock;
    this.#max = Math.max(1, limits.maxSessions ?? DEFAULT_SESSION_LIMITS.maxSessions);
    this.#idleMs = limits.idleMs ?? DEFAULT_SESSION_LIMITS.idleMs;
    this.#maxAgeMs = limits.maxAgeMs ?? DEFAULT_SESSION_LIMITS.maxAgeMs;
  }

  get maxAgeMs(): number {
    return this.#maxAgeMs;
  }

  get idleMs(): number {
    return this.#idleMs;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** A new session; returns the token for its cookie (kept nowhere else). */
  create(who: string): { token: string; session: Session } {
    this.#prune();
    while (this.#sessions.size >= this.#max) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    const now = this.#clock.now();
    const token = newToken();
    const session: Session = { csrfToken: newToken(), createdAt: now, lastUsedAt: now, expiresAtWall: this.#clock.wallTime() + this.#maxAgeMs, who };
    this.#sessions.set(digest(token), session);
    return { token, session };
  }

  /** The live session the token names, marked used; undefined when there is none or it has expired. */
  use(token: string): Session | undefined {
    const key = digest(token);
    const session = this.#sessions.get(key);
    if (session === undefined) return undefined;
    if (this.#expired(session)) {
      this.#sessions.delete(key);
      return undefined;
    }
    session.lastUsedAt = this.#clock.now();
    this.#sessions.delete(key);
    this.#sessions.set(key, session);
    return session;
  }

  end(token: string): void {
    this.#sessions.delete(digest(token));
  }

  #expired(s: Session): boolean {
    const now = this.#clock.now();
    return now - s.lastUsedAt >= this.#idleMs || now - s.createdAt >= this.#maxAgeMs;
  }

  #prune(): void {
    for (const [key, s] of this.#sessions) if (this.#expired(s)) this.#sessions.delete(key);
  }
}

/** One-time sign-in links outstanding at once; beyond, the oldest stops working. */
export const MAX_SIGN_IN_LINKS = 16;
/** How long a sign-in link works if unused. */
export const SIGN_IN_LINK_TTL_MS = 10 * 60_000;

/** One-time sign-in tokens: each works once, within its lifetime. */
export class SignInLinks {
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #max: number;
  /** Digest → monotonic expiry, oldest first. */
  readonly #tokens = new Map<string, number>();

  constructor(clock: Clock, ttlMs = SIGN_IN_LINK_TTL_MS, max = MAX_SIGN_IN_LINKS) {
    this.#clock = clock;
    this.#ttlMs = ttlMs;
    this.#max = max;
  }

  /** A new token and when it stops working (wall ms). */
  issue(): { token: string; expiresAt: number } {
    const now = this.#clock.now();
    for (const [key, expires] of this.#tokens) if (expires <= now) this.#tokens.delete(key);
    while (this.#tokens.size >= this.#max) {
      const oldest = this.#tokens.keys().next().value;
      if (oldest === undefined) break;
      this.#tokens.delete(oldest);
    }
    const token = newToken();
    this.#tokens.set(digest(token), now + this.#ttlMs);
    return { token, expiresAt: this.#clock.wallTime() + this.#ttlMs };
  }

  /** Whether the token is outstanding and unexpired; it never works again either way. */
  redeem(token: string): boolean {
    const key = digest(token);
    const expires = this.#tokens.get(key);
    this.#tokens.delete(key);
    return expires !== undefined && expires > this.#clock.now();
  }
}
