import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../src/policy/index.js";
import type { RawMatcher, RawPolicy } from "../../src/policy/types.js";

const pushMain = {
  repository: "octo-org/octo-repo",
  repository_owner: "octo-org",
  repository_owner_id: "65",
  repository_id: "74",
  ref: "refs/heads/main",
  event_name: "push",
};

function problemsOf(raw: unknown, issuers: readonly string[] = ["github"]) {
  const result = compilePolicy("p", raw as RawPolicy, issuers);
  expect(result.policy).toBeUndefined();
  return result.problems;
}

describe("compilePolicy", () => {
  it("compiles a valid policy into a frozen object with sorted claim names", () => {
    const { policy, problems } = compilePolicy(
      "main-deploys",
      { claims: { ref: "refs/heads/main", repository_owner_id: 65, event_name: { not: ["workflow_run"] } } },
      ["github"],
    );
    expect(problems).toEqual([]);
    expect(policy!.name).toBe("main-deploys");
    expect(policy!.issuer).toBe("github");
    expect(policy!.claimNames).toEqual(["event_name", "ref", "repository_owner_id"]);
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy!.claimNames)).toBe(true);
    const trace = policy!.evaluate({ issuer: "github", claims: pushMain });
    expect(trace.conditions.map((condition) => condition.claim)).toEqual([
      "event_name",
      "ref",
      "repository_owner_id",
    ]);
    expect(trace.conditions[0]).toEqual({
      claim: "event_name",
      expected: 'not any of ["workflow_run"]',
      found: "push",
      ok: true,
      reason: "claim-ok",
    });
  });

  it("evaluates to the same trace whatever the YAML key order", () => {
    const claims = { repository_owner_id: 65, ref: "refs/heads/main" };
    const reversed = { ref: "refs/heads/main", repository_owner_id: 65 };
    const a = compilePolicy("p", { claims }, ["github"]).policy!;
    const b = compilePolicy("p", { claims: reversed }, ["github"]).policy!;
    const identity = { issuer: "github", claims: pushMain };
    expect(a.evaluate(identity)).toEqual(b.evaluate(identity));
  });

  it("renders found values as text: numbers as digits, arrays and objects as JSON", () => {
    const policy = compilePolicy(
      "p",
      { claims: { repository_owner_id: 65, run_number: 10, env: "x", aud: "a" } },
      ["github"],
    ).policy!;
    const trace = policy.evaluate({
      issuer: "github",
      claims: { repository_owner_id: 65, run_number: "10", env: { name: "x" }, aud: ["a", "b"] },
    });
    const found = Object.fromEntries(trace.conditions.map((c) => [c.claim, [c.found, c.reason]]));
    expect(found).toEqual({
      aud: ['["a","b"]', "claim-not-scalar"],
      env: ['{"name":"x"}', "claim-not-scalar"],
      repository_owner_id: ["65", "claim-ok"],
      run_number: ["10", "claim-ok"],
    });
  });

  it("treats inherited properties as missing claims", () => {
    const policy = compilePolicy("p", { claims: { repository_owner_id: 65, constructor: { not: "x" } } }, [
      "github",
    ]).policy!;
    const trace = policy.evaluate({ issuer: "github", claims: { repository_owner_id: "65" } });
    expect(trace.conditions.find((c) => c.claim === "constructor")!.reason).toBe("claim-missing");
    expect(policy.matches!({ issuer: "github", claims: { repository_owner_id: "65" } })).toBe(false);
  });

  it("uses the only configured issuer and checks a named one", () => {
    expect(compilePolicy("p", { claims: { repository_owner_id: 65 } }, ["gh"]).policy!.issuer).toBe("gh");
    expect(
      compilePolicy("p", { issuer: "ent", claims: { repository_owner_id: 65 } }, ["gh", "ent"]).policy!
        .issuer,
    ).toBe("ent");
  });

  it("does not evaluate conditions for a token of another issuer", () => {
    const policy = compilePolicy("p", { issuer: "ent", claims: { repository_owner_id: 65 } }, ["gh", "ent"])
      .policy!;
    expect(policy.evaluate({ issuer: "gh", claims: pushMain })).toEqual({
      policy: "p",
      matched: false,
      issuerOk: false,
      conditions: [],
    });
    expect(policy.evaluate({ issuer: "ent", claims: pushMain }).matched).toBe(true);
  });

  it("collects every problem at once, each with its path", () => {
    const problems = problemsOf(
      {
        issuer: "gitlab",
        claims: {
          repository_owner_id: { glob: "6*", regex: "65" },
          ref: { regex: "refs/heads/(main" },
          job_workflow_ref: { regex: "(?=x)" },
          event_name: [],
          environment: { not: {} },
          actor: { prefix: "octo" },
        },
      },
      ["github", "ent"],
    );
    expect(problems.map((problem) => problem.path).sort()).toEqual([
      "policies.p.claims.actor.prefix",
      "policies.p.claims.environment.not",
      "policies.p.claims.event_name",
      "policies.p.claims.job_workflow_ref.regex",
      "policies.p.claims.ref.regex",
      "policies.p.claims.repository_owner_id",
      "policies.p.issuer",
    ]);
    expect(problems.find((p) => p.path === "policies.p.issuer")!.message).toContain('"github", "ent"');
  });

  it("requires an issuer when several are configured, and one to exist", () => {
    expect(problemsOf({ claims: { repository_owner_id: 65 } }, ["github", "ent"])).toEqual([
      { path: "policies.p.issuer", message: expect.stringContaining("several issuers are configured") },
    ]);
    expect(problemsOf({ claims: { repository_owner_id: 65 } }, [])[0]!.message).toContain(
      "no issuer is configured",
    );
  });

  it("rejects an empty claim set and a policy that is not a mapping", () => {
    expect(problemsOf({ claims: {} })).toEqual([
      { path: "policies.p.claims", message: expect.stringContaining("at least one claim condition") },
    ]);
    expect(problemsOf({})[0]!.path).toBe("policies.p.claims");
    expect(problemsOf(null)[0]!.path).toBe("policies.p");
    expect(problemsOf({ claims: ["repository_owner_id"] })[0]!.path).toBe("policies.p.claims");
  });

  it("writes odd names with brackets in paths", () => {
    expect(problemsOf({ claims: { "a.b": [] } }).map((problem) => problem.path)).toContain(
      'policies.p.claims["a.b"]',
    );
    const problems = compilePolicy("my policy", { claims: {} }, ["github"]).problems;
    expect(problems[0]!.path).toBe('policies["my policy"].claims');
  });
});

