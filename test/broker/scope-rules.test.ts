import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  compileScopePatterns,
  compileScopeTemplate,
  evaluateScopeRules,
  parseScope,
  splitScopeList,
} from "../../src/broker/index.js";
import type { Scope } from "../../src/broker/types.js";
import { compileRules, scopeOf } from "./scope-helpers.js";

interface ScopeCase {
  name: string;
  accepted: string;
  canonical: string;
  kind: Scope["kind"];
  refused: string;
}

interface RuleCase {
  name: string;
  allow: string[];
  deny: string[];
  allowed: string;
  refused: string;
  reason: "scope-denied" | "scope-not-allowed";
  alsoRefusedWithEmptyAllow?: boolean;
}

const load = <T>(file: string): T[] =>
  (JSON.parse(readFileSync(new URL(`./cases/${file}`, import.meta.url), "utf8")) as { cases: T[] }).cases;

describe("scope validation (cases/scopes.json)", () => {
  for (const testCase of load<ScopeCase>("scopes.json")) {
    it(`${testCase.name}: accepts ${JSON.stringify(testCase.accepted)}`, () => {
      expect(parseScope(testCase.accepted)).toMatchObject({
        scope: { text: testCase.canonical, kind: testCase.kind },
      });
    });
    it(`${testCase.name}: refuses ${JSON.stringify(testCase.refused)} without repeating it`, () => {
      const parsed = parseScope(testCase.refused);
      expect(parsed.problem).toBeDefined();
      if (testCase.refused.length > 3) expect(parsed.problem).not.toContain(testCase.refused);
    });
  }

  it("refuses what is not a string", () => {
    for (const value of [42, null, undefined, ["octo-org"], { scope: "octo-org" }]) {
      expect(parseScope(value).problem).toBe("scope must be a string");
    }
  });
});

describe("scope lists (cases/scope-rules.json)", () => {
  for (const testCase of load<RuleCase>("scope-rules.json")) {
    const compiled = compileRules(testCase.allow, testCase.deny);
    it(`${testCase.name}: allows ${testCase.allowed}`, () => {
      expect(evaluateScopeRules(compiled, scopeOf(testCase.allowed))).toMatchObject({
        allowed: true,
        reason: "scope-allowed",
      });
    });
    it(`${testCase.name}: refuses ${testCase.refused} (${testCase.reason})`, () => {
      expect(evaluateScopeRules(compiled, scopeOf(testCase.refused))).toMatchObject({
        allowed: false,
        reason: testCase.reason,
      });
    });
    if (testCase.alsoRefusedWithEmptyAllow) {
      it(`${testCase.name}: an empty allow list refuses ${testCase.allowed} too`, () => {
        expect(evaluateScopeRules(compileRules([], testCase.deny), scopeOf(testCase.allowed))).toEqual({
          allowed: false,
          reason: "scope-not-allowed",
          detail: "allowed_scopes is empty, so no scope is allowed",
        });
      });
    }
  }

  it("names the deciding entry", () => {
    const compiled = compileRules(["match:octo-org/.*"], ["octo-org/payroll"]);
    expect(evaluateScopeRules(compiled, scopeOf("octo-org/payroll")).detail).toBe(
      'denied_scopes entry "octo-org/payroll"',
    );
    expect(evaluateScopeRules(compiled, scopeOf("octo-org/app")).detail).toBe(
      'allowed_scopes entry "match:octo-org/.*"',
    );
  });
});

