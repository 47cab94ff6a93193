import type { VerifiedToken } from "./types.js";

/** Verified tokens by SHA-256 of the raw token, so a reused token skips the signature check. */
export interface VerifiedTokenCache {
  /**
   * The cached result (with `cached: true`) and the end of validity it was stored with, while `now` is
   * before that end.
   */
  entry(tokenSha256: string, nowMs: number): CachedVerification | undefined;
  /** Caches a freshly verified token until `validUntilMs` (its `exp`, or earlier with a maximum age). */
  set(token: VerifiedToken, validUntilMs: number, nowMs: number): void;
  readonly size: number;
}

/** One cached verification: the result handed out on a hit, and until when it may be. */
export interface CachedVerification {
  readonly hit: VerifiedToken;
  readonly validUntilMs: number;
}

/**
 * A bounded cache of verified tokens. A `Map` keeps insertion order, so the oldest entry is evicted first;
 * tokens live minutes, so insertion order is close enough to expiry order without a heap.
 *
 * @example
 * const cache = createVerifiedTokenCache(10_000);
 */
export function createVerifiedTokenCache(maxEntries: number): VerifiedTokenCache {
  const entries = new Map<string, CachedVerification>();
  return {
    entry(tokenSha256, nowMs) {
      const found = entries.get(tokenSha256);
      if (found === undefined) return undefined;
      if (nowMs >= found.validUntilMs) {
        entries.delete(tokenSha256);
        return undefined;
      }
      return found;
    },
    set(token, validUntilMs, nowMs) {
      if (maxEntries <= 0 || nowMs >= validUntilMs) return;
      entries.delete(token.tokenSha256);
      while (entries.size >= maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done) break;
        entries.delete(oldest.value);
      }
      entries.set(token.tokenSha256, { hit: Object.freeze({ ...token, cached: true }), validUntilMs });
    },
    get size() {
      return entries.size;
    },
  };
}
