import { decodeJwt } from "jose";
import { TollgateError } from "../errors/index.js";
import { type Clock, systemClock } from "../lib/clock.js";

/** Hands out a token that is still good for a while; fetches a new one when needed. */
export interface TokenSource {
  /** A token with more than the refresh margin left, or a fresh one. Concurrent callers share one fetch. */
  token(): Promise<string>;
  /** Milliseconds since the epoch when the cached token expires, or `undefined` when none is cached. */
  cachedUntil(): number | undefined;
}

/** How a {@link TokenSource} fetches and when it refreshes. */
export interface TokenSourceOptions {
  /** Fetches a new raw token (for example from the Actions token endpoint). */
  fetchToken: () => Promise<string>;
  clock?: Clock;
  /**
   * Refresh when less than this is left (default 60 s). GitHub's tokens live five minutes; a minute
   * leaves room for the gateway's clock skew and a slow handshake.
   */
  refreshMarginMs?: number;
  /**
   * When a refresh fails, a cached token with at least this much left is still handed out (default 5 s):
   * a token endpoint hiccup should not break a connection the old token can still open.
   */
  graceMs?: number;
}

interface CachedToken {
  readonly raw: string;
  readonly expiresAtMs: number;
}

/**
 * Creates a caching token source. The expiry comes from the token's own `exp` (decoded with jose,
 * never parsed by hand; the signature is the gateway's business). A token without a usable `exp` is
 * handed out once and never cached.
 *
 * @example
 * const source = createTokenSource({ fetchToken: () => requestActionsIdToken({ ... }) });
 * const token = await source.token();
 */
export function createTokenSource(options: TokenSourceOptions): TokenSource {
  const clock = options.clock ?? systemClock;
  const refreshMarginMs = options.refreshMarginMs ?? 60_000;
  const graceMs = options.graceMs ?? 5_000;
  let cached: CachedToken | undefined;
  let inFlight: Promise<string> | undefined;

  async function refresh(): Promise<string> {
    try {
      const raw = await options.fetchToken();
      const expiresAtMs = expiryOf(raw);
      cached = expiresAtMs === undefined ? undefined : { raw, expiresAtMs };
      return raw;
    } catch (error) {
      if (cached !== undefined && cached.expiresAtMs - clock() > graceMs) return cached.raw;
      throw error;
    }
  }

  return {
    token() {
      if (cached !== undefined && cached.expiresAtMs - clock() > refreshMarginMs) {
        return Promise.resolve(cached.raw);
      }
      if (inFlight === undefined) {
        inFlight = refresh().finally(() => {
          inFlight = undefined;
        });
      }
      return inFlight;
    },
    cachedUntil: () => cached?.expiresAtMs,
  };
}

/** `exp` in milliseconds, or `undefined` when the token has none. A token that is not a JWT is refused. */
function expiryOf(raw: string): number | undefined {
  let claims: ReturnType<typeof decodeJwt>;
  try {
    claims = decodeJwt(raw);
  } catch (cause) {
    // Never include the value: it may be a secret of another shape.
    throw new TollgateError(
      "TG_CLIENT_TOKEN_UNAVAILABLE",
      "the token endpoint answered something that is not a JWT",
      {
        cause,
      },
    );
  }
  return typeof claims.exp === "number" && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
}
