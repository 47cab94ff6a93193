import { RE2JS } from "re2js";
import { globHasWildcard, globLiteralPrefix } from "./glob.js";
import type { MatcherNode } from "./matchers.js";

/**
 * Claims that, constrained exactly, tie a policy to one owner. One issuer (GitHub's) serves every
 * repository on GitHub, so a policy without one of them admits any workflow anywhere.
 */
export const ownerClaims = [
  "repository_owner_id",
  "repository_owner",
  "repository_id",
  "repository",
  "enterprise_id",
  "enterprise",
] as const;

/** The owner claims that are numeric ids: they survive renames, and a deleted owner's id never comes back. */
export const numericOwnerClaims = ["repository_owner_id", "repository_id", "enterprise_id"] as const;

/**
 * Whether a matcher on `claim` can only admit values of one known owner.
 *
 * - a scalar, or a list whose every item pins, always does;
 * - `not` never does (it admits everything else);
 * - on `repository`, a glob or regex pins when the text it must start with contains `owner/`;
 * - on any other owner claim, a glob or regex pins only when it has no wildcard at all.
 *
 * For regexes the literal prefix comes from RE2's own analysis of the compiled program, so
 * alternations (`octo-org/x|.*`), case folding (`(?i)`) and leading anchors all count as "not literal":
 * the check can be too strict, never too lenient.
 */
export function pinsOwner(claim: string, node: MatcherNode): boolean {
  switch (node.kind) {
    case "equals":
      return true;
    case "any":
      return node.items.every((item) => pinsOwner(claim, item));
    case "not":
      return false;
    case "glob":
      return claim === "repository"
        ? namesOwner(globLiteralPrefix(node.pattern))
        : !globHasWildcard(node.pattern);
    case "regex": {
      const { prefix, complete } = regexLiteralPrefix(node.pattern);
      return claim === "repository" ? namesOwner(prefix) : complete;
    }
  }
}

/**
 * A Kubernetes service-account token's subject, `system:serviceaccount:NAMESPACE:`, up to the account's
 * name: the namespace is Kubernetes' unit of ownership, as the owner is GitHub's.
 */
const serviceAccountNamespace = /^system:serviceaccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?:/;

/**
 * Whether a `sub` matcher admits only Kubernetes service accounts of named namespaces
 * (`system:serviceaccount:NS:NAME`): exact subjects, or a glob or regex whose literal text names the
 * namespace (`{glob: "system:serviceaccount:ci:*"}`). Such a policy is pinned as a GitHub policy is by
 * its owner; GitHub's claims (ids, `event_name`) mean nothing for it.
 *
 * @example
 * pinsServiceAccounts({ kind: "equals", value: "system:serviceaccount:ci:connector" }); // true
 */
export function pinsServiceAccounts(node: MatcherNode): boolean {
  switch (node.kind) {
    case "equals":
      return serviceAccountNamespace.test(node.value) && !node.value.endsWith(":");
    case "any":
      return node.items.length > 0 && node.items.every((item) => pinsServiceAccounts(item));
    case "not":
      return false;
    case "glob":
      return serviceAccountNamespace.test(globLiteralPrefix(node.pattern));
    case "regex":
      return serviceAccountNamespace.test(regexLiteralPrefix(node.pattern).prefix);
  }
}

/** Whether an exact `sub` matcher was given: a scalar, or a list of scalars. */
export function isExactValue(node: MatcherNode): boolean {
  if (node.kind === "equals") return true;
  if (node.kind === "any") return node.items.every((item) => item.kind === "equals");
  return false;
}

/** The exact values of a matcher that {@link isExactValue}. */
export function exactValues(node: MatcherNode): string[] {
  if (node.kind === "equals") return [node.value];
  if (node.kind === "any") return node.items.flatMap(exactValues);
  return [];
}

function namesOwner(prefix: string): boolean {
  return prefix.indexOf("/") > 0;
}

/**
 * The literal text every match of `pattern` starts with, and whether that is the whole pattern.
 *
 * A leading `^` and a trailing unescaped `$` are dropped first: under a whole-value match they change
 * nothing, but RE2 computes no prefix past an anchor, and `^octo-org/.*$` is common. re2js exposes
 * RE2's computed prefix on the compiled program; should a future version stop doing so, this answers
 * "no prefix" and policies fail the pinning check rather than pass it.
 */
export function regexLiteralPrefix(pattern: string): { prefix: string; complete: boolean } {
  let core = pattern.startsWith("^") ? pattern.slice(1) : pattern;
  if (core.endsWith("$") && trailingBackslashes(core.slice(0, -1)) % 2 === 0) core = core.slice(0, -1);
  let program: { prefix?: unknown; prefixComplete?: unknown };
  try {
    program = RE2JS.compile(`(?:${core})`).re2() as typeof program;
  } catch {
    return { prefix: "", complete: false };
  }
  if (typeof program.prefix !== "string") return { prefix: "", complete: false };
  return { prefix: program.prefix, complete: program.prefixComplete === true };
}

function trailingBackslashes(text: string): number {
  let count = 0;
  while (count < text.length && text[text.length - 1 - count] === "\\") count += 1;
  return count;
}
