import type { Logger } from "pino";
import { TollgateError } from "../errors/index.js";
import type { Clock } from "../lib/clock.js";
import type { SingleFlight, StateStore } from "../store/index.js";
import type { MintedRunnerToken } from "./github-api.js";
import type { RunnerTokenKind, Scope } from "./types.js";

/** Options of {@link createRunnerTokenCache}. */
export interface RunnerTokenCacheOptions {
  store: StateStore;
  flights: SingleFlight;
  clock: Clock;
  logger: Logger;
  /** Distinguishes GitHub instances sharing one store (github.com and a GHES). */
  keyPrefix: string;
  /** A cached token is fresh until this long before it expires; then a new one is minted. Default 5 min. */
  freshMarginMs?: number;
  /** A cached token is never handed out with less validity than this (a runner must still use it). Default 60 s. */
  minValidityMs?: number;
  /** How long GitHub's "no such scope" is remembered, so a flood of requests for it costs one call. Default 30 s. */
  notFoundTtlMs?: number;
}

/** An answer from the cache or from GitHub. */
export interface CachedRunnerToken {
  readonly token: MintedRunnerToken;
  /** True when no GitHub call was made for this request. */
  readonly cached: boolean;
  /** True when GitHub failed and a token past its fresh time (still valid) was served. */
  readonly stale: boolean;
}

/** The broker's token cache: registration and removal tokens per scope, shared through the store. */
export interface RunnerTokenCache {
  get(
    kind: RunnerTokenKind,
    scope: Scope,
    mint: () => Promise<MintedRunnerToken>,
  ): Promise<CachedRunnerToken>;
}

/**
 * Registration and removal tokens are valid for an hour and may be used by any number of runners, so
 * one per scope and kind is kept until `freshMarginMs` before it expires, and concurrent misses for one
 * scope share one GitHub call. When GitHub is unavailable, slow or rate-limited, a token that is past
 * its fresh time but still valid for `minValidityMs` is served rather than failing: an outage must not
 * stop a runner fleet that a cached token can still serve.
 *
 * @example
 * const { token, cached } = await cache.get("registration", scope, () => api.createRunnerToken(scope, "registration"));
 */
export function createRunnerTokenCache(options: RunnerTokenCacheOptions): RunnerTokenCache {
  const { store, flights, clock, logger, keyPrefix } = options;
  const freshMarginMs = options.freshMarginMs ?? 5 * 60_000;
  const minValidityMs = options.minValidityMs ?? 60_000;
  const notFoundTtlMs = options.notFoundTtlMs ?? 30_000;

  async function read(key: string): Promise<MintedRunnerToken | undefined> {
    const text = await store.get(key);
    if (text === undefined) return undefined;
    try {
      const value = JSON.parse(text) as Partial<MintedRunnerToken>;
      if (
        typeof value.token === "string" &&
        typeof value.expires_at === "string" &&
        typeof value.expiresAtMs === "number"
      ) {
        return { token: value.token, expires_at: value.expires_at, expiresAtMs: value.expiresAtMs };
      }
    } catch {
      // A value this version cannot read is treated as a miss and overwritten.
    }
    return undefined;
  }

  return {
    async get(kind, scope, mint) {
      const key = `${keyPrefix}:${kind}:${scope.text}`;
      const held = await read(key);
      if (held !== undefined && held.expiresAtMs - freshMarginMs > clock()) {
        return { token: held, cached: true, stale: false };
      }
      const missKey = `${key}:not-found`;
      if (held === undefined && (await store.get(missKey)) !== undefined) {
        throw new TollgateError(
          "TG_GITHUB_NOT_FOUND",
          `GitHub answered 404 for ${scope.text} within the last ${notFoundTtlMs / 1000}s (remembered)`,
        );
      }
      try {
        const token = await flights.run(key, async () => {
          let minted: MintedRunnerToken;
          try {
            minted = await mint();
          } catch (error) {
            // Any scope name that matches the allow list can be asked for: without this, a loop over
            // made-up repository names would spend the credential's rate limit one call at a time.
            if (error instanceof TollgateError && error.code === "TG_GITHUB_NOT_FOUND") {
              await store.set(missKey, "1", notFoundTtlMs);
            }
            throw error;
          }
          const ttlMs = minted.expiresAtMs - minValidityMs - clock();
          if (ttlMs > 0) await store.set(key, JSON.stringify(minted), ttlMs);
          return minted;
        });
        return { token, cached: false, stale: false };
      } catch (error) {
        const usable = held !== undefined && held.expiresAtMs - minValidityMs > clock();
        if (usable && error instanceof TollgateError && degradable.has(error.code)) {
          logger.warn(
            { scope: scope.text, kind, error: error.code, expires_at: held.expires_at },
            "GitHub is unavailable; serving a cached runner token past its refresh time",
          );
          return { token: held, cached: true, stale: true };
        }
        throw error;
      }
    },
  };
}

/** Failures of availability, not of authority: only these may be bridged by a still-valid token. */
const degradable = new Set(["TG_GITHUB_UNAVAILABLE", "TG_GITHUB_TIMEOUT", "TG_GITHUB_RATE_LIMITED"]);
