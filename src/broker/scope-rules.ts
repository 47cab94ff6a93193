import { RE2JS } from "re2js";
import { parseScope, scopeFormHint } from "./scope.js";
import type { Scope, ScopeDecision, ScopeListOrigin, ScopePattern, ScopeRules } from "./types.js";

/** The prefix of a regular-expression entry, as in github-runner-token-proxy. */
export const matchPrefix = "match:";

/** A pattern that ends in a `.git` suffix (`\.git`, `.git`, `[.]git`, optionally anchored), any case. */
const gitSuffixPattern = /(?:\\\.|\.|\[\.\])git(?:\$|\\z)?$/i;

/** A problem with one entry of a scope list; `index` is its position in the list. */
export interface ScopeListProblem {
  index: number;
  message: string;
  fix?: string;
}

/**
 * A risky-but-legal entry; `id` is stable (`scope-pattern-looks-like-glob`, `scope-pattern-anchored`,
 * `scope-pattern-git-suffix`).
 */
export interface ScopeListWarning {
  index: number;
  id: string;
  message: string;
}

/**
 * Splits a `;`-separated scope list the way github-runner-token-proxy does: entries are trimmed and
 * blank entries dropped. (`;` rather than `,` because `gcloud --set-env-vars` already uses commas.)
 *
 * @example
 * splitScopeList(" octo-org ; match:octo-org/.* ;"); // ["octo-org", "match:octo-org/.*"]
 */
export function splitScopeList(text: string): string[] {
  return text
    .split(";")
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}

/**
 * Compiles a scope list. A literal entry must itself be a valid scope and matches exactly that scope, in
 * every spelling GitHub resolves to it (both sides are canonicalised by `parseScope`: `Octo-Org/App.git`
 * as an entry or as a request is `octo-org/app`); a `match:<RE2>` entry is matched against the **whole**
 * canonical scope, case-insensitively. github-runner-token-proxy left patterns unanchored, so its own
 * example `match:my-org/*` admitted every scope that merely contained `my-org`; here it cannot.
 *
 * Every problem is reported with a fix; warnings name patterns that look like globs, patterns that
 * spell a `.git` suffix (the canonical scope never has one), and — for lists from the environment,
 * where a github-runner-token-proxy deployment's settings arrive — patterns whose meaning changed with
 * anchoring.
 *
 * @example
 * const { patterns } = compileScopePatterns(["octo-org", "match:octo-org/.*"], "allowed_scopes");
 * patterns[1]!.test("octo-org/app"); // true
 * patterns[1]!.test("evil/octo-org/app"); // false
 */
export function compileScopePatterns(
  entries: readonly string[],
  origin: ScopeListOrigin,
): { patterns: ScopePattern[]; problems: ScopeListProblem[]; warnings: ScopeListWarning[] } {
  const patterns: ScopePattern[] = [];
  const problems: ScopeListProblem[] = [];
  const warnings: ScopeListWarning[] = [];
  const fromEnvironment = origin === "ALLOWED_SCOPES" || origin === "DENIED_SCOPES";
  entries.forEach((source, index) => {
    if (!source.startsWith(matchPrefix)) {
      const parsed = parseScope(source);
      if (parsed.problem !== undefined) {
        problems.push({
          index,
          message: `${describe(origin, source)} is not a scope: ${scopeFormHint}`,
          fix: `for a regular expression write ${matchPrefix}<RE2>, e.g. ${matchPrefix}octo-org/.*`,
        });
        return;
      }
      const expected = parsed.scope.text;
      patterns.push({ source, kind: "literal", test: (scope) => scope === expected });
      return;
    }
    const pattern = source.slice(matchPrefix.length);
    const compiled = compileWholeScopeRegex(pattern);
    if (compiled.problem !== undefined) {
      const suggestion = globToRegex(pattern);
      const usable = suggestion !== pattern && compileWholeScopeRegex(suggestion).re !== undefined;
      problems.push({
        index,
        message: `${describe(origin, source)} is not a valid RE2 regular expression (${compiled.problem})`,
        fix: usable
          ? `write ${matchPrefix}${suggestion}${suggestion === ".*" ? " (allows every scope: not recommended, list your organisations instead)" : ""}`
          : "see https://github.com/google/re2/wiki/Syntax; the pattern is matched against the whole scope",
      });
      return;
    }
    const re = compiled.re;
    patterns.push({ source, kind: "match", test: (scope) => re.testExact(scope) });
    const suggestion = globToRegex(pattern);
    if (gitSuffixPattern.test(pattern)) {
      // Scopes reach the patterns canonical, and GitHub resolves `app.git` to `app`: a pattern written
      // for the suffixed spelling matches no request at all, and in a deny list that refuses nothing.
      const without = pattern.replace(gitSuffixPattern, "");
      warnings.push({
        index,
        id: "scope-pattern-git-suffix",
        message:
          `${describe(origin, source)} ends in '.git', but patterns are matched against the canonical scope, ` +
          `which never does (GitHub resolves OWNER/REPO.git to OWNER/REPO, and so does tollgate). ` +
          `Did you mean ${matchPrefix}${without}?`,
      });
    } else if (suggestion !== pattern) {
      warnings.push({
        index,
        id: "scope-pattern-looks-like-glob",
        message:
          `${describe(origin, source)} looks like a glob, but it is an RE2 regular expression matched against ` +
          `the whole scope: \`*\` repeats the character before it (\`/*\` means "any number of '/'"). ` +
          `Did you mean ${matchPrefix}${suggestion}?`,
      });
    } else if (fromEnvironment && !anchoredBothEnds(pattern)) {
      const widened = `${matchPrefix}${startsOpen(pattern) ? "" : ".*"}${pattern}${endsOpen(pattern) ? "" : ".*"}`;
      warnings.push({
        index,
        id: "scope-pattern-anchored",
        message:
          `${describe(origin, source)} is matched against the whole scope; github-runner-token-proxy matched it ` +
          `anywhere inside the scope${origin === "DENIED_SCOPES" ? ", so it now refuses fewer scopes than it did there" : ""}. ` +
          `Write ${widened} to keep the old meaning.`,
      });
    }
  });
  return { patterns, problems, warnings };
}

