import { RE2JS } from "re2js";
import { globHasWildcard, globLiteralPrefix } from "./glob.js";
import { type CompiledMatcher, compileMatcher, pathSegment } from "./matchers.js";
import {
  exactValues,
  isExactValue,
  numericOwnerClaims,
  pinsOwner,
  pinsServiceAccounts,
  regexLiteralPrefix,
} from "./owner-pinning.js";
import type { PolicyProblem, PolicyWarning, RawPolicy } from "./types.js";

/**
 * Events that run with the base repository's identity (its `ref`, `sub`, ids) while the code may come
 * from a fork: `pull_request_target` checks out whatever the workflow asks for, and `workflow_run`
 * runs after a fork's workflow, often on its artifacts.
 */
const forkCodeEvents = ["pull_request_target", "workflow_run"] as const;

/** GitHub's immutable subject, `repo:OWNER@OWNER_ID/REPO@REPO_ID:…`, carries the numeric ids itself. */
const immutableSubject = /^repo:[^@/]+@\d+\/[^@/]+@\d+:/;

/**
 * The `tollgate check` warnings for one policy: legal, but risky. Each has a stable `id`, the config
 * path it is about, and a message that names the fix.
 *
 * - `no-numeric-owner-id` — the owner is pinned by name only, not by `repository_owner_id`,
 *   `repository_id` or `enterprise_id` (or an immutable `sub`): names can be renamed and re-registered.
 * - `event-name-open` — `event_name` is unconstrained or admits `pull_request_target`/`workflow_run`.
 * - `regex-looks-like-glob` — a regex containing `/*` or starting with `*`.
 * - `sub-leading-wildcard` — a `sub` glob or regex (not under `not`) that does not start with literal
 *   text: a glob starting with `*` or `?`; a regex (after an optional `^`) starting with `.`, a class
 *   like `[a-z]`, a group like `(.*)`, an escape like `\w`, an optional character, or an alternation
 *   with such a branch.
 *
 * A policy whose `sub` admits only Kubernetes service accounts of named namespaces
 * (`system:serviceaccount:NS:NAME`, as a connector's platform token carries) gets neither of the first
 * two: it names no GitHub owner to pin by id, and its tokens have no `event_name`.
 *
 * Malformed parts are skipped: they are compile problems, reported by {@link compilePolicy}.
 *
 * @param options.deniesOnly - the policy appears only in `deny` lists. It can only take access away, so
 *   matching more is never a risk: it need not pin an owner (no `no-numeric-owner-id`), its `sub` may
 *   start with a wildcard (no `sub-leading-wildcard`), and admitting `pull_request_target` there is the
 *   point (no `event-name-open`).
 * @example
 * policyWarnings("org-ci", { claims: { repository_owner: "octo-org" } }).map((w) => w.id);
 * // ["no-numeric-owner-id", "event-name-open"]
 */
export function policyWarnings(
  name: string,
  raw: RawPolicy,
  options: { deniesOnly?: boolean } = {},
): PolicyWarning[] {
  const claimsPath = `policies${pathSegment(name)}.claims`;
  const claims: unknown = (raw as { claims?: unknown } | null | undefined)?.claims;
  if (typeof claims !== "object" || claims === null || Array.isArray(claims)) return [];
  const rawClaims = claims as Record<string, unknown>;
  const names = Object.keys(rawClaims).sort();
  const matchers = new Map<string, CompiledMatcher>();
  for (const claim of names) {
    const matcher = compileMatcher(rawClaims[claim], `${claimsPath}${pathSegment(claim)}`, ignoredProblems());
    if (matcher !== undefined) matchers.set(claim, matcher);
  }

  const deniesOnly = options.deniesOnly === true;
  const warnings: PolicyWarning[] = [];
  // A policy for Kubernetes service accounts: GitHub's owner ids and events do not apply to it.
  const sub = matchers.get("sub");
  const kubernetes = sub !== undefined && pinsServiceAccounts(sub.node);
  if (!deniesOnly && !kubernetes && !pinsNumericId(matchers)) {
    warnings.push({
      id: "no-numeric-owner-id",
      path: claimsPath,
      message:
        `policy "${name}" does not pin a numeric id, only names: an organisation, user or repository can be ` +
        "renamed or deleted, and its old name registered by someone else, whose tokens then carry the same " +
        "names. Add `repository_owner_id: <id>` (and `repository_id: <id>` for one repository), e.g. from " +
        "`gh api repos/OWNER/REPO --jq '.owner.id, .id'`.",
    });
  }

  if (!deniesOnly && !kubernetes) {
    const eventWarning = eventNameWarning(matchers.get("event_name"), `${claimsPath}.event_name`);
    if (eventWarning !== undefined) warnings.push(eventWarning);
  }

  for (const claim of names) {
    const claimPath = `${claimsPath}${pathSegment(claim)}`;
    walkPatterns(rawClaims[claim], claimPath, false, (kind, pattern, path, negated) => {
      if (kind === "regex" && looksLikeGlob(pattern)) warnings.push(regexGlobWarning(pattern, path));
      if (claim === "sub" && !deniesOnly && !negated && startsWithWildcard(kind, pattern)) {
        warnings.push(subWildcardWarning(kind, pattern, path));
      }
    });
  }
  return warnings;
}

