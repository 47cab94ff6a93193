import { type CompiledMatcher, compileMatcher, pathSegment, type ValueTest } from "./matchers.js";
import { isExactValue, ownerClaims, pinsOwner, pinsServiceAccounts } from "./owner-pinning.js";
import type {
  CallerIdentity,
  CompiledPolicy,
  ConditionTrace,
  PolicyProblem,
  PolicyTrace,
  RawPolicy,
} from "./types.js";

interface Condition {
  readonly claim: string;
  readonly expected: string;
  readonly test: ValueTest;
}

/**
 * Compiles one policy (`policies.<name>` of the configuration) into a frozen {@link CompiledPolicy}.
 * Every problem is collected before returning, each with its config path: malformed matchers, invalid
 * RE2 regexes (with the engine's message), an unknown or missing issuer, an empty claim set, and a
 * policy that pins no owner. `policy` is set only when `problems` is empty.
 *
 * Conditions run in the order of their claim names, sorted, so traces read the same whatever the key
 * order of the YAML.
 *
 * @param name - the policy's name, as under `policies:`.
 * @param raw - the policy as written (`issuer`, `claims`); defensive against untyped YAML input.
 * @param issuerNames - the names of the configured issuers.
 * @param options - `denyOnly`: the policy appears only in `deny` lists. Such a policy narrows access and
 *   can never admit anyone, so it need not pin an owner (`deny: [fork-events]` refusing
 *   `pull_request_target` everywhere is a sound rule).
 * @example
 * const { policy, problems } = compilePolicy(
 *   "main-deploys",
 *   { claims: { repository_owner_id: 5678, ref: "refs/heads/main" } },
 *   ["github"],
 * );
 */
export function compilePolicy(
  name: string,
  raw: RawPolicy,
  issuerNames: readonly string[],
  options: { denyOnly?: boolean } = {},
): { policy?: CompiledPolicy; problems: PolicyProblem[] } {
  const base = `policies${pathSegment(name)}`;
  const problems: PolicyProblem[] = [];
  const input: unknown = raw;
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    problems.push({
      path: base,
      message: "a policy must be a mapping with `claims` (and optionally `issuer`)",
    });
    return { problems };
  }

  const issuer = resolveIssuer((input as { issuer?: unknown }).issuer, issuerNames, base, problems);
  const claims: unknown = (input as { claims?: unknown }).claims;
  const claimsPath = `${base}.claims`;
  const conditions: Condition[] = [];

  if (
    typeof claims !== "object" ||
    claims === null ||
    Array.isArray(claims) ||
    Object.keys(claims).length === 0
  ) {
    problems.push({
      path: claimsPath,
      message:
        "a policy needs at least one claim condition; start with the owner, e.g. `repository_owner_id: <id>`",
    });
  } else {
    const matchers = new Map<string, CompiledMatcher>();
    let ownerMatcherBroken = false;
    for (const claim of Object.keys(claims).sort()) {
      const claimPath = `${claimsPath}${pathSegment(claim)}`;
      if (claim === "") {
        problems.push({ path: claimPath, message: "a claim name cannot be empty" });
        continue;
      }
      const matcher = compileMatcher((claims as Record<string, unknown>)[claim], claimPath, problems);
      if (matcher === undefined) {
        if (claim === "sub" || (ownerClaims as readonly string[]).includes(claim)) ownerMatcherBroken = true;
        continue;
      }
      matchers.set(claim, matcher);
      conditions.push(Object.freeze({ claim, expected: matcher.expected, test: matcher.test }));
    }
    // A broken owner matcher is already reported; judging pinning without it would report it twice.
    if (options.denyOnly !== true && !ownerMatcherBroken && !pinsAnOwner(matchers)) {
      problems.push({ path: claimsPath, message: noOwnerMessage(name) });
    }
  }

  if (problems.length > 0 || issuer === undefined) return { problems };
  return { policy: createCompiledPolicy(name, issuer, conditions), problems };
}

