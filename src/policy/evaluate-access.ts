import type {
  AccessRule,
  CallerIdentity,
  CompiledPolicy,
  Decision,
  DecisionSummary,
  PolicyTrace,
} from "./types.js";

const noPolicyMatched: DecisionSummary = Object.freeze({ allow: false, reason: "no-policy-matched" });

/**
 * Decides one identity against an `allow`/`deny` rule and explains it: deny policies first (any match
 * refuses, `denied-by-policy`), then allow policies (the first match admits, `allowed-by-policy`), else
 * refused (`no-policy-matched`). Every policy of both lists is evaluated so `explain` and the audit
 * event show the whole picture. Pure; `serve`, `explain` and audit all render this one object.
 *
 * On the hot path prefer {@link decide}, and call this only when the traces are needed.
 *
 * @example
 * const decision = evaluateAccess(route.access, { issuer: "github", claims });
 * if (!decision.allow) audit({ reason: decision.reason, traces: decision.traces });
 */
export function evaluateAccess(rule: AccessRule, identity: CallerIdentity): Decision {
  const deny = rule.deny.map((policy) => policy.evaluate(identity));
  const allow = rule.allow.map((policy) => policy.evaluate(identity));
  const traces = { deny, allow };
  const denied = firstMatched(deny);
  if (denied !== undefined) return { allow: false, reason: "denied-by-policy", policy: denied, traces };
  const allowed = firstMatched(allow);
  if (allowed !== undefined) return { allow: true, reason: "allowed-by-policy", policy: allowed, traces };
  return { allow: false, reason: "no-policy-matched", traces };
}

/**
 * The same decision as {@link evaluateAccess} (allow, reason, deciding policy) without building any
 * trace: the per-request fast path. Policies stop at their first failing condition.
 *
 * @example
 * const { allow, policy } = decide(route.access, identity);
 */
export function decide(rule: AccessRule, identity: CallerIdentity): DecisionSummary {
  for (const policy of rule.deny) {
    if (policyMatches(policy, identity))
      return { allow: false, reason: "denied-by-policy", policy: policy.name };
  }
  for (const policy of rule.allow) {
    if (policyMatches(policy, identity))
      return { allow: true, reason: "allowed-by-policy", policy: policy.name };
  }
  return noPolicyMatched;
}

function policyMatches(policy: CompiledPolicy, identity: CallerIdentity): boolean {
  return policy.matches === undefined ? policy.evaluate(identity).matched : policy.matches(identity);
}

function firstMatched(traces: readonly PolicyTrace[]): string | undefined {
  for (const trace of traces) if (trace.matched) return trace.policy;
  return undefined;
}
