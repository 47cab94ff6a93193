import type {
  AuthFailureSpec,
  ConcurrencySpec,
  RateLimitKey,
  RateLimitSpec,
  SingleUseSpec,
} from "./types.js";

/**
 * The limits a request would meet, in words, for `tollgate explain`: each line says what is counted, by
 * which key (with this caller's value), and what the caller gets past it. Pure: it counts nothing.
 *
 * @example
 * describeLimits(route, claims, { addressCountedBeforeToken: true });
 * // ["rate limit route:api: 60 requests per 60s for each repository_id (this caller: repository_id 74); past it 429 TG_RATE_LIMITED"]
 */
export function describeLimits(
  limits: {
    readonly rateLimit?: RateLimitSpec | undefined;
    readonly concurrency?: ConcurrencySpec | undefined;
    readonly singleUse?: SingleUseSpec | undefined;
  },
  claims: Readonly<Record<string, unknown>>,
  options: { readonly addressCountedBeforeToken?: boolean } = {},
): string[] {
  const lines: string[] = [];
  const limit = limits.rateLimit;
  if (limit !== undefined) {
    const per = perKey(limit.key, claims, options.addressCountedBeforeToken === true);
    const burst =
      limit.burst > 0 ? `, plus a burst of ${limit.burst} refilled every ${limit.perSeconds * 10}s` : "";
    lines.push(
      `rate limit ${limit.id}: ${limit.requests} requests per ${limit.perSeconds}s ${per}${burst}; past it 429 TG_RATE_LIMITED (store error: ${limit.onStoreError})`,
    );
  }
  const concurrency = limits.concurrency;
  if (concurrency !== undefined) {
    lines.push(
      `concurrency ${concurrency.id}: ${concurrency.max} tunnels open at once ${perKey(concurrency.key, claims, false)}; one more: 429 TG_RATE_LIMITED (store error: ${concurrency.onStoreError})`,
    );
  }
  if (limits.singleUse !== undefined) {
    const jti = claims.jti;
    lines.push(
      typeof jti === "string" && jti !== ""
        ? `single use: this token (jti ${jti}) is accepted once, on any instance sharing the store; again: 401 TG_TOKEN_REPLAYED (store error: ${limits.singleUse.onStoreError})`
        : "single use: this token has no jti, so it is refused: 401 TG_TOKEN_JTI_MISSING",
    );
  }
  return lines;
}

/** The failed-authentication throttle in words, or `undefined` when it is off. */
export function describeAuthFailures(spec: AuthFailureSpec | undefined): string | undefined {
  if (spec === undefined) return undefined;
  return `failed-authentication throttle: after ${spec.max} failed token checks per ${spec.perSeconds}s from one address, its requests get 429 TG_RATE_LIMITED before any token work`;
}

function perKey(key: RateLimitKey, claims: Readonly<Record<string, unknown>>, beforeToken: boolean): string {
  return key.kind === "client_ip"
    ? `for each client address${beforeToken ? " (counted before the token is checked)" : ""}`
    : `for each ${key.claim} (this caller: ${key.claim} ${shown(claims[key.claim])})`;
}

function shown(value: unknown): string {
  if (value === undefined || value === null) return "(missing: such callers share one allowance)";
  return typeof value === "string" ? value : JSON.stringify(value);
}