function resolveIssuer(
  raw: unknown,
  issuerNames: readonly string[],
  base: string,
  problems: PolicyProblem[],
): string | undefined {
  const known = issuerNames.map((issuer) => JSON.stringify(issuer)).join(", ");
  if (raw === undefined || raw === null) {
    if (issuerNames.length === 1) return issuerNames[0];
    problems.push(
      issuerNames.length === 0
        ? { path: `${base}.issuer`, message: "no issuer is configured; add one under `issuers:`" }
        : {
            path: `${base}.issuer`,
            message: `several issuers are configured (${known}); name the one this policy trusts with \`issuer: <name>\``,
          },
    );
    return undefined;
  }
  if (typeof raw !== "string" || !issuerNames.includes(raw)) {
    problems.push({
      path: `${base}.issuer`,
      message: `unknown issuer ${JSON.stringify(raw)}; expected one of the configured issuers: ${known || "(none)"}`,
    });
    return undefined;
  }
  return raw;
}

function pinsAnOwner(matchers: ReadonlyMap<string, CompiledMatcher>): boolean {
  for (const claim of ownerClaims) {
    const matcher = matchers.get(claim);
    if (matcher !== undefined && pinsOwner(claim, matcher.node)) return true;
  }
  const sub = matchers.get("sub");
  return sub !== undefined && (isExactValue(sub.node) || pinsServiceAccounts(sub.node));
}

function noOwnerMessage(name: string): string {
  return (
    `policy "${name}" pins no owner: one issuer serves every repository on GitHub, so this policy would ` +
    "admit workflows of anyone's repositories. Add `repository_owner_id: <id>` (your organisation's or " +
    "user's numeric id, e.g. from `gh api orgs/<org> --jq .id`), or constrain repository_owner, " +
    "repository_id, repository, enterprise_id or enterprise to exact values, or sub to an exact subject. " +
    "For a Kubernetes service-account token, pin sub: system:serviceaccount:NAMESPACE:NAME (or " +
    '`{glob: "system:serviceaccount:NAMESPACE:*"}` for a namespace). ' +
    'A glob or regex counts only when its owner part is literal (`{glob: "octo-org/*"}`); `not` never does.'
  );
}

function createCompiledPolicy(
  name: string,
  issuer: string,
  conditions: readonly Condition[],
): CompiledPolicy {
  const frozenConditions = Object.freeze([...conditions]);
  const claimNames = Object.freeze(frozenConditions.map((condition) => condition.claim));

  /** Fast path: the same decision as `evaluate(identity).matched`, without building a trace. */
  const matches = (identity: CallerIdentity): boolean => {
    if (identity.issuer !== issuer) return false;
    const claims = identity.claims;
    for (const condition of frozenConditions) {
      const value = ownClaim(claims, condition.claim);
      let text: string;
      if (typeof value === "string") text = value;
      else if (typeof value === "number" || typeof value === "boolean") text = String(value);
      else return false;
      if (!condition.test(text)) return false;
    }
    return true;
  };

  const evaluate = (identity: CallerIdentity): PolicyTrace => {
    if (identity.issuer !== issuer) return { policy: name, matched: false, issuerOk: false, conditions: [] };
    const claims = identity.claims;
    const traces: ConditionTrace[] = [];
    let matched = true;
    for (const condition of frozenConditions) {
      const trace = traceCondition(condition, ownClaim(claims, condition.claim));
      if (!trace.ok) matched = false;
      traces.push(trace);
    }
    return { policy: name, matched, issuerOk: true, conditions: traces };
  };

  return Object.freeze({ name, issuer, claimNames, evaluate, matches });
}

function traceCondition(condition: Condition, value: unknown): ConditionTrace {
  const { claim, expected } = condition;
  if (value === undefined) return { claim, expected, found: undefined, ok: false, reason: "claim-missing" };
  let text: string;
  if (typeof value === "string") text = value;
  else if (typeof value === "number" || typeof value === "boolean") text = String(value);
  else return { claim, expected, found: jsonText(value), ok: false, reason: "claim-not-scalar" };
  const ok = condition.test(text);
  return { claim, expected, found: text, ok, reason: ok ? "claim-ok" : "claim-mismatch" };
}

/** Own properties only: a claim named `constructor` must not find `Object.prototype.constructor`. */
function ownClaim(claims: Readonly<Record<string, unknown>>, claim: string): unknown {
  return Object.hasOwn(claims, claim) ? claims[claim] : undefined;
}

function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return "<unserializable>";
  }
}
