/**
 * The IETF rate-limit header fields (draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy` names the
 * quota (`q`, requests) per window (`w`, seconds); `RateLimit` says what is left of it (`r`) and in how
 * many seconds it resets (`t`). Both are Structured Fields lists whose item is the policy's name.
 *
 * @example
 * rateLimitHeaders({ id: "route:artifacts", quota: 60, windowSeconds: 60, remaining: 0, resetMs: 12_300 });
 * // { "ratelimit-policy": '"route:artifacts";q=60;w=60', ratelimit: '"route:artifacts";r=0;t=13' }
 */
export function rateLimitHeaders(state: {
  readonly id: string;
  readonly quota: number;
  readonly windowSeconds: number;
  readonly remaining: number;
  readonly resetMs: number;
}): { "ratelimit-policy": string; ratelimit: string } {
  const name = structuredString(state.id);
  return {
    "ratelimit-policy": `${name};q=${state.quota};w=${state.windowSeconds}`,
    ratelimit: `${name};r=${Math.max(0, state.remaining)};t=${retryAfterSeconds(state.resetMs)}`,
  };
}

/** Whole seconds until `ms` have passed, at least 1 (a client told 0 would retry at once). */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** An sf-string: printable ASCII in quotes, `"` and `\` escaped (limit ids are config names, but be exact). */
function structuredString(text: string): string {
  return `"${text.replace(/[^\x20-\x7e]/g, "?").replace(/["\\]/g, "\\$&")}"`;
}
