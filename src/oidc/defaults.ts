import type { VerifierSettings } from "./types.js";

/**
 * Verifier limits and timings used when the `oidc:` section of the configuration leaves them out.
 * GitHub's tokens are about 1 KiB and its JWKS about 2 KiB, so the size caps leave a wide margin while
 * still refusing anything built to exhaust memory.
 *
 * @example
 * createTokenVerifier(issuers, { ...defaultVerifierSettings, tokenCacheSize: 1000 });
 */
export const defaultVerifierSettings: VerifierSettings = Object.freeze({
  maxTokenBytes: 16 * 1024,
  maxDocumentBytes: 512 * 1024,
  fetchTimeoutMs: 5_000,
  unknownKidCooldownMs: 30_000,
  refreshIntervalMs: 10 * 60_000,
  staleKeysMaxAgeMs: 24 * 60 * 60_000,
  tokenCacheSize: 10_000,
});

/** Clock skew tolerated on `exp`, `nbf` and `iat` when an issuer does not set `clock_skew`. */
export const defaultClockSkewMs = 30_000;

/** Algorithms accepted when an issuer does not set `algorithms` (GitHub signs with RS256). */
export const defaultAlgorithms: readonly string[] = Object.freeze(["RS256"]);
