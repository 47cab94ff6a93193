import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compilePolicy, decide, evaluateAccess } from "../../src/policy/index.js";
import type { AccessRule, CompiledPolicy, PolicyTrace, RawPolicy } from "../../src/policy/types.js";

function fixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`../fixtures/claims/${name}`, import.meta.url), "utf8")) as Record<
    string,
    unknown
  >;
}

function policy(name: string, raw: RawPolicy): CompiledPolicy {
  const result = compilePolicy(name, raw, ["github"]);
  expect(result.problems).toEqual([]);
  return result.policy!;
}

const org = policy("org", { claims: { repository_owner_id: 65 } });
const mainOnly = policy("main-only", { claims: { repository_owner_id: 65, ref: "refs/heads/main" } });
const forkEvents = policy("fork-events", {
  claims: { repository_owner_id: 65, event_name: ["pull_request_target", "workflow_run"] },
});
const tags = policy("tags", { claims: { repository_owner_id: 65, ref: { glob: "refs/tags/*" } } });

const pushMain = { issuer: "github", claims: fixture("push-main.json") };
const prTarget = { issuer: "github", claims: fixture("pull-request-target.json") };
const lookalike = { issuer: "github", claims: fixture("renamed-org-lookalike.json") };

describe("evaluateAccess", () => {
  it("allows by the first matching allow policy and traces every policy", () => {
    const decision = evaluateAccess({ allow: [tags, mainOnly, org], deny: [forkEvents] }, pushMain);
    expect(decision.allow).toBe(true);
    expect(decision.reason).toBe("allowed-by-policy");
    expect(decision.policy).toBe("main-only");
    expect(decision.traces.deny.map((t) => [t.policy, t.matched])).toEqual([["fork-events", false]]);
    expect(decision.traces.allow.map((t) => [t.policy, t.matched])).toEqual([
      ["tags", false],
      ["main-only", true],
      ["org", true],
    ]);
  });

  it("lets a matching deny policy win over every allow policy", () => {
    const decision = evaluateAccess({ allow: [org, mainOnly], deny: [tags, forkEvents] }, prTarget);
    expect(decision).toMatchObject({ allow: false, reason: "denied-by-policy", policy: "fork-events" });
    expect(decision.traces.allow.every((t) => t.matched)).toBe(true);
  });

  it("refuses by default", () => {
    expect(evaluateAccess({ allow: [], deny: [] }, pushMain)).toEqual({
      allow: false,
      reason: "no-policy-matched",
      traces: { deny: [], allow: [] },
    });
    const decision = evaluateAccess({ allow: [org], deny: [] }, lookalike);
    expect(decision).toMatchObject({ allow: false, reason: "no-policy-matched" });
    expect(decision.policy).toBeUndefined();
    expect(decision.traces.allow[0]!.conditions[0]).toEqual({
      claim: "repository_owner_id",
      expected: '"65"',
      found: "999001",
      ok: false,
      reason: "claim-mismatch",
    });
  });

  it("is pure: the same identity gives the same decision, and claims are not touched", () => {
    const claims = Object.freeze({ ...fixture("push-main.json") });
    const rule: AccessRule = { allow: [mainOnly], deny: [forkEvents] };
    const first = evaluateAccess(rule, { issuer: "github", claims });
    expect(evaluateAccess(rule, { issuer: "github", claims })).toEqual(first);
  });
});

describe("decide", () => {
  const rules: AccessRule[] = [
    { allow: [], deny: [] },
    { allow: [org], deny: [] },
    { allow: [tags, mainOnly, org], deny: [forkEvents] },
    { allow: [org, mainOnly], deny: [tags, forkEvents] },
    { allow: [tags], deny: [org] },
  ];
  const identities = [
    pushMain,
    prTarget,
    lookalike,
    { issuer: "github", claims: fixture("tag-release.json") },
    { issuer: "other", claims: fixture("push-main.json") },
    { issuer: "github", claims: {} },
  ];

  it("agrees with evaluateAccess on every rule and identity", () => {
    for (const rule of rules) {
      for (const identity of identities) {
        const { traces: _traces, ...summary } = evaluateAccess(rule, identity);
        expect(decide(rule, identity)).toEqual(summary);
      }
    }
  });

  it("falls back to evaluate for policies without a fast path", () => {
    const trace: PolicyTrace = { policy: "double", matched: true, issuerOk: true, conditions: [] };
    const double: CompiledPolicy = {
      name: "double",
      issuer: "github",
      claimNames: [],
      evaluate: () => trace,
    };
    expect(decide({ allow: [double], deny: [] }, pushMain)).toEqual({
      allow: true,
      reason: "allowed-by-policy",
      policy: "double",
    });
    expect(decide({ allow: [org], deny: [double] }, pushMain)).toEqual({
      allow: false,
      reason: "denied-by-policy",
      policy: "double",
    });
  });
});
