import { describe, expect, it } from "vitest";
import { compileMatcher, describeMatcher, globToRe2 } from "../../src/policy/index.js";
import type { PolicyProblem, RawMatcher } from "../../src/policy/types.js";

function compiled(raw: unknown) {
  const problems: PolicyProblem[] = [];
  const matcher = compileMatcher(raw, "policies.p.claims.c", problems);
  expect(problems).toEqual([]);
  return matcher!;
}

function problemsOf(raw: unknown): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  expect(compileMatcher(raw, "policies.p.claims.c", problems)).toBeUndefined();
  return problems;
}

describe("describeMatcher", () => {
  it.each<[RawMatcher, string]>([
    ["refs/heads/main", '"refs/heads/main"'],
    [123, '"123"'],
    [true, '"true"'],
    [["a", "b"], 'any of ["a", "b"]'],
    [{ glob: "octo-org/*" }, 'glob "octo-org/*"'],
    [{ regex: 'a\\.b"c' }, 'regex "a\\\\.b\\"c"'],
    [{ not: ["a", "b"] }, 'not any of ["a", "b"]'],
    [{ not: { glob: "x*" } }, 'not glob "x*"'],
    [["a", { regex: "b.*" }], 'any of ["a", regex "b.*"]'],
  ])("%j reads %s", (raw, text) => {
    expect(describeMatcher(raw)).toBe(text);
    expect(compiled(raw).expected).toBe(text);
  });

  it("still describes a malformed matcher", () => {
    expect(describeMatcher({ glob: "a", regex: "b" } as unknown as RawMatcher)).toBe("<invalid matcher>");
  });
});

describe("globToRe2", () => {
  it("translates wildcards and quotes the rest", () => {
    expect(globToRe2("refs/heads/release/*")).toBe("refs/heads/release/[^/]*");
    expect(globToRe2("a/**/b")).toBe("a/(?s:.*)/b");
    expect(globToRe2("v?.?")).toBe("v[^/]\\.[^/]");
  });
});

describe("matchers", () => {
  it("compares scalars as strings", () => {
    expect(compiled(123).test("123")).toBe(true);
    expect(compiled(123).test("0123")).toBe(false);
    expect(compiled("123").test("123")).toBe(true);
    expect(compiled(false).test("false")).toBe(true);
    expect(compiled(false).test("")).toBe(false);
  });

  it("matches a list of exact values and a mixed list", () => {
    expect(compiled(["push", "workflow_dispatch"]).test("workflow_dispatch")).toBe(true);
    expect(compiled(["push", "workflow_dispatch"]).test("pull_request")).toBe(false);
    const mixed = compiled(["refs/heads/main", { glob: "refs/tags/v*" }]);
    expect(mixed.test("refs/tags/v1")).toBe(true);
    expect(mixed.test("refs/heads/dev")).toBe(false);
  });

  it("gives globs their own meaning of * ** and ?", () => {
    const star = compiled({ glob: "octo-org/*" });
    expect(star.test("octo-org/app")).toBe(true);
    expect(star.test("octo-org/")).toBe(true);
    expect(star.test("octo-org/a/b")).toBe(false);
    expect(star.test("xocto-org/app")).toBe(false);
    const double = compiled({ glob: "octo-org/**" });
    expect(double.test("octo-org/a/b")).toBe(true);
    expect(double.test("octo-org/a\nb")).toBe(true);
    expect(double.test("octo-orgx/a")).toBe(false);
    const question = compiled({ glob: "v?" });
    expect(question.test("v1")).toBe(true);
    expect(question.test("v😀")).toBe(true);
    expect(question.test("v")).toBe(false);
    expect(question.test("v12")).toBe(false);
    expect(question.test("v/")).toBe(false);
    const literal = compiled({ glob: "a.b\\c" });
    expect(literal.test("a.b\\c")).toBe(true);
    expect(literal.test("axb\\c")).toBe(false);
  });

  it("matches a regex against the whole value only, alternations included", () => {
    const regex = compiled({ regex: "^a|b$" });
    expect(regex.test("a")).toBe(true);
    expect(regex.test("b")).toBe(true);
    expect(regex.test("ab")).toBe(false);
    expect(regex.test("ax")).toBe(false);
    expect(regex.test("xb")).toBe(false);
    const dot = compiled({ regex: "main.*" });
    expect(dot.test("main-x")).toBe(true);
    expect(dot.test("xmain")).toBe(false);
  });

  it("runs a catastrophic-backtracking pattern in linear time (RE2, not RegExp)", () => {
    const regex = compiled({ regex: "(a+)+$" });
    expect(regex.test(`${"a".repeat(50_000)}!`)).toBe(false);
    expect(regex.test("a".repeat(50_000))).toBe(true);
  });

  it("negates with not", () => {
    const not = compiled({ not: ["pull_request_target", "workflow_run"] });
    expect(not.test("push")).toBe(true);
    expect(not.test("workflow_run")).toBe(false);
    expect(compiled({ not: { not: "a" } }).test("a")).toBe(true);
  });
});

describe("matcher problems", () => {
  it("reports a bad regex with the engine's message and a hint", () => {
    const [problem, ...rest] = problemsOf({ regex: "(?<=refs/)heads" });
    expect(rest).toEqual([]);
    expect(problem!.path).toBe("policies.p.claims.c.regex");
    expect(problem!.message).toContain("invalid RE2 regex");
    expect(problem!.message).toContain("error parsing regexp");
    expect(problem!.message).toContain("no lookaround");
  });

  it("does not let the wrapping group repair an unbalanced pattern", () => {
    expect(problemsOf({ regex: "a)|(b" })[0]!.message).toContain("unexpected )");
  });

  it.each<[unknown, string, string]>([
    [{}, "policies.p.claims.c", "empty matcher object"],
    [{ glob: "a", regex: "b" }, "policies.p.claims.c", "exactly one of glob, regex or not"],
    [{ prefix: "a" }, "policies.p.claims.c.prefix", 'unknown matcher key "prefix"'],
    [[], "policies.p.claims.c", "empty list"],
    [{ not: [] }, "policies.p.claims.c.not", "empty list"],
    [["a", []], "policies.p.claims.c[1]", "empty list"],
    [{ not: {} }, "policies.p.claims.c.not", "empty matcher object"],
    [{ glob: 5 }, "policies.p.claims.c.glob", "must be a string"],
    [null, "policies.p.claims.c", "a matcher is required"],
    [2 ** 60, "policies.p.claims.c", "quoted string"],
    [Number.NaN, "policies.p.claims.c", "quoted string"],
  ])("rejects %j", (raw, path, message) => {
    const problems = problemsOf(raw);
    expect(problems.map((problem) => problem.path)).toContain(path);
    expect(problems.some((problem) => problem.message.includes(message))).toBe(true);
  });

  it("rejects a matcher nested without end", () => {
    let raw: unknown = "a";
    for (let depth = 0; depth < 40; depth += 1) raw = { not: raw };
    expect(problemsOf(raw)[0]!.message).toContain("nested more than");
  });

  it("collects every problem of a list, not only the first", () => {
    const problems = problemsOf([{ regex: "(" }, {}, { glob: "ok*" }, { regex: "[" }]);
    expect(problems.map((problem) => problem.path)).toEqual([
      "policies.p.claims.c[0].regex",
      "policies.p.claims.c[1]",
      "policies.p.claims.c[3].regex",
    ]);
  });
});
