import { parseDuration } from "../lib/duration.js";
import type { RawAuthFailures, RawConcurrency, RawRateLimit, RawSingleUse } from "./limits-schema.js";
import type {
  AuthFailureSpec,
  ConcurrencySpec,
  RateLimitKey,
  RateLimitSpec,
  SingleUseSpec,
} from "./types.js";

/** The `key` that counts per client address rather than per claim. */
export const clientIpKey = "client_ip";

/**
 * Claims every GitHub Actions OIDC token carries (and the registered JWT claims), which a rate limit may
 * count by without a policy naming them. Other issuers' claims are accepted when a policy of the limited
 * resource names them.
 */
export const knownClaimNames: ReadonlySet<string> = new Set([
  "iss",
  "sub",
  "jti",
  "actor",
  "actor_id",
  "base_ref",
  "environment",
  "event_name",
  "head_ref",
  "job_workflow_ref",
  "job_workflow_sha",
  "ref",
  "ref_protected",
  "ref_type",
  "repository",
  "repository_id",
  "repository_owner",
  "repository_owner_id",
  "repository_visibility",
  "run_attempt",
  "run_id",
  "run_number",
  "runner_environment",
  "sha",
  "workflow",
  "workflow_ref",
  "workflow_sha",
]);

/**
 * Compiles one `rate_limit` (the schema has checked every field) for the route, tunnel or grant `id`.
 *
 * @example
 * compileRateLimit({ requests: 60, per: "1m", key: "repository_id" }, "route:artifacts");
 * // { id: "route:artifacts", requests: 60, perSeconds: 60, burst: 0, key: { kind: "claim", claim: "repository_id" }, onStoreError: "allow" }
 */
export function compileRateLimit(raw: RawRateLimit, id: string): RateLimitSpec {
  return {
    id,
    requests: raw.requests,
    perSeconds: secondsOf(raw.per),
    burst: raw.burst ?? 0,
    key: limitKeyOf(raw.key),
    onStoreError: raw.on_store_error ?? "allow",
  };
}

/**
 * Compiles one `concurrency` for the tunnel `id` (`tunnel:NAME`).
 *
 * @example
 * compileConcurrency({ max: 20, key: "repository_id" }, "tunnel:db");
 * // { id: "tunnel:db:concurrency", max: 20, key: { kind: "claim", claim: "repository_id" }, onStoreError: "allow" }
 */
export function compileConcurrency(raw: RawConcurrency, id: string): ConcurrencySpec {
  return {
    id: `${id}:concurrency`,
    max: raw.max,
    key: limitKeyOf(raw.key),
    onStoreError: raw.on_store_error ?? "allow",
  };
}

function limitKeyOf(key: string): RateLimitKey {
  return key === clientIpKey ? { kind: "client_ip" } : { kind: "claim", claim: key };
}

/** `single_use` compiled: `undefined` where it is off. */
export function compileSingleUse(raw: RawSingleUse | undefined): SingleUseSpec | undefined {
  if (raw === undefined || raw === false) return undefined;
  return { onStoreError: raw === true ? "deny" : (raw.on_store_error ?? "deny") };
}

/** `listen.auth_failures` compiled: `undefined` where it is off. */
export function compileAuthFailures(raw: RawAuthFailures | undefined): AuthFailureSpec | undefined {
  if (raw === undefined) return undefined;
  return { max: raw.max, perSeconds: secondsOf(raw.per), onStoreError: raw.on_store_error ?? "allow" };
}

function secondsOf(text: string): number {
  return Math.max(1, Math.round((parseDuration(text) ?? 1000) / 1000));
}