/**
 * The global scope lists for one (validated) scope: a matching deny entry refuses, else a matching allow
 * entry admits, else refused — including when the allow list is empty.
 *
 * @example
 * evaluateScopeRules(rules, parseScope("octo-org/payroll").scope!);
 * // { allowed: false, reason: "scope-denied", detail: 'denied_scopes entry "octo-org/payroll"' }
 */
export function evaluateScopeRules(rules: ScopeRules, scope: Scope): ScopeDecision {
  for (const pattern of rules.deny) {
    if (pattern.test(scope.text)) {
      return { allowed: false, reason: "scope-denied", detail: describe(rules.denyOrigin, pattern.source) };
    }
  }
  for (const pattern of rules.allow) {
    if (pattern.test(scope.text)) {
      return { allowed: true, reason: "scope-allowed", detail: describe(rules.allowOrigin, pattern.source) };
    }
  }
  return {
    allowed: false,
    reason: "scope-not-allowed",
    detail:
      rules.allow.length === 0
        ? `${rules.allowOrigin} is empty, so no scope is allowed`
        : `no ${rules.allowOrigin} entry matches`,
  };
}

/**
 * Compiles a user pattern for a whole-scope, case-insensitive match. The pattern is compiled on its own
 * first so that an unbalanced `a)|(b` is reported rather than "repaired" by the wrapping group.
 */
export function compileWholeScopeRegex(
  pattern: string,
): { re: RE2JS; problem?: undefined } | { problem: string; re?: undefined } {
  if (pattern.length === 0) return { problem: "the pattern is empty" };
  try {
    RE2JS.compile(pattern);
    return { re: RE2JS.compile(`(?:${pattern})`, RE2JS.CASE_INSENSITIVE) };
  } catch (error) {
    return { problem: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * The regex a glob-minded author most likely meant: every `*` that does not follow something it could
 * repeat on purpose (`.`, `)`, `]`, `}`, an escape) becomes `.*`. Returns the pattern unchanged when no
 * such `*` exists.
 */
function globToRegex(pattern: string): string {
  return pattern.replace(/(^|[^.)\]}\\])\*/g, (_whole, before: string) => `${before}.*`);
}

function startsOpen(pattern: string): boolean {
  return pattern.startsWith(".*");
}

function endsOpen(pattern: string): boolean {
  return pattern.endsWith(".*") && !pattern.endsWith("\\.*");
}

function anchoredBothEnds(pattern: string): boolean {
  const start = startsOpen(pattern) || pattern.startsWith("^") || pattern.startsWith("\\A");
  const end =
    endsOpen(pattern) || (pattern.endsWith("$") && !pattern.endsWith("\\$")) || pattern.endsWith("\\z");
  return start && end;
}

function describe(origin: ScopeListOrigin, source: string): string {
  return `${origin} entry ${JSON.stringify(source)}`;
}
