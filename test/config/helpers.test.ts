import { describe, expect, it } from "vitest";
import { formatPath, parsePath } from "../../src/config/index.js";
import { closestMatch } from "../../src/config/suggest.js";

describe("closestMatch", () => {
  it("finds keys written in another case or separator style, or with a small typo", () => {
    const keys = ["path_prefix", "upstream", "strip_prefix", "host"];
    expect(closestMatch("pathPrefix", keys)).toBe("path_prefix");
    expect(closestMatch("path-prefix", keys)).toBe("path_prefix");
    expect(closestMatch("upstrem", keys)).toBe("upstream");
    expect(closestMatch("hsot", keys)).toBe("host");
  });

  it("suggests nothing for an unrelated word", () => {
    expect(closestMatch("colour", ["listen", "issuers", "policies"])).toBeUndefined();
    expect(closestMatch("x", ["listen"])).toBeUndefined();
  });
});

describe("config paths", () => {
  it("round-trip through their printed form, including keys that are not plain words", () => {
    const paths: (string | number)[][] = [
      ["routes", 0, "upstream"],
      ["policies", "org-ci", "claims", "repository"],
      ["policies", "a.b", "claims", "https://example.com/claim", "not", 2],
      ["$PORT"],
    ];
    for (const path of paths) expect(parsePath(formatPath(path))).toEqual(path);
    expect(formatPath(["routes", 0, "upstream"])).toBe("routes[0].upstream");
    expect(formatPath(["policies", "a.b"])).toBe('policies["a.b"]');
  });
});