describe("scope list parsing and compilation", () => {
  it("splits on ';', trims, and drops blanks, as github-runner-token-proxy does", () => {
    expect(splitScopeList(" my-org/my-repo1 ;my-org/my-repo2;; ")).toEqual([
      "my-org/my-repo1",
      "my-org/my-repo2",
    ]);
    expect(splitScopeList(";")).toEqual([]);
  });

  it("refuses an invalid RE2 pattern and suggests the fix", () => {
    const { problems, patterns } = compileScopePatterns(["match:*"], "ALLOWED_SCOPES");
    expect(patterns).toEqual([]);
    expect(problems).toEqual([
      expect.objectContaining({
        index: 0,
        message: expect.stringContaining("not a valid RE2"),
        fix: expect.stringContaining("match:.*"),
      }),
    ]);
  });

  it("accepts the valid twin of that pattern", () => {
    expect(compileScopePatterns(["match:.*"], "ALLOWED_SCOPES")).toMatchObject({
      problems: [],
      warnings: [],
    });
  });

  it("refuses a literal that is not a scope, and the RE2-only syntax that JavaScript would accept", () => {
    expect(compileScopePatterns(["octo-org/*"], "allowed_scopes").problems).toHaveLength(1);
    expect(compileScopePatterns(["match:(?<=a)b"], "allowed_scopes").problems).toHaveLength(1);
    expect(compileScopePatterns(["match:"], "allowed_scopes").problems).toHaveLength(1);
  });

  it("warns about glob-looking patterns with the regex that was probably meant", () => {
    const { warnings } = compileScopePatterns(["match:my-org/*", "match:my-*"], "allowed_scopes");
    expect(warnings.map((warning) => [warning.id, warning.index])).toEqual([
      ["scope-pattern-looks-like-glob", 0],
      ["scope-pattern-looks-like-glob", 1],
    ]);
    expect(warnings[0]!.message).toContain("match:my-org/.*");
    expect(warnings[1]!.message).toContain("match:my-.*");
  });

  it("warns about patterns spelling a .git suffix, which the canonical scope never has", () => {
    const sources = [
      "match:octo-org/payroll\\.git",
      "match:octo-org/.*[.]GIT$",
      "match:octo-org/payroll.git",
    ];
    const { warnings } = compileScopePatterns(sources, "denied_scopes");
    expect(warnings.map((warning) => [warning.id, warning.index])).toEqual([
      ["scope-pattern-git-suffix", 0],
      ["scope-pattern-git-suffix", 1],
      ["scope-pattern-git-suffix", 2],
    ]);
    expect(warnings[0]!.message).toContain("Did you mean match:octo-org/payroll?");
    expect(warnings[1]!.message).toContain("Did you mean match:octo-org/.*?");
    // The twins: patterns that match the canonical scope, with or without an optional suffix, are quiet.
    expect(
      compileScopePatterns(["match:octo-org/legit", "match:octo-org/payroll(\\.git)?"], "denied_scopes")
        .warnings,
    ).toEqual([]);
  });

  it("does not warn about real regexes", () => {
    expect(
      compileScopePatterns(["match:octo-org/.*", "match:a[0-9]*", "match:(x|y)*"], "allowed_scopes").warnings,
    ).toEqual([]);
  });

  it("explains anchoring for lists from the environment, where reference deployments' values arrive", () => {
    const fromEnv = compileScopePatterns(["match:payroll"], "DENIED_SCOPES").warnings;
    expect(fromEnv).toEqual([expect.objectContaining({ id: "scope-pattern-anchored" })]);
    expect(fromEnv[0]!.message).toContain("match:.*payroll.*");
    expect(fromEnv[0]!.message).toContain("refuses fewer scopes");
    // The same entry in the configuration file is tollgate syntax already: no warning.
    expect(compileScopePatterns(["match:payroll"], "denied_scopes").warnings).toEqual([]);
    // Patterns whose meaning does not change are not flagged.
    expect(compileScopePatterns(["match:.*", "match:^octo-org/app$"], "ALLOWED_SCOPES").warnings).toEqual([]);
  });
});

describe("grant scope templates", () => {
  const claims = { repository: "Octo-Org/Octo-Repo", repository_owner: "octo-org", run_id: 42 };

  it("{repository} names only the caller's own repository", () => {
    const { template } = compileScopeTemplate("{repository}");
    expect(template!.match(scopeOf("octo-org/octo-repo"), claims)).toEqual({
      ok: true,
      expected: "octo-org/octo-repo",
    });
    expect(template!.match(scopeOf("octo-org/payroll"), claims).ok).toBe(false);
  });

  it("{repository_owner} names only the caller's organisation, not its repositories", () => {
    const { template } = compileScopeTemplate("{repository_owner}");
    expect(template!.match(scopeOf("octo-org"), claims).ok).toBe(true);
    expect(template!.match(scopeOf("octo-org/octo-repo"), claims).ok).toBe(false);
  });

  it("a missing claim never matches", () => {
    const { template } = compileScopeTemplate("{enterprise}");
    expect(template!.match(scopeOf("octo-org"), claims)).toMatchObject({ ok: false });
    expect(template!.match(scopeOf("octo-org"), { ...claims, enterprise: "" }).ok).toBe(false);
  });

  it("in match: templates a claim value is quoted, so it cannot add regex syntax", () => {
    const { template } = compileScopeTemplate("match:{repository_owner}/runner-.*");
    expect(template!.match(scopeOf("octo-org/runner-1"), claims).ok).toBe(true);
    expect(template!.match(scopeOf("octo-org/runner-1"), { repository_owner: ".*" }).ok).toBe(false);
    expect(template!.match(scopeOf("xocto-org/runner-1"), claims).ok).toBe(false);
  });

  it("a claim value that does not make a valid scope never matches", () => {
    const { template } = compileScopeTemplate("{repository}");
    expect(template!.match(scopeOf("octo-org/x"), { repository: "octo-org/../x" }).ok).toBe(false);
    expect(template!.match(scopeOf("octo-org/x"), { repository: "octo-org/x" }).ok).toBe(true);
  });

  it("refuses templates that can never be a scope", () => {
    expect(compileScopeTemplate("{repository}/extra/more").problem).toBeDefined();
    expect(compileScopeTemplate("match:{repository}(").problem).toBeDefined();
    expect(compileScopeTemplate("octo-org/{repository}").problem).toBeUndefined();
  });
});