describe("owner pinning", () => {
  const pinned: [string, Record<string, RawMatcher>][] = [
    ["a numeric owner id", { repository_owner_id: 65 }],
    ["an owner name", { repository_owner: "octo-org" }],
    ["a list of owner ids", { repository_owner_id: [65, 66] }],
    ["a repository id", { repository_id: "74" }],
    ["a repository", { repository: "octo-org/octo-repo" }],
    ["a repository glob with a literal owner", { repository: { glob: "octo-org/*" } }],
    ["a repository regex with a literal owner", { repository: { regex: "octo-org/(app|lib)-.*" } }],
    ["a repository regex with anchors the user wrote", { repository: { regex: "^octo-org/.*$" } }],
    ["a literal regex on the owner", { repository_owner: { regex: "octo-org" } }],
    ["a glob without wildcards on the owner", { repository_owner: { glob: "octo-org" } }],
    ["an enterprise id", { enterprise_id: 2 }],
    ["an enterprise slug", { enterprise: "octocat-inc" }],
    ["an exact sub", { sub: "repo:octo-org/octo-repo:ref:refs/heads/main" }],
    [
      "a list of exact subs",
      { sub: ["repo:octo-org/a:ref:refs/heads/main", "repo:octo-org/b:environment:prod"] },
    ],
    ["an owner next to open conditions", { ref: { glob: "**" }, repository_owner_id: 65 }],
    ["a Kubernetes service account", { sub: "system:serviceaccount:tollgate:connector" }],
    ["a Kubernetes namespace by glob", { sub: { glob: "system:serviceaccount:tollgate:*" } }],
    ["a Kubernetes namespace by regex", { sub: { regex: "system:serviceaccount:tollgate:conn-.*" } }],
  ];
  it.each(pinned)("accepts %s", (_label, claims) => {
    expect(compilePolicy("p", { claims }, ["github"]).problems).toEqual([]);
  });

  const unpinned: [string, Record<string, RawMatcher>][] = [
    ["no owner claim at all", { ref: "refs/heads/main", event_name: "push" }],
    ["a repository glob over every owner", { repository: { glob: "*/*" } }],
    ["a repository glob with a wildcard owner", { repository: { glob: "octo-*/app" } }],
    ["a repository glob of any run", { repository: { glob: "**" } }],
    ["a repository regex of anything", { repository: { regex: ".*" } }],
    ["a repository regex with a top-level alternation", { repository: { regex: "octo-org/app|.*" } }],
    ["a case-folded repository regex", { repository: { regex: "(?i)octo-org/.*" } }],
    ["a repository regex with an owner class", { repository: { regex: "octo-org[a-z]*/.*" } }],
    ["a repository prefix without the slash", { repository: { regex: "octo-org.*" } }],
    ["an owner glob with a wildcard", { repository_owner: { glob: "octo-*" } }],
    ["an owner regex that is not literal", { repository_owner: { regex: "octo-(org|labs)" } }],
    ["an owner id regex", { repository_owner_id: { regex: "6[0-9]" } }],
    ["a not on the owner", { repository_owner_id: { not: 1 } }],
    ["a list with an open item", { repository_owner: ["octo-org", { glob: "*" }] }],
    ["a sub glob", { sub: { glob: "repo:octo-org/*" } }],
    ["a sub regex", { sub: { regex: "repo:octo-org/.*" } }],
    ["every Kubernetes service account", { sub: { glob: "system:serviceaccount:*" } }],
    ["a Kubernetes namespace by wildcard", { sub: { glob: "system:serviceaccount:tollgate-*:x" } }],
    ["a Kubernetes regex over namespaces", { sub: { regex: "system:serviceaccount:[a-z]+:x" } }],
  ];
  it.each(unpinned)("rejects %s, saying why and how to fix it", (_label, claims) => {
    const problems = problemsOf({ claims });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe("policies.p.claims");
    expect(problems[0]!.message).toContain("one issuer serves every repository on GitHub");
    expect(problems[0]!.message).toContain("repository_owner_id: <id>");
  });

  it("does not report pinning twice when the owner matcher itself is broken", () => {
    expect(problemsOf({ claims: { repository_owner_id: [] } }).map((problem) => problem.path)).toEqual([
      "policies.p.claims.repository_owner_id",
    ]);
  });

  it("still reports missing pinning next to another claim's problem", () => {
    expect(problemsOf({ claims: { ref: { regex: "(" } } }).map((problem) => problem.path)).toEqual([
      "policies.p.claims.ref.regex",
      "policies.p.claims",
    ]);
  });
});

describe("deny-only policies", () => {
  const forkEvents = { claims: { event_name: ["pull_request_target", "workflow_run"] } };

  it("need not pin an owner when used only in deny lists", () => {
    const { policy, problems } = compilePolicy("fork-events", forkEvents, ["github"], { denyOnly: true });
    expect(problems).toEqual([]);
    expect(policy?.name).toBe("fork-events");
  });

  it("must pin an owner as soon as they may admit (the deny twin)", () => {
    const { policy, problems } = compilePolicy("fork-events", forkEvents, ["github"]);
    expect(policy).toBeUndefined();
    expect(problems.map((problem) => problem.message).join()).toMatch(/pins no owner/);
  });
});
