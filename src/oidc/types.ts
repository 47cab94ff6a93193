import type { Clock } from "../lib/clock.js";

/** An issuer after presets are expanded and durations parsed (from `issuers[]` in YAML). */
export interface IssuerSettings {
  /** Configured name, used by policies (`policies.x.issuer`). */
  readonly name: string;
  /** Exact `iss` string, e.g. `https://token.actions.githubusercontent.com`. */
  readonly issuer: string;
  /** At least one; the token's `aud` must contain one of them. */
  readonly audiences: readonly string[];
  /** Explicit JWKS URL; when absent, discovered from `<issuer>/.well-known/openid-configuration`. */
  readonly jwksUri?: string;
  /** Allowed JWS algorithms; asymmetric only (default `["RS256"]`). */
  readonly algorithms: readonly string[];
  readonly clockSkewMs: number;
  /** Optional maximum age of a token, measured from `iat`. */
  readonly maxTokenAgeMs?: number;
}

/** Limits and timings shared by all issuers (`oidc:` in YAML, all optional). */
export interface VerifierSettings {
  /** Largest raw token accepted, in bytes (default 16 KiB). */
  readonly maxTokenBytes: number;
  /** Largest discovery or JWKS document accepted, in bytes (default 512 KiB). */
  readonly maxDocumentBytes: number;
  /** Timeout of a discovery or JWKS fetch (default 5s). */
  readonly fetchTimeoutMs: number;
  /** Minimum time between two JWKS fetches triggered by an unknown `kid` (default 30s). */
  readonly unknownKidCooldownMs: number;
  /** Background refresh interval of the key set (default 10m). */
  readonly refreshIntervalMs: number;
  /** How long the last good key set keeps serving while the issuer is unreachable (default 24h). */
  readonly staleKeysMaxAgeMs: number;
  /** Maximum number of verified tokens cached (default 10,000). */
  readonly tokenCacheSize: number;
}

/** A token that passed every check. Frozen. */
export interface VerifiedToken {
  /** Name of the configured issuer that verified it. */
  readonly issuer: string;
  readonly claims: Readonly<Record<string, unknown>>;
  /** Hex SHA-256 of the raw token: the only form of a token that may be logged. */
  readonly tokenSha256: string;
  /** `exp` in milliseconds. */
  readonly expiresAtMs: number;
  /** Whether this result came from the verified-token cache (no signature check this time). */
  readonly cached: boolean;
}

/**
 * Verifies raw OIDC tokens against the configured issuers. Throws `TollgateError` with a `TG_TOKEN_*`
 * code (or `TG_ISSUER_UNAVAILABLE`) whose message is operator detail for the audit log.
 */
export interface TokenVerifier {
  /**
   * Verifies `rawToken`, answering from the verified-token cache when it can. `connection` (the client's
   * socket, or any object that lives as long as one caller's connection) enables a per-connection memo
   * of the last token: a client that sends the same token again on a keep-alive connection, as every
   * client does, is answered by one string comparison instead of hashing the token. The memo follows
   * the cache: with `token_cache_size: 0` nothing is remembered.
   */
  verify(rawToken: string, connection?: object): Promise<VerifiedToken>;
  /** Loads every issuer's keys once; resolves when done (rejections are logged, not thrown). */
  start(): Promise<void>;
  /** True once every issuer has a usable key set (drives `/readyz`). */
  isReady(): boolean;
  /** Per-issuer key state for `/readyz` and logs. */
  status(): { issuer: string; ready: boolean; keysLoadedAtMs?: number; lastError?: string }[];
  /** Stops background refresh timers. */
  close(): void;
}

/** What the verifier needs from outside; tests inject a frozen clock and a fetch to a loopback issuer. */
export interface VerifierDependencies {
  clock?: Clock;
  /** Fetch used for discovery and JWKS (an undici `fetch`); default global fetch. */
  fetch?: typeof fetch;
}
