import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compileScopePatterns,
  compileScopeTemplate,
  evaluateScopeRules,
  parseScope,
  runnersPath,
} from "../../src/broker/index.js";
import type { Scope } from "../../src/broker/types.js";
import { propertySettings } from "../helpers/property.js";
import { compileRules, scopeOf } from "./scope-helpers.js";

/**
 * Defect class 4 of issue 12: scope spellings that GitHub resolves to the same repository. GitHub
 * compares owner and repository names case-insensitively and resolves a repository name with the
 * reserved `.git` suffix (in any case) to the repository itself, so `octo-org/payroll`,
 * `Octo-Org/PAYROLL` and `octo-org/payroll.GiT` are one repository: every rule, cache key and GitHub URL
 * must see one spelling of it. Canonical scopes are generated first; spellings are derived from them.
 */

/** A scope as the generator built it: canonical by construction, independent of `parseScope`. */
interface Canonical {
  kind: Scope["kind"];
  text: string;
  owner: string;
  repo?: string;
}

const lowerAlnum = [..."abcdefghijklmnopqrstuvwxyz0123456789"];
const words = ["payroll", "app", "git", "github", "gi", "x", "octo", "repo", "wiki", "api"];
const separators = ["-", ".", "_", ""];

/** Words joined by separators: names that look like GitHub's, and that often end in `git`-ish text. */
const wordy = fc
  .array(fc.tuple(fc.constantFrom(...separators), fc.constantFrom(...words)), { minLength: 1, maxLength: 4 })
  .map((parts) => parts.map(([separator, word], index) => (index === 0 ? word : separator + word)).join(""));

const ownerArb = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(...lowerAlnum),
      fc.string({ unit: fc.constantFrom(...lowerAlnum, "-", "_"), maxLength: 38 }),
    )
    .map(([first, rest]) => first + rest),
  wordy.map((name) => name.replace(/\./g, "-")).filter((name) => name.length <= 39),
  fc.constantFrom("octo-org", "octocat", "octocat_corp"),
);

/** Canonical repository names: never `.`/`..`, never ending in the `.git` or `.wiki` GitHub reserves. */
const repoArb = fc
  .oneof(
    fc.string({ unit: fc.constantFrom(...lowerAlnum, ".", "-", "_"), minLength: 1, maxLength: 100 }),
    wordy,
    fc.constantFrom(".github", "payroll", "payroll-git", "payrollgit", "payroll.gitx", "git", "-", "_"),
  )
  .filter(
    (name) => name.length <= 100 && !/^\.+$/.test(name) && !name.endsWith(".git") && !name.endsWith(".wiki"),
  );

const enterpriseArb = fc
  .tuple(
    fc.constantFrom(...lowerAlnum),
    fc.string({ unit: fc.constantFrom(...lowerAlnum, "-"), maxLength: 99 }),
  )
  .map(([first, rest]) => first + rest);

const canonicalArb: fc.Arbitrary<Canonical> = fc.oneof(
  { weight: 1, arbitrary: ownerArb.map((owner) => ({ kind: "org" as const, text: owner, owner })) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(ownerArb, repoArb)
      .map(([owner, repo]) => ({ kind: "repo" as const, text: `${owner}/${repo}`, owner, repo })),
  },
  {
    weight: 1,
    arbitrary: enterpriseArb.map((slug) => ({
      kind: "enterprise" as const,
      text: `enterprise:${slug}`,
      owner: slug,
    })),
  },
);

/** `text` with each letter in a random case. */
function anyCase(text: string): fc.Arbitrary<string> {
  return fc
    .array(fc.boolean(), { minLength: text.length, maxLength: text.length })
    .map((upper) => [...text].map((char, index) => (upper[index] ? char.toUpperCase() : char)).join(""));
}

/** Every spelling GitHub resolves to the scope: any case throughout, and for a repository the `.git` suffix in any case. */
function spellingOf(scope: Canonical): fc.Arbitrary<string> {
  if (scope.kind !== "repo") return anyCase(scope.text);
  return fc
    .tuple(anyCase(scope.owner), anyCase(scope.repo!), fc.oneof(fc.constant(""), anyCase(".git")))
    .map(([owner, repo, suffix]) => `${owner}/${repo}${suffix}`);
}

/** RE2 text matching exactly `text` (scope characters: only `.` is special). */
function quoted(text: string): string {
  return text.replace(/\./g, "\\.");
}

/** A scope-list entry that names the scope: a literal in any spelling, or a `match:` pattern for it. */
function entryNaming(scope: Canonical): fc.Arbitrary<string> {
  const entries = [
    spellingOf(scope),
    anyCase(quoted(scope.text)).map((pattern) => `match:${pattern}`),
    anyCase(quoted(scope.text)).map((pattern) => `match:${pattern}(?:\\.git)?`),
  ];
  if (scope.kind === "repo") entries.push(anyCase(quoted(scope.owner)).map((owner) => `match:${owner}/.*`));
  return fc.oneof(...entries);
}

/** A scope with its spelling, two entries naming it, and unrelated entries to surround them. */
const namedArb = canonicalArb.chain((scope) =>
  fc.record({
    scope: fc.constant(scope),
    spelling: spellingOf(scope),
    other: spellingOf(scope),
    entry: entryNaming(scope),
    noise: fc.array(canonicalArb.chain(spellingOf), { maxLength: 3 }),
  }),
);

