import type { Scope } from "./types.js";

/** Longest scope text accepted: an enterprise slug, or a 39-character owner, `/` and a 100-character name. */
export const maxScopeLength = 140;

/**
 * Owners: GitHub user and organisation names are letters, digits and `-` (at most 39); managed users
 * (`octocat_shortcode`) add `_`. Being a little wider than GitHub's own rule costs nothing: GitHub
 * answers 404 for a name that cannot exist. What matters is that nothing else gets through.
 */
const ownerPattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,38}$/;
/** Repository names: letters, digits, `.`, `_` and `-`, at most 100. */
const repoPattern = /^[A-Za-z0-9._-]{1,100}$/;
/** Enterprise slugs: letters, digits and `-`. */
const enterprisePattern = /^[A-Za-z0-9][A-Za-z0-9-]{0,99}$/;

const enterprisePrefix = "enterprise:";

/** What a caller is told when a scope is refused; never repeats the scope (it is the caller's input). */
export const scopeFormHint =
  "a scope is ORG, OWNER/REPO or enterprise:SLUG (owners: letters, digits, '-' and '_'; repositories also '.')";

/**
 * Validates and canonicalises a scope before any rule sees it. Anything that is not plainly an owner,
 * `owner/repo` or `enterprise:slug` is refused: no `..`, no extra `/`, no percent-encoding, no
 * whitespace, no characters outside ASCII. The canonical form is lower case, because GitHub resolves
 * names case-insensitively: comparing as written would let `Octo-Org/Payroll` slip past a
 * `denied_scopes` entry `octo-org/payroll` and still reach the same repository.
 *
 * @example
 * parseScope("Octo-Org/App"); // { scope: { kind: "repo", text: "octo-org/app", owner: "octo-org", repo: "app" } }
 * parseScope("octo-org/../x"); // { problem: "…" }
 */
export function parseScope(text: unknown): { scope: Scope; problem?: undefined } | { problem: string } {
  if (typeof text !== "string") return { problem: "scope must be a string" };
  if (text.length === 0) return { problem: "scope must not be empty" };
  if (text.length > maxScopeLength) return { problem: `scope must be at most ${maxScopeLength} characters` };
  const lower = text.toLowerCase();
  if (lower.startsWith(enterprisePrefix)) {
    const slug = text.slice(enterprisePrefix.length);
    if (!enterprisePattern.test(slug)) return { problem: `invalid enterprise scope: ${scopeFormHint}` };
    const canonical = slug.toLowerCase();
    return { scope: { kind: "enterprise", text: `${enterprisePrefix}${canonical}`, owner: canonical } };
  }
  const parts = text.split("/");
  if (parts.length > 2) return { problem: `scope has more than one '/': ${scopeFormHint}` };
  const [owner, repo] = parts as [string, string | undefined];
  if (!ownerPattern.test(owner)) return { problem: `invalid owner in scope: ${scopeFormHint}` };
  if (repo === undefined) {
    const canonical = owner.toLowerCase();
    return { scope: { kind: "org", text: canonical, owner: canonical } };
  }
  // `.` and `..` (and any all-dot name) are path segments, not repositories.
  if (!repoPattern.test(repo) || /^\.+$/.test(repo)) {
    return { problem: `invalid repository in scope: ${scopeFormHint}` };
  }
  const canonicalOwner = owner.toLowerCase();
  const canonicalRepo = repo.toLowerCase();
  return {
    scope: {
      kind: "repo",
      text: `${canonicalOwner}/${canonicalRepo}`,
      owner: canonicalOwner,
      repo: canonicalRepo,
    },
  };
}

/**
 * The GitHub REST path of a scope's runner endpoints, e.g. `/repos/octo-org/app/actions/runners`.
 * Segments are validated by {@link parseScope}, so encoding is a formality that keeps it that way.
 */
export function runnersPath(scope: Scope): string {
  const segment = encodeURIComponent;
  switch (scope.kind) {
    case "org":
      return `/orgs/${segment(scope.owner)}/actions/runners`;
    case "repo":
      return `/repos/${segment(scope.owner)}/${segment(scope.repo ?? "")}/actions/runners`;
    case "enterprise":
      return `/enterprises/${segment(scope.owner)}/actions/runners`;
  }
}
