import { RE2JS } from "re2js";
import { globHasWildcard, globToRe2 } from "./glob.js";
import type { PolicyProblem, RawMatcher } from "./types.js";

/**
 * A parsed matcher. The tree is kept (not only the test function) because owner pinning and the
 * `check` warnings reason about its shape.
 */
export type MatcherNode =
  | { readonly kind: "equals"; readonly value: string }
  | { readonly kind: "any"; readonly items: readonly MatcherNode[] }
  | { readonly kind: "glob"; readonly pattern: string; readonly re: RE2JS | undefined }
  | { readonly kind: "regex"; readonly pattern: string; readonly re: RE2JS }
  | { readonly kind: "not"; readonly inner: MatcherNode };

/**
 * A test over the string form of a scalar claim. Missing and non-scalar claims never reach it: the
 * caller decides those first, which is what keeps `not` from matching a missing claim.
 */
export type ValueTest = (value: string) => boolean;

/** A matcher ready to run: its tree, its test, and its human form for traces. */
export interface CompiledMatcher {
  readonly node: MatcherNode;
  readonly test: ValueTest;
  readonly expected: string;
}

const matcherKeys = ["glob", "regex", "not"] as const;

/** YAML can nest without end; a matcher deeper than this is a mistake, not a policy. */
const maxDepth = 16;

const regexHint =
  "RE2 syntax has no lookaround or backreferences (https://github.com/google/re2/wiki/Syntax); " +
  "the pattern is always matched against the whole value, so ^ and $ are not needed";

/**
 * Parses and compiles a raw matcher. Every problem found is appended to `problems` (with `path`
 * extended into lists and matcher objects); the result is `undefined` when there was any.
 *
 * @example
 * const problems: PolicyProblem[] = [];
 * const m = compileMatcher({ glob: "octo-org/*" }, "policies.ci.claims.repository", problems);
 * m?.test("octo-org/app"); // true
 */
export function compileMatcher(
  raw: unknown,
  path: string,
  problems: PolicyProblem[],
): CompiledMatcher | undefined {
  const before = problems.length;
  const node = parseNode(raw, path, problems, 0);
  if (node === undefined || problems.length > before) return undefined;
  return { node, test: buildTest(node), expected: describeNode(node) };
}

/**
 * The human form of a matcher, as shown in `explain`, audit events and warnings: `"refs/heads/main"`,
 * `any of ["a", "b"]`, `glob "octo-org/*"`, `regex "…"`, `not any of ["a", "b"]`. Scalars are shown as
 * the strings they are compared as (`123` → `"123"`). Works on malformed input too (shown as
 * `<invalid matcher>`), so a message about a bad matcher can still quote it.
 *
 * @example
 * describeMatcher({ not: ["pull_request_target", "workflow_run"] });
 * // 'not any of ["pull_request_target", "workflow_run"]'
 */
export function describeMatcher(raw: RawMatcher): string {
  return describeRaw(raw, 0);
}

function describeRaw(raw: unknown, depth: number): string {
  const scalar = scalarText(raw);
  if (scalar !== undefined) return JSON.stringify(scalar);
  if (depth > maxDepth) return "<invalid matcher>";
  if (Array.isArray(raw)) return `any of [${raw.map((item) => describeRaw(item, depth + 1)).join(", ")}]`;
  if (isPlainObject(raw)) {
    const keys = Object.keys(raw);
    if (keys.length === 1) {
      const value = raw[keys[0]!];
      if (keys[0] === "glob" && typeof value === "string") return `glob ${JSON.stringify(value)}`;
      if (keys[0] === "regex" && typeof value === "string") return `regex ${JSON.stringify(value)}`;
      if (keys[0] === "not") return `not ${describeRaw(value, depth + 1)}`;
    }
  }
  return "<invalid matcher>";
}

function describeNode(node: MatcherNode): string {
  switch (node.kind) {
    case "equals":
      return JSON.stringify(node.value);
    case "any":
      return `any of [${node.items.map(describeNode).join(", ")}]`;
    case "glob":
      return `glob ${JSON.stringify(node.pattern)}`;
    case "regex":
      return `regex ${JSON.stringify(node.pattern)}`;
    case "not":
      return `not ${describeNode(node.inner)}`;
  }
}

/** The string a scalar matcher compares as, or `undefined` for anything that is not a scalar. */
function scalarText(raw: unknown): string | undefined {
  if (typeof raw === "string") return raw;
  if (typeof raw === "boolean") return raw ? "true" : "false";
  if (typeof raw === "number" && Number.isFinite(raw)) return String(raw);
  return undefined;
}

function isPlainObject(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === "object" && raw !== null && !Array.isArray(raw);
}

