import { RE2JS } from "re2js";

/** True when the glob has a wildcard (`*` or `?`); a glob without one is an exact value. */
export function globHasWildcard(glob: string): boolean {
  return glob.includes("*") || glob.includes("?");
}

/**
 * The literal text a glob starts with, up to its first wildcard. Used to decide whether a glob on
 * `repository` names its owner (`octo-org/*` does, `*\/*` and `octo-*` do not).
 */
export function globLiteralPrefix(glob: string): string {
  const star = glob.indexOf("*");
  const question = glob.indexOf("?");
  const cut = Math.min(star === -1 ? glob.length : star, question === -1 ? glob.length : question);
  return glob.slice(0, cut);
}

/**
 * Translates a claim glob into an RE2 pattern meant for a whole-value match.
 *
 * - `*` — any run of characters except `/` (so `octo-org/*` never reaches `octo-org/a/b`);
 * - `**` (two or more stars) — any run of characters, `/` and newlines included;
 * - `?` — exactly one character other than `/`: like `*`, it never crosses a `/`, so
 *   `octo-org?repo` cannot stand for `octo-org/repo`;
 * - everything else, backslash included, is literal.
 *
 * @example
 * globToRe2("refs/heads/release/*"); // "refs/heads/release/[^/]*"
 */
export function globToRe2(glob: string): string {
  let pattern = "";
  let literal = "";
  let i = 0;
  while (i < glob.length) {
    const char = glob[i]!;
    if (char !== "*" && char !== "?") {
      literal += char;
      i += 1;
      continue;
    }
    if (literal !== "") {
      pattern += RE2JS.quote(literal);
      literal = "";
    }
    if (char === "?") {
      pattern += "[^/]";
      i += 1;
      continue;
    }
    let stars = 0;
    while (glob[i] === "*") {
      stars += 1;
      i += 1;
    }
    pattern += stars === 1 ? "[^/]*" : "(?s:.*)";
  }
  if (literal !== "") pattern += RE2JS.quote(literal);
  return pattern;
}