function ignoredProblems(): PolicyProblem[] {
  return [];
}

function pinsNumericId(matchers: ReadonlyMap<string, CompiledMatcher>): boolean {
  for (const claim of numericOwnerClaims) {
    const matcher = matchers.get(claim);
    if (matcher !== undefined && pinsOwner(claim, matcher.node)) return true;
  }
  const sub = matchers.get("sub");
  return (
    sub !== undefined &&
    isExactValue(sub.node) &&
    exactValues(sub.node).every((value) => immutableSubject.test(value))
  );
}

function eventNameWarning(matcher: CompiledMatcher | undefined, path: string): PolicyWarning | undefined {
  const fix =
    "constrain it, e.g. `event_name: { not: [pull_request_target, workflow_run] }`, or list the events you " +
    "expect, e.g. `event_name: [push, workflow_dispatch]`";
  if (matcher === undefined) {
    return {
      id: "event-name-open",
      path,
      message:
        "event_name is not constrained: pull_request_target and workflow_run runs carry the base repository's " +
        `identity but may run code from a fork; ${fix}`,
    };
  }
  const admitted = forkCodeEvents.filter((event) => matcher.test(event));
  if (admitted.length === 0) return undefined;
  return {
    id: "event-name-open",
    path,
    message:
      `event_name ${matcher.expected} admits ${admitted.join(" and ")}, which carries the base repository's ` +
      `identity but may run code from a fork; ${fix}`,
  };
}

type PatternVisitor = (kind: "glob" | "regex", pattern: string, path: string, negated: boolean) => void;

/** Visits every glob and regex of a raw matcher, noting whether it sits under a `not`. */
function walkPatterns(raw: unknown, path: string, negated: boolean, visit: PatternVisitor, depth = 0): void {
  if (depth > 16 || typeof raw !== "object" || raw === null) return;
  if (Array.isArray(raw)) {
    raw.forEach((item, index) => {
      walkPatterns(item, `${path}[${index}]`, negated, visit, depth + 1);
    });
    return;
  }
  const object = raw as Record<string, unknown>;
  if (typeof object["glob"] === "string") visit("glob", object["glob"], `${path}.glob`, negated);
  if (typeof object["regex"] === "string") visit("regex", object["regex"], `${path}.regex`, negated);
  if ("not" in object) walkPatterns(object["not"], `${path}.not`, !negated, visit, depth + 1);
}

function looksLikeGlob(pattern: string): boolean {
  return pattern.includes("/*") || pattern.startsWith("*");
}

function regexGlobWarning(pattern: string, path: string): PolicyWarning {
  const asRegex = pattern.replace(/^\*/, ".*").replaceAll("/*", "/.*");
  return {
    id: "regex-looks-like-glob",
    path,
    message:
      `regex ${JSON.stringify(pattern)} looks like a glob: in a regex, \`*\` repeats the character before it ` +
      `(so \`/*\` means "any number of slashes"). Did you mean {glob: ${JSON.stringify(pattern)}} or ` +
      `{regex: ${JSON.stringify(asRegex)}}?`,
  };
}

/**
 * Whether a pattern's literal prefix — the text every match starts with — is empty. For globs it is
 * glob.ts's own (only `*` and `?` are wildcards there; `[` and `{` are literal). For regexes it is RE2's
 * analysis of the compiled program, as in owner pinning, so classes (`[a-z]+`), groups (`(.*)`),
 * escapes (`\w`), alternations (`repo:o/x|.*`), optional first characters (`r?epo`) and case folding
 * (`(?i)`) all count as wildcards, while `[r]epo` or `(repo):` are literal: too strict rather than too
 * lenient. A regex that does not compile is a compile problem and is skipped here.
 */
function startsWithWildcard(kind: "glob" | "regex", pattern: string): boolean {
  if (kind === "glob") return globHasWildcard(pattern) && globLiteralPrefix(pattern) === "";
  try {
    RE2JS.compile(pattern);
  } catch {
    return false;
  }
  // An empty pattern (empty and complete prefix) matches only the empty value: nothing is left open.
  const { prefix, complete } = regexLiteralPrefix(pattern);
  return prefix === "" && !complete;
}

function subWildcardWarning(kind: "glob" | "regex", pattern: string, path: string): PolicyWarning {
  return {
    id: "sub-leading-wildcard",
    path,
    message:
      `sub ${kind} ${JSON.stringify(pattern)} starts with a wildcard, not literal text, so it can also match ` +
      "subjects of other owners' repositories (every sub starts with `repo:OWNER/REPO`); start it with your owner, e.g. " +
      '{glob: "repo:octo-org/*:ref:refs/heads/main"}, and pin `repository_owner_id`.',
  };
}
