import type { RateLimitSpec, SingleUseSpec } from "../limits/types.js";
/**
 * Contracts of the runner token broker: scopes, scope rules, grants and the compiled `broker` section.
 * Everything here is built once by `compileBroker` and frozen with the configuration; RE2 programs hide
 * inside closures (`test`, `match`) because they keep internal state that cannot be frozen.
 */
import type { AccessRule, CallerIdentity, Decision } from "../policy/types.js";

/** What a caller may ask the broker for (`broker.grants[].actions`). */
export type BrokerAction = "register" | "remove" | "jitconfig";

/** The two reusable runner tokens GitHub mints. */
export type RunnerTokenKind = "registration" | "remove";

/** Where runners are registered: an organisation, a repository or an enterprise. */
export type ScopeKind = "org" | "repo" | "enterprise";

/**
 * A validated scope. `text` is canonical (lower case; GitHub names are case-insensitive, so
 * `Octo-Org/App` and `octo-org/app` are one scope for rules, caching and GitHub alike).
 */
export interface Scope {
  readonly kind: ScopeKind;
  /** `octo-org`, `octo-org/app` or `enterprise:octo-corp`. */
  readonly text: string;
  /** The organisation or user that owns the scope; the enterprise slug for enterprises. */
  readonly owner: string;
  /** The repository name, for `repo` scopes. */
  readonly repo?: string;
}

/** One compiled entry of `allowed_scopes`/`denied_scopes` (or `ALLOWED_SCOPES`/`DENIED_SCOPES`). */
export interface ScopePattern {
  /** The entry as written, e.g. `match:octo-org/.*`. */
  readonly source: string;
  readonly kind: "literal" | "match";
  /** Whether the pattern matches the whole canonical scope text. */
  test(scope: string): boolean;
}

/** Where a scope list came from, for messages: the file or the environment variable that overrides it. */
export type ScopeListOrigin = "allowed_scopes" | "denied_scopes" | "ALLOWED_SCOPES" | "DENIED_SCOPES";

/** The global scope lists: deny wins, and an empty allow list allows nothing. */
export interface ScopeRules {
  readonly allow: readonly ScopePattern[];
  readonly deny: readonly ScopePattern[];
  readonly allowOrigin: ScopeListOrigin;
  readonly denyOrigin: ScopeListOrigin;
}

/** The outcome of the global scope lists for one scope. */
export interface ScopeDecision {
  readonly allowed: boolean;
  readonly reason: "scope-denied" | "scope-allowed" | "scope-not-allowed";
  /** The deciding entry, e.g. `DENIED_SCOPES entry "octo-org/payroll"`. */
  readonly detail: string;
}

/**
 * A grant scope after compilation: a literal or `match:` pattern in which `{claim}` stands for the
 * caller's claim value.
 */
export interface ScopeTemplate {
  readonly source: string;
  /** Claim names used in braces, in order of appearance. */
  readonly claims: readonly string[];
  /**
   * Whether the scope is one this template names for these claims. A missing or non-scalar claim never
   * matches. `expected` is the template with the claims filled in, for `explain`.
   */
  match(scope: Scope, claims: Readonly<Record<string, unknown>>): { ok: boolean; expected: string };
}

/** One `broker.grants[]` entry, compiled. */
export interface CompiledGrant {
  /** Position in `broker.grants`, for messages and audit details. */
  readonly index: number;
  readonly access: AccessRule;
  readonly actions: readonly BrokerAction[];
  readonly scopes: readonly ScopeTemplate[];
  /** `rate_limit`: counts the requests this grant admits, per key. */
  readonly rateLimit?: RateLimitSpec;
  /** `single_use`: a token may be used once for what this grant admits. */
  readonly singleUse?: SingleUseSpec;
}

/** The `broker` section compiled, with `GITHUB_API_URL`, `ALLOWED_SCOPES` and `DENIED_SCOPES` applied. */
export interface CompiledBroker {
  /** `oidc`: a verified token and a grant are required. `none`: the platform in front authorizes. */
  readonly authorization: "oidc" | "none";
  /** GitHub API base URL without a trailing slash. */
  readonly apiUrl: string;
  /** Timeout of one GitHub API call (ms). */
  readonly timeoutMs: number;
  readonly scopes: ScopeRules;
  readonly grants: readonly CompiledGrant[];
}

/** The outcome of the grants for one action, scope and caller. */
export interface GrantDecision {
  readonly allowed: boolean;
  /** `allowed-by-grant`, or why not: no grant for the action, no policy matched, or no scope matched. */
  readonly reason: "allowed-by-grant" | "no-grant-for-action" | "no-policy-matched" | "no-scope-matched";
  /** Index of the admitting grant. */
  readonly grant?: number;
  /** The policy that admitted the caller (or refused it, when a grant's deny list matched). */
  readonly policy?: string;
}

/** Per-grant explanation, rendered by `tollgate explain --broker`. */
export interface GrantTrace {
  readonly grant: number;
  readonly actionListed: boolean;
  /** The grant's policies with per-condition traces; only evaluated when the grant lists the action. */
  readonly decision?: Decision;
  readonly scopes: readonly { source: string; expected: string; ok: boolean }[];
}

/** A minted registration or removal token as the broker answers it. */
export interface RunnerToken {
  readonly token: string;
  /** ISO 8601, as GitHub wrote it. */
  readonly expires_at: string;
}

/** The settings of `POST /jitconfig`, validated. */
export interface JitConfigRequest {
  readonly name: string;
  readonly labels: readonly string[];
  readonly runnerGroupId: number;
  readonly workFolder: string;
}

/** GitHub's answer to `generate-jitconfig`. */
export interface JitConfig {
  readonly runner: Readonly<Record<string, unknown>>;
  readonly encoded_jit_config: string;
}

export type { CallerIdentity };
