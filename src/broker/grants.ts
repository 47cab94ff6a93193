import { RE2JS } from "re2js";
import type { RateLimitSpec, SingleUseSpec } from "../limits/types.js";
import { decide, evaluateAccess } from "../policy/index.js";
import type { AccessRule, CallerIdentity } from "../policy/types.js";
import { parseScope, scopeFormHint } from "./scope.js";
import { compileWholeScopeRegex, matchPrefix } from "./scope-rules.js";
import type {
  BrokerAction,
  CompiledGrant,
  GrantDecision,
  GrantTrace,
  Scope,
  ScopeTemplate,
} from "./types.js";

/** `{claim_name}` inside a grant scope. A regex repetition such as `{2,3}` never looks like this. */
const placeholder = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Compiled per-caller regexes kept per template; beyond this many the cache starts over. */
const maxCachedRegexes = 512;

/**
 * Compiles one grant scope: a literal scope or `match:<RE2>`, in which `{claim}` stands for the caller's
 * claim value (`{repository}`, `{repository_owner}`). In a `match:` template the value is inserted quoted,
 * so a claim can never add regex syntax; in a literal the result must again be a valid scope.
 *
 * @example
 * const { template } = compileScopeTemplate("{repository}");
 * template!.match(parseScope("octo-org/app").scope!, { repository: "Octo-Org/App" }).ok; // true
 */
export function compileScopeTemplate(source: string): {
  template?: ScopeTemplate;
  problem?: string;
  fix?: string;
} {
  const claims = [...source.matchAll(placeholder)].map((match) => match[1]!);
  const isMatch = source.startsWith(matchPrefix);
  if (isMatch) {
    const pattern = source.slice(matchPrefix.length);
    // Checked with a sample value; at request time each value is quoted, which cannot break the syntax.
    const sample = compileWholeScopeRegex(pattern.replace(placeholder, "sample"));
    if (sample.problem !== undefined) {
      return {
        problem: `${JSON.stringify(source)} is not a valid RE2 regular expression (${sample.problem})`,
        fix: "see https://github.com/google/re2/wiki/Syntax; the pattern is matched against the whole scope",
      };
    }
    if (claims.length === 0) {
      const re = sample.re;
      return {
        template: { source, claims, match: (scope) => ({ ok: re.testExact(scope.text), expected: source }) },
      };
    }
    const cache = new Map<string, RE2JS>();
    return {
      template: {
        source,
        claims,
        match(scope, values) {
          const filled = fill(pattern, values, (value) => RE2JS.quote(value));
          if (filled === undefined) return { ok: false, expected: `${source} (a claim is missing)` };
          let re = cache.get(filled);
          if (re === undefined) {
            // Cannot fail: the sample compiled, and quoted values are plain literals.
            re = RE2JS.compile(`(?:${filled})`, RE2JS.CASE_INSENSITIVE);
            if (cache.size >= maxCachedRegexes) cache.clear();
            cache.set(filled, re);
          }
          return { ok: re.testExact(scope.text), expected: `${matchPrefix}${filled}` };
        },
      },
    };
  }
  const sample = parseScope(source.replace(placeholder, "sample"));
  if (sample.problem !== undefined) {
    return {
      problem: `${JSON.stringify(source)} is not a scope: ${scopeFormHint}, with claims in braces such as {repository}`,
      fix: `for a regular expression write ${matchPrefix}<RE2>`,
    };
  }
  if (claims.length === 0) {
    const expected = sample.scope.text;
    return { template: { source, claims, match: (scope) => ({ ok: scope.text === expected, expected }) } };
  }
  return {
    template: {
      source,
      claims,
      match(scope, values) {
        const filled = fill(source, values, (value) => value);
        if (filled === undefined) return { ok: false, expected: `${source} (a claim is missing)` };
        const parsed = parseScope(filled);
        // A claim value that does not make a valid scope (a custom claim with odd characters) never matches.
        if (parsed.problem !== undefined) return { ok: false, expected: `${filled} (not a valid scope)` };
        return { ok: parsed.scope.text === scope.text, expected: parsed.scope.text };
      },
    },
  };
}

/** Replaces every `{claim}`; `undefined` when a claim is missing or not a string or number. */
function fill(
  text: string,
  values: Readonly<Record<string, unknown>>,
  encode: (value: string) => string,
): string | undefined {
  let missing = false;
  const filled = text.replace(placeholder, (_whole, name: string) => {
    const value = values[name];
    if (typeof value === "string" && value.length > 0) return encode(value);
    if (typeof value === "number" && Number.isFinite(value)) return encode(String(value));
    missing = true;
    return "";
  });
  return missing ? undefined : filled;
}

/** Builds a compiled grant from its parts (resolved policies come from the configuration compiler). */
export function createGrant(
  index: number,
  access: AccessRule,
  actions: readonly BrokerAction[],
  scopes: readonly ScopeTemplate[],
  limits: { rateLimit?: RateLimitSpec; singleUse?: SingleUseSpec } = {},
): CompiledGrant {
  return {
    index,
    access,
    actions: [...new Set(actions)],
    scopes,
    ...(limits.rateLimit === undefined ? {} : { rateLimit: limits.rateLimit }),
    ...(limits.singleUse === undefined ? {} : { singleUse: limits.singleUse }),
  };
}

/**
 * Whether any grant lets this caller use `action` on `scope`: the grant must list the action, its policies
 * must admit the caller (deny wins, as everywhere), and one of its scopes must name this scope for the
 * caller's claims. The global scope lists are checked before this, by the caller.
 *
 * @example
 * evaluateGrants(broker.grants, "register", scope, { issuer: "github", claims });
 * // { allowed: true, reason: "allowed-by-grant", grant: 0, policy: "org-ci" }
 */
export function evaluateGrants(
  grants: readonly CompiledGrant[],
  action: BrokerAction,
  scope: Scope,
  identity: CallerIdentity,
): GrantDecision {
  let anyForAction = false;
  let anyPolicyMatched = false;
  let refusingPolicy: string | undefined;
  for (const grant of grants) {
    if (!grant.actions.includes(action)) continue;
    anyForAction = true;
    const decision = decide(grant.access, identity);
    if (!decision.allow) {
      if (decision.reason === "denied-by-policy") refusingPolicy ??= decision.policy;
      continue;
    }
    anyPolicyMatched = true;
    if (grant.scopes.some((template) => template.match(scope, identity.claims).ok)) {
      return {
        allowed: true,
        reason: "allowed-by-grant",
        grant: grant.index,
        ...(decision.policy === undefined ? {} : { policy: decision.policy }),
      };
    }
  }
  if (!anyForAction) return { allowed: false, reason: "no-grant-for-action" };
  if (!anyPolicyMatched) {
    return {
      allowed: false,
      reason: "no-policy-matched",
      ...(refusingPolicy === undefined ? {} : { policy: refusingPolicy }),
    };
  }
  return { allowed: false, reason: "no-scope-matched" };
}

/** Every grant's view of one request, for `tollgate explain --broker`. */
export function traceGrants(
  grants: readonly CompiledGrant[],
  action: BrokerAction,
  scope: Scope,
  identity: CallerIdentity,
): GrantTrace[] {
  return grants.map((grant) => {
    const actionListed = grant.actions.includes(action);
    return {
      grant: grant.index,
      actionListed,
      ...(actionListed ? { decision: evaluateAccess(grant.access, identity) } : {}),
      scopes: grant.scopes.map((template) => ({
        source: template.source,
        ...template.match(scope, identity.claims),
      })),
    };
  });
}