function parseNode(
  raw: unknown,
  path: string,
  problems: PolicyProblem[],
  depth: number,
): MatcherNode | undefined {
  if (depth > maxDepth) {
    problems.push({ path, message: `matcher is nested more than ${maxDepth} levels deep` });
    return undefined;
  }
  if (typeof raw === "number") {
    // GitHub's ids are strings in the token; a YAML number past 2^53 has already lost digits when parsed.
    if (!Number.isFinite(raw) || (Number.isInteger(raw) && !Number.isSafeInteger(raw))) {
      problems.push({
        path,
        message: `the number ${String(raw)} cannot be compared exactly; write it as a quoted string, e.g. "12345678901234567890"`,
      });
      return undefined;
    }
  }
  const scalar = scalarText(raw);
  if (scalar !== undefined) return { kind: "equals", value: scalar };
  if (raw === null || raw === undefined) {
    problems.push({
      path,
      message: "a matcher is required: a value, a list of values, or one of {glob: …}, {regex: …}, {not: …}",
    });
    return undefined;
  }
  if (Array.isArray(raw)) return parseList(raw, path, problems, depth);
  if (isPlainObject(raw)) return parseObject(raw, path, problems, depth);
  problems.push({ path, message: `unsupported matcher of type ${typeof raw}` });
  return undefined;
}

function parseList(
  raw: unknown[],
  path: string,
  problems: PolicyProblem[],
  depth: number,
): MatcherNode | undefined {
  if (raw.length === 0) {
    problems.push({ path, message: "an empty list matches nothing; list at least one value" });
    return undefined;
  }
  const items: MatcherNode[] = [];
  raw.forEach((item, index) => {
    const node = parseNode(item, `${path}[${index}]`, problems, depth + 1);
    if (node !== undefined) items.push(node);
  });
  return items.length === raw.length ? { kind: "any", items: Object.freeze(items) } : undefined;
}

function parseObject(
  raw: Record<string, unknown>,
  path: string,
  problems: PolicyProblem[],
  depth: number,
): MatcherNode | undefined {
  const keys = Object.keys(raw);
  const known = keys.filter((key): key is (typeof matcherKeys)[number] =>
    (matcherKeys as readonly string[]).includes(key),
  );
  let ok = true;
  for (const key of keys) {
    if (known.includes(key as (typeof matcherKeys)[number])) continue;
    problems.push({
      path: `${path}${pathSegment(key)}`,
      message: `unknown matcher key "${key}"; a matcher object takes exactly one of glob, regex or not`,
    });
    ok = false;
  }
  if (keys.length === 0) {
    problems.push({
      path,
      message: "an empty matcher object; write one of {glob: …}, {regex: …} or {not: …}",
    });
    return undefined;
  }
  if (known.length > 1) {
    problems.push({
      path,
      message: `a matcher object takes exactly one of glob, regex or not, found ${known.join(", ")}; use a list to match any of several`,
    });
    ok = false;
  }
  if (!ok || known.length !== 1) return undefined;

  const key = known[0]!;
  const value = raw[key];
  const valuePath = `${path}.${key}`;
  if (key === "not") {
    const inner = parseNode(value, valuePath, problems, depth + 1);
    return inner === undefined ? undefined : { kind: "not", inner };
  }
  if (typeof value !== "string") {
    problems.push({ path: valuePath, message: `${key} must be a string pattern` });
    return undefined;
  }
  if (key === "glob") {
    return {
      kind: "glob",
      pattern: value,
      re: globHasWildcard(value) ? RE2JS.compile(globToRe2(value)) : undefined,
    };
  }
  const re = compileRegex(value, valuePath, problems);
  return re === undefined ? undefined : { kind: "regex", pattern: value, re };
}

/**
 * Compiles a user regex for a whole-value match. The pattern is compiled on its own first, so that an
 * unbalanced pattern such as `a)|(b` is reported instead of being "repaired" by the wrapping group.
 * The wrapped `(?:…)` plus RE2's anchored full match means a top-level alternation like `^a|b$` can
 * never match a mere substring.
 */
function compileRegex(pattern: string, path: string, problems: PolicyProblem[]): RE2JS | undefined {
  try {
    RE2JS.compile(pattern);
    return RE2JS.compile(`(?:${pattern})`);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    problems.push({
      path,
      message: `invalid RE2 regex ${JSON.stringify(pattern)}: ${reason}. Hint: ${regexHint}`,
    });
    return undefined;
  }
}

/**
 * Builds the runtime test of a matcher tree. Exact values and lists of exact values become string
 * comparisons or a `Set` lookup; a glob without wildcards is an exact value; only real patterns run
 * RE2 (`testExact`: anchored at both ends, linear time, no capture groups).
 */
function buildTest(node: MatcherNode): ValueTest {
  switch (node.kind) {
    case "equals": {
      const expected = node.value;
      return (value) => value === expected;
    }
    case "glob": {
      const re = node.re;
      if (re === undefined) {
        const expected = node.pattern;
        return (value) => value === expected;
      }
      return (value) => re.testExact(value);
    }
    case "regex": {
      const re = node.re;
      return (value) => re.testExact(value);
    }
    case "not": {
      const inner = buildTest(node.inner);
      return (value) => !inner(value);
    }
    case "any": {
      if (node.items.every((item) => item.kind === "equals")) {
        const values = new Set(node.items.map((item) => (item as { value: string }).value));
        return (value) => values.has(value);
      }
      const tests = node.items.map(buildTest);
      if (tests.length === 1) return tests[0]!;
      return (value) => {
        for (const test of tests) if (test(value)) return true;
        return false;
      };
    }
  }
}

/** A config path segment for a key: `.name` for plain keys, `["odd key"]` for the rest. */
export function pathSegment(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}
