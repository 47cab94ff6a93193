import type { Decision } from "../policy/types.js";
import { type AuditEvent, identityClaimNames } from "./types.js";

/**
 * The identity block of an audit event from verified claims: the claims named in
 * {@link identityClaimNames}, strings as they are and numbers as text. Anything else (objects, arrays,
 * booleans) is left out: the audit log names a caller, it does not copy the token.
 *
 * Frozen: the audit line encoder serialises an identity object once and reuses the bytes for every line
 * that carries the same object, so an identity must never change after it is made.
 *
 * @example
 * identityFromClaims({ sub: "repo:octo-org/app:ref:refs/heads/main", run_id: 42, aud: "x" });
 * // { sub: "repo:octo-org/app:ref:refs/heads/main", run_id: "42" }
 */
export function identityFromClaims(
  claims: Readonly<Record<string, unknown>>,
): NonNullable<AuditEvent["identity"]> {
  const identity: NonNullable<AuditEvent["identity"]> = {};
  for (const name of identityClaimNames) {
    const value = claims[name];
    if (typeof value === "string") identity[name] = value;
    else if (typeof value === "number" && Number.isFinite(value)) identity[name] = String(value);
  }
  return Object.freeze(identity);
}

/**
 * The conditions that decided a denial, as audit events list them: for a deny-policy match, the
 * conditions of the deny policies that matched; otherwise every allow policy's conditions. Each carries
 * its reason (`claim-ok`, `claim-missing`, `claim-mismatch`, `claim-not-scalar`), as `explain` prints it.
 */
export function deciderConditions(decision: Decision): NonNullable<AuditEvent["conditions"]> {
  const denied = decision.reason === "denied-by-policy";
  const traces = denied ? decision.traces.deny : decision.traces.allow;
  const conditions: NonNullable<AuditEvent["conditions"]> = [];
  for (const trace of traces) {
    if (denied && !trace.matched) continue;
    for (const condition of trace.conditions) {
      conditions.push({
        policy: trace.policy,
        claim: condition.claim,
        expected: condition.expected,
        found: condition.found ?? null,
        ok: condition.ok,
        reason: condition.reason,
      });
    }
  }
  return conditions;
}