describe("scope spellings GitHub resolves to one repository (issue 12, class 4)", () => {
  // Every spelling GitHub resolves to a scope is refused by a deny entry naming it in any spelling, and admitted by the allow twin.
  it("deny and allow entries see every spelling of their scope", () => {
    fc.assert(
      fc.property(namedArb, ({ scope, spelling, entry, noise }) => {
        const candidate = scopeOf(spelling);
        const unrelated = noise.filter((text) => scopeOf(text).text !== scope.text);
        const denied = evaluateScopeRules(compileRules(["match:.*"], [...unrelated, entry]), candidate);
        expect(denied).toMatchObject({ allowed: false, reason: "scope-denied" });
        const allowed = evaluateScopeRules(compileRules([...unrelated, entry], []), candidate);
        expect(allowed).toMatchObject({ allowed: true, reason: "scope-allowed" });
        // A grant's scope list is the same kind of list: a literal or `match:` entry, or a claim naming the scope.
        expect(compileScopeTemplate(entry).template!.match(candidate, {}).ok).toBe(true);
        const claimed = compileScopeTemplate("{repository}").template!;
        expect(claimed.match(candidate, { repository: spelling }).ok).toBe(true);
      }),
      propertySettings(2_000),
    );
  });

  // parseScope is idempotent, and two spellings of one scope parse to one text, owner, repository and GitHub path.
  it("one spelling per scope", () => {
    fc.assert(
      fc.property(namedArb, ({ scope, spelling, other }) => {
        const first = scopeOf(spelling);
        const second = scopeOf(other);
        expect(first).toEqual(second);
        expect(first.text).toBe(scope.text);
        expect(runnersPath(first)).toBe(runnersPath(second));
        expect(scopeOf(first.text)).toEqual(first);
      }),
      propertySettings(2_000),
    );
  });

  // Whatever text parseScope accepts, its canonical text parses to itself and never ends in `.git` or has a capital.
  it("canonical text is a fixed point", () => {
    const scopeish = fc.string({ unit: fc.constantFrom(..."aZ0-_./:gGiItT"), minLength: 1, maxLength: 24 });
    fc.assert(
      fc.property(fc.oneof(scopeish, canonicalArb.chain(spellingOf)), (text) => {
        const parsed = parseScope(text);
        if (parsed.problem !== undefined) return;
        expect(scopeOf(parsed.scope.text)).toEqual(parsed.scope);
        expect(parsed.scope.text).toBe(parsed.scope.text.toLowerCase());
        expect(parsed.scope.text.endsWith(".git")).toBe(false);
      }),
      propertySettings(3_000),
    );
  });

  // Distinct repositories stay distinct: a near-miss name (`payroll-git`, `payrollgit`, `payroll.gitx`) is neither merged nor denied with its neighbour.
  it("no over-merging", () => {
    const nearMiss = fc.constantFrom(
      "-git",
      "git",
      "_git",
      ".gi",
      ".gitx",
      ".git-x",
      ".git.x",
      "-git.x",
      "x",
    );
    const pairArb = fc
      .tuple(ownerArb, repoArb, nearMiss)
      .map(([owner, repo, tail]) => ({ owner, repo, neighbour: repo + tail }))
      .filter(({ neighbour }) => neighbour.length <= 100 && !/\.(?:git|wiki)$/.test(neighbour))
      .chain((pair) =>
        fc.record({
          pair: fc.constant(pair),
          scope: spellingOf({ kind: "repo", text: "", owner: pair.owner, repo: pair.repo }),
          neighbour: spellingOf({ kind: "repo", text: "", owner: pair.owner, repo: pair.neighbour }),
        }),
      );
    fc.assert(
      fc.property(pairArb, ({ pair, scope, neighbour }) => {
        const parsedNeighbour = scopeOf(neighbour);
        expect(parsedNeighbour.text).toBe(`${pair.owner}/${pair.neighbour}`);
        expect(parsedNeighbour.text).not.toBe(scopeOf(scope).text);
        const rules = compileRules(["match:.*"], [scope, `match:${quoted(`${pair.owner}/${pair.repo}`)}`]);
        expect(evaluateScopeRules(rules, parsedNeighbour).allowed).toBe(true);
      }),
      propertySettings(1_000),
    );
  });

  // A name that is only the `.git` suffix, ends in it twice (`x.git.git`) or ends in `.wiki` (any case) names no repository of its own and is refused.
  it("refuses names that GitHub reserves", () => {
    const reserved = fc.oneof(
      fc
        .tuple(ownerArb, fc.oneof(repoArb, fc.constant("")), anyCase(".git"), anyCase(".git"))
        .map(([owner, repo, first, second]) => `${owner}/${repo}${first}${repo === "" ? "" : second}`),
      fc
        .tuple(ownerArb, repoArb, anyCase(".wiki"), fc.oneof(fc.constant(""), anyCase(".git")))
        .map(([owner, repo, wiki, git]) => `${owner}/${repo.slice(0, 90)}${wiki}${git}`),
    );
    fc.assert(
      fc.property(reserved, (text) => {
        expect(parseScope(text).problem).toBeDefined();
        const { problems } = compileScopePatterns([text], "denied_scopes");
        expect(problems).toHaveLength(1);
      }),
      propertySettings(500),
    );
  });
});
