import { z } from "zod";
import { parseDuration } from "../lib/duration.js";
import { duration } from "../lib/schema-fields.js";

/**
 * The abuse controls' configuration fields: `rate_limit` (on a route, a tunnel entry, a broker grant),
 * `single_use` (on a route or a broker grant) and `listen.auth_failures`. The limits feature owns them;
 * the route, tunnel and broker schemas compose them.
 */

/** Longest window a counter may have: counters live in the store for one window. */
const maxWindowMs = 24 * 3_600_000;

function onStoreError(defaultChoice: "allow" | "deny", what: string) {
  return z
    .enum(["allow", "deny"])
    .describe(
      `When the shared store (Redis) cannot answer: \`allow\` lets the request through uncounted, \`deny\` refuses it with 503 TG_STORE_UNAVAILABLE. Default: ${defaultChoice} (${what}).`,
    )
    .meta({ examples: [defaultChoice] });
}

/** A window for a counter: whole seconds (the counters count in seconds), 1s to 1d. */
function window(description: string, example: string) {
  return duration(description, example, { positive: true })
    .refine((text) => (parseDuration(text) ?? 1000) >= 1000, { message: "must be at least 1s" })
    .refine((text) => (parseDuration(text) ?? 1000) < 1000 || (parseDuration(text) ?? 1000) % 1000 === 0, {
      message: "must be a whole number of seconds (counters count in seconds)",
    })
    .refine((text) => (parseDuration(text) ?? 0) <= maxWindowMs, { message: "must be at most 1d" });
}

/** What a limit counts separately: a claim's value, or the client address. */
const limitKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/, {
  message: "must be a claim name (such as repository_id) or client_ip",
});

export const rateLimitSchema = z
  .strictObject({
    requests: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .describe("Requests (for a tunnel: tunnel opens) one key may make per window.")
      .meta({ examples: [60] }),
    per: window("The window the requests are counted in (whole seconds, 1s to 1d).", "1m"),
    key: limitKey
      .describe(
        "What is counted separately: a verified claim (`repository_id`, `repository_owner_id`, `job_workflow_ref`, …), so one repository cannot starve another, or `client_ip` for callers without an identity (counted before the token is checked).",
      )
      .meta({ examples: ["repository_id"] }),
    burst: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .describe(
        "Requests a key may make beyond `requests` once its window is used up: a second allowance that refills once every ten windows, so the long-run rate stays at most requests + burst/10 per window. Default: 0.",
      )
      .meta({ examples: [20] })
      .optional(),
    on_store_error: onStoreError("allow", "a Redis outage does not stop traffic").optional(),
  })
  .describe(
    "How often one key (a claim's value, or the client address) may use this. Over it: 429 TG_RATE_LIMITED with Retry-After, RateLimit-Policy and RateLimit. Counted in `store` (shared by every instance with kind: redis).",
  );

export const concurrencySchema = z
  .strictObject({
    max: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .describe("Tunnels one key may have open at once (on every instance sharing the store together).")
      .meta({ examples: [20] }),
    key: limitKey
      .describe(
        "What is counted separately: a verified claim (`repository_id`, `repository_owner_id`, …), or `client_ip`.",
      )
      .meta({ examples: ["repository_id"] }),
    on_store_error: onStoreError("allow", "a Redis outage does not stop traffic").optional(),
  })
  .describe(
    "How many tunnels one key (a claim's value, or the client address) may have open at once. One more: 429 TG_RATE_LIMITED. With store kind: redis the count is the fleet's; an instance that dies gives its tunnels' slots back within 30s. Default: no limit.",
  );

export const singleUseSchema = z
  .union([
    z.boolean(),
    z.strictObject({
      on_store_error: onStoreError("deny", "a replay cannot be ruled out without the store").optional(),
    }),
  ])
  .describe(
    "Accept a token (by its `iss` and `jti`) once: a second use, on any instance sharing the store, is 401 TG_TOKEN_REPLAYED until the token expires; a token without `jti` is refused. `true`, or a mapping to choose `on_store_error`. Default: false.",
  )
  .meta({ examples: [true] });

export const authFailuresSchema = z
  .strictObject({
    max: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .describe(
        "Failed token checks one client address may cause per window; the one that reaches it blocks the address until the window ends.",
      )
      .meta({ examples: [20] }),
    per: window("The window failures are counted in (whole seconds, 1s to 1d).", "1m"),
    on_store_error: onStoreError("allow", "a Redis outage throttles no one").optional(),
  })
  .describe(
    "Throttle client addresses whose tokens keep failing verification: past `max` failures per window, every request from the address gets 429 TG_RATE_LIMITED before any token work, until the window ends. Missing tokens do not count. Default: off.",
  );

/** `rate_limit` as written. */
export type RawRateLimit = z.output<typeof rateLimitSchema>;
/** `concurrency` as written. */
export type RawConcurrency = z.output<typeof concurrencySchema>;
/** `single_use` as written. */
export type RawSingleUse = z.output<typeof singleUseSchema>;
/** `listen.auth_failures` as written. */
export type RawAuthFailures = z.output<typeof authFailuresSchema>;
