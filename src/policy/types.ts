/**
 * Contracts of the trust policy. `policy/` does no I/O: it compiles raw YAML values into frozen
 * {@link CompiledPolicy} objects once, and evaluates them purely against verified claims.
 */

/** A matcher as written in YAML (before compilation). */
export type RawMatcher =
  | string
  | number
  | boolean
  | RawMatcher[]
  | { glob: string }
  | { regex: string }
  | { not: RawMatcher };

/** A policy as written in YAML under `policies.<name>`. */
export interface RawPolicy {
  /** Name of a configured issuer; optional when only one issuer is configured. */
  issuer?: string;
  claims: Record<string, RawMatcher>;
}

/** The outcome of one claim condition, rendered by `serve` (audit), `explain` and tests alike. */
export interface ConditionTrace {
  claim: string;
  /** Human form of the matcher, e.g. `"refs/heads/main"`, `glob "octo-org/*"`, `not any of [a, b]`. */
  expected: string;
  /** The claim value as found in the token (JSON text for non-strings), or `undefined` when missing. */
  found: string | undefined;
  ok: boolean;
  /**
   * `claim-ok`: matched. `claim-missing`: the token lacks the claim (never matches, even under `not`).
   * `claim-mismatch`: present but different. `claim-not-scalar`: an array/object claim, which never
   * equals a scalar.
   */
  reason: "claim-ok" | "claim-missing" | "claim-mismatch" | "claim-not-scalar";
}

/** The outcome of one policy against one identity. */
export interface PolicyTrace {
  policy: string;
  matched: boolean;
  /** False when the token came from another issuer than the policy's; conditions are then not evaluated. */
  issuerOk: boolean;
  conditions: ConditionTrace[];
}

/** Identity of a caller: the configured issuer *name* that verified the token, and its claims. */
export interface CallerIdentity {
  issuer: string;
  claims: Readonly<Record<string, unknown>>;
}

/** A compiled, frozen policy. `evaluate` is pure. */
export interface CompiledPolicy {
  readonly name: string;
  readonly issuer: string;
  readonly claimNames: readonly string[];
  evaluate(identity: CallerIdentity): PolicyTrace;
  /**
   * Fast path: exactly `evaluate(identity).matched`, without building a trace. Optional so that hand-made
   * policies (test doubles) need not implement it; `decide` falls back to `evaluate`.
   */
  matches?(identity: CallerIdentity): boolean;
}

/** An `allow`/`deny` pair of compiled policies, as routes, tunnels and broker grants have. */
export interface AccessRule {
  readonly allow: readonly CompiledPolicy[];
  readonly deny: readonly CompiledPolicy[];
}

/**
 * The decision for one identity against one {@link AccessRule}. Deny wins: any matching `deny` policy
 * refuses, else any matching `allow` policy admits, else refused (deny by default).
 */
export interface Decision {
  allow: boolean;
  /** `denied-by-policy`, `allowed-by-policy`, `no-policy-matched`. */
  reason: "denied-by-policy" | "allowed-by-policy" | "no-policy-matched";
  /** The policy that decided: the matching deny policy, or the matching allow policy. */
  policy?: string;
  /** Every evaluated policy, deny list first, in order. */
  traces: { deny: PolicyTrace[]; allow: PolicyTrace[] };
}

/** A {@link Decision} without traces: what `decide` returns on the hot path. */
export type DecisionSummary = Pick<Decision, "allow" | "reason" | "policy">;

/** A risky-but-legal configuration finding printed by `tollgate check`. */
export interface PolicyWarning {
  /** Stable id, e.g. `no-numeric-owner-id`, `event-name-open`, `regex-looks-like-glob`, `sub-leading-wildcard`. */
  id: string;
  /** Config path, e.g. `policies.org-ci.claims.repository`. */
  path: string;
  message: string;
}

/** A compile problem; `config/` attaches the YAML line. */
export interface PolicyProblem {
  path: string;
  message: string;
}
