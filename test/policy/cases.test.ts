import { readdirSync, readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { compilePolicy, decide, evaluateAccess } from "../../src/policy/index.js";
import type { AccessRule, CompiledPolicy, PolicyTrace, RawPolicy } from "../../src/policy/types.js";

const casesDir = new URL("./cases/", import.meta.url);
const fixturesDir = new URL("../fixtures/claims/", import.meta.url);

const reason = z.enum(["claim-ok", "claim-missing", "claim-mismatch", "claim-not-scalar"]);
const rawPolicy = z
  .object({ issuer: z.string().optional(), claims: z.record(z.string(), z.unknown()) })
  .strict();

const caseSchema = z
  .object({
    description: z.string().min(1),
    policy: rawPolicy,
    deny_policies: z.record(z.string(), rawPolicy).optional(),
    issuers: z.array(z.string()).default(["github"]),
    issuer: z.string().default("github"),
    claims_fixture: z.string().optional(),
    claims_override: z.record(z.string(), z.unknown()).optional(),
    claims_remove: z.array(z.string()).optional(),
    claims: z.record(z.string(), z.unknown()).optional(),
    expect: z.enum(["allow", "deny"]),
    decision_reason: z.enum(["allowed-by-policy", "denied-by-policy", "no-policy-matched"]).optional(),
    issuer_ok: z.boolean().default(true),
    reasons: z.record(z.string(), reason),
    deny_reasons: z.record(z.string(), z.record(z.string(), reason)).optional(),
    twin: z.string().optional(),
  })
  .strict()
  .refine((c) => (c.claims === undefined) !== (c.claims_fixture === undefined), {
    message: "give exactly one of claims or claims_fixture",
  });

type PolicyCase = z.infer<typeof caseSchema>;

const files = readdirSync(casesDir)
  .filter((file) => file.endsWith(".yaml"))
  .sort();
const cases = new Map<string, PolicyCase>(files.map((file) => [file, loadCase(file)]));

function loadCase(file: string): PolicyCase {
  try {
    return caseSchema.parse(parse(readFileSync(new URL(file, casesDir), "utf8")));
  } catch (error) {
    throw new Error(`test/policy/cases/${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function claimsOf(policyCase: PolicyCase): Record<string, unknown> {
  const base =
    policyCase.claims ??
    (JSON.parse(readFileSync(new URL(policyCase.claims_fixture!, fixturesDir), "utf8")) as Record<
      string,
      unknown
    >);
  const claims: Record<string, unknown> = { ...base, ...policyCase.claims_override };
  for (const name of policyCase.claims_remove ?? []) {
    expect(Object.hasOwn(claims, name), `claims_remove names an absent claim: ${name}`).toBe(true);
    delete claims[name];
  }
  return claims;
}

function compileOrFail(
  name: string,
  raw: RawPolicy,
  issuers: readonly string[],
  options: { denyOnly?: boolean } = {},
): CompiledPolicy {
  const { policy, problems } = compilePolicy(name, raw, issuers, options);
  expect(problems).toEqual([]);
  return policy!;
}

function reasonsOf(trace: PolicyTrace): Record<string, string> {
  return Object.fromEntries(trace.conditions.map((condition) => [condition.claim, condition.reason]));
}

describe("policy cases", () => {
  it("has cases to run", () => {
    expect(files.length).toBeGreaterThanOrEqual(40);
  });

  it.each(files)("%s", (file) => {
    const policyCase = cases.get(file)!;
    const underTest = compileOrFail("under-test", policyCase.policy as RawPolicy, policyCase.issuers);
    // As in compileConfig: a policy named only in `deny` lists need not pin an owner.
    const denyPolicies = Object.entries(policyCase.deny_policies ?? {}).map(([name, raw]) =>
      compileOrFail(name, raw as RawPolicy, policyCase.issuers, { denyOnly: true }),
    );
    const rule: AccessRule = { allow: [underTest], deny: denyPolicies };
    const identity = { issuer: policyCase.issuer, claims: claimsOf(policyCase) };

    const decision = evaluateAccess(rule, identity);
    expect(decision.allow ? "allow" : "deny").toBe(policyCase.expect);
    if (policyCase.decision_reason !== undefined) expect(decision.reason).toBe(policyCase.decision_reason);

    const trace = decision.traces.allow[0]!;
    expect(trace.issuerOk).toBe(policyCase.issuer_ok);
    expect(reasonsOf(trace)).toEqual(policyCase.reasons);
    for (const condition of trace.conditions) {
      expect(condition.ok).toBe(condition.reason === "claim-ok");
    }
    for (const denyTrace of decision.traces.deny) {
      const expected = policyCase.deny_reasons?.[denyTrace.policy];
      expect(expected, `deny_reasons must list ${denyTrace.policy}`).toBeDefined();
      expect(reasonsOf(denyTrace)).toEqual(expected);
    }

    // The fast path must agree with the explained decision, policy by policy and as a whole.
    const { traces: _traces, ...summary } = decision;
    expect(decide(rule, identity)).toEqual(summary);
    for (const policy of [underTest, ...denyPolicies]) {
      expect(policy.matches?.(identity)).toBe(policy.evaluate(identity).matched);
    }
  });

  it.each(files.filter((file) => cases.get(file)!.expect === "allow"))("%s has a deny twin", (file) => {
    const policyCase = cases.get(file)!;
    expect(policyCase.twin, "every allow case names its deny twin with `twin:`").toBeDefined();
    const twin = cases.get(policyCase.twin!);
    expect(twin, `twin ${policyCase.twin} exists`).toBeDefined();
    expect(twin!.expect).toBe("deny");
    // Same policies and issuers: the twin proves this very rule can refuse.
    expect(isDeepStrictEqual(twin!.policy, policyCase.policy)).toBe(true);
    expect(isDeepStrictEqual(twin!.deny_policies, policyCase.deny_policies)).toBe(true);
    expect(twin!.issuers).toEqual(policyCase.issuers);
  });
});
