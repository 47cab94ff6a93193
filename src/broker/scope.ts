import type { Scope } from "./types.js";

/**
 * Longest scope text accepted: an enterprise slug, or a 39-character owner, `/`, a 100-character name and
 * the `.git` suffix GitHub resolves to that name.
 */
export const maxScopeLength = 144;

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
/**
 * Suffixes GitHub reserves (Docs, "Repository limits" → "Repository name"): a name ending in `.git` has
 * the suffix removed, so `octo-org/app.git` (in any case) is the repository `octo-org/app`; a name ending
 * in `.wiki` is not allowed, the suffix being the wiki's.
 */
const gitSuffix = ".git";
const wikiSuffix = ".wiki";

/** What a caller is told when a scope is refused; never repeats the scope (it is the caller's input). */
export const scopeFormHint =
  "a scope is ORG, OWNER/REPO or enterprise:SLUG (owners: letters, digits, '-' and '_'; repositories also '.')";

/**
 * Validates and canonicalises a scope before any rule, cache key, GitHub URL or audit field sees it, so
 * that each scope has exactly one spelling. Anything that is not plainly an owner, `owner/repo` or
 * `enterprise:slug` is refused: no `..`, no extra `/`, no percent-encoding, no whitespace, no characters
 * outside ASCII. The canonical form is the one GitHub resolves every other spelling to:
 *
 * - lower case, because GitHub compares owner, repository and enterprise names case-insensitively;
 * - without the `.git` suffix (in any case), because GitHub reserves it and resolves `app.git` to `app`.
 *
 * Comparing as written would let `Octo-Org/Payroll` or `octo-org/payroll.git` slip past a
 * `denied_scopes` entry `octo-org/payroll` and still reach the same repository. A name that is only
 * `.git`, or that still ends in `.git` once the suffix is removed (`app.git.git`), names no repository
 * of its own (the suffix is reserved) and could be resolved more than one way: it is refused, as is a
 * name ending in `.wiki`, which GitHub does not allow for repositories.
 * Renamed and transferred repositories are the other road to one repository under two names; GitHub
 * answers their old name with a redirect, which the GitHub client refuses (`github-api.ts`).
 *
 * @example
 * parseScope("Octo-Org/App.GIT"); // { scope: { kind: "repo", text: "octo-org/app", owner: "octo-org", repo: "app" } }
 * parseScope("octo-org/../x"); // { problem: "…" }
 */
export function parseScope(text: unknown): { scope: Scope; problem?: undefined } | { problem: string } {
  if (typeof text !== "string") return { problem: "scope must be a string" };
  if (text.length === 0) return { problem: "scope must not be empty" };
  if (text.length > maxScopeLength) return { problem: `scope must be at most ${maxScopeLength} characters` };
  // Names are checked as ASCII before they are folded: Unicode case mapping would turn look-alikes
  // (U+212A KELVIN SIGN lower-cases to `k`) into names the patterns accept.
  if (text.slice(0, enterprisePrefix.length).toLowerCase() === enterprisePrefix) {
    const slug = text.slice(enterprisePrefix.length);
    if (!enterprisePattern.test(slug)) return { problem: `invalid enterprise scope: ${scopeFormHint}` };
    const canonical = slug.toLowerCase();
    return { scope: { kind: "enterprise", text: `${enterprisePrefix}${canonical}`, owner: canonical } };
  }
  const parts = text.split("/");
  if (parts.length > 2) return { problem: `scope has more than one '/': ${scopeFormHint}` };
  const [owner, repo] = parts as [string, string | undefined];
  if (!ownerPattern.test(owner)) return { problem: `invalid owner in scope: ${scopeFormHint}` };
  const canonicalOwner = owner.toLowerCase();
  if (repo === undefined) return { scope: { kind: "org", text: canonicalOwner, owner: canonicalOwner } };
  const resolved = resolveRepositoryName(repo);
  if (resolved.problem !== undefined) return { problem: resolved.problem };
  return {
    scope: {
      kind: "repo",
      text: `${canonicalOwner}/${resolved.name}`,
      owner: canonicalOwner,
      repo: resolved.name,
    },
  };
}

/** A repository name as GitHub resolves it: lower case, the reserved `.git` suffix removed once; `.wiki` refused. */
function resolveRepositoryName(repo: string): { name: string; problem?: undefined } | { problem: string } {
  // Checked before folding, for the reason given in parseScope.
  if (!/^[A-Za-z0-9._-]+$/.test(repo)) return { problem: `invalid repository in scope: ${scopeFormHint}` };
  const lower = repo.toLowerCase();
  const name = lower.endsWith(gitSuffix) ? lower.slice(0, -gitSuffix.length) : lower;
  if (name.endsWith(gitSuffix) || name.length === 0) {
    return {
      problem:
        "invalid repository in scope: '.git' alone or twice names no repository (GitHub resolves REPO.git to REPO; write OWNER/REPO)",
    };
  }
  // No repository has such a name, and what GitHub would resolve it to is its business: refused.
  if (name.endsWith(wikiSuffix)) {
    return { problem: "invalid repository in scope: a name ending in '.wiki' is a wiki, not a repository" };
  }
  // `.` and `..` (and any all-dot name) are path segments, not repositories.
  if (!repoPattern.test(name) || /^\.+$/.test(name)) {
    return { problem: `invalid repository in scope: ${scopeFormHint}` };
  }
  return { name };
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
