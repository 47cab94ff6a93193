import { describe, expect, it } from "vitest";
import { normalizeRequestPath } from "../../src/proxy/index.js";

// [raw request target, expected path (undefined = refused), expected search]
const accepted: [string, string, string][] = [
  ["/", "/", ""],
  ["/artifacts/build.zip", "/artifacts/build.zip", ""],
  ["/artifacts/", "/artifacts/", ""],
  ["/a/b?x=1&y=%2F..", "/a/b", "?x=1&y=%2F.."],
  ["/?", "/", "?"],
  ["/a?b?c", "/a", "?b?c"],
  ["/prefix/../admin", "/admin", ""],
  ["/prefix/%2e%2e/admin", "/admin", ""],
  ["/prefix/%2E%2E/admin", "/admin", ""],
  ["/prefix/.%2e/admin", "/admin", ""],
  ["/a/./b", "/a/b", ""],
  ["/a/.", "/a/", ""],
  ["/a/b/..", "/a/", ""],
  ["/a/..", "/", ""],
  ["//a//b//", "/a/b/", ""],
  ["//", "/", ""],
  ["/%61%62c", "/abc", ""],
  ["/a%7eb%2D_%2e", "/a~b-_.", ""],
  ["/a%20b%3a", "/a%20b%3A", ""],
  ["/.well-known/openid-configuration", "/.well-known/openid-configuration", ""],
  ["/a/...", "/a/...", ""],
  ["/a/..b/c", "/a/..b/c", ""],
  ["/a;x/b", "/a;x/b", ""],
  ["/a/%2541", "/a/%2541", ""],
  ["/a/100%25off", "/a/100%25off", ""],
  ["/caf%C3%A9/%c3%a9", "/caf%C3%A9/%C3%A9", ""],
  ["/legacy/%E9t%E9", "/legacy/%E9t%E9", ""],
  ["/a/x%3By", "/a/x%3By", ""],
  ["/a/.x;y", "/a/.x;y", ""],
  // A literal `%` that no further decoding turns into anything dangerous (issue 12, class 1).
  ["/a/%25zz", "/a/%25zz", ""],
  ["/a/%2525", "/a/%2525", ""],
  ["/a/%25%34%31", "/a/%2541", ""],
  ["/a/%25252e.txt", "/a/%25252e.txt", ""],
  ["/a/x..%3F", "/a/x..%3F", ""],
];

const refused: string[] = [
  "",
  "*",
  "http://example.com/a",
  "a/b",
  "/..",
  "/../a",
  "/a/../..",
  "/%2e%2e/a",
  "/a/%2f/b",
  "/a/%2F..%2Fadmin",
  "/a/%5c..%5cadmin",
  "/a\\..\\admin",
  "/a\\b",
  "/a/\u0000b",
  "/a/%00b",
  "/a/%0d%0ab",
  "/a/%7fb",
  "/a/\tb",
  "/a b",
  "/a/%zz",
  "/a/%2",
  "/a/%",
  "/a#frag",
  "/a?x#frag",
  "/a?x\u0001",
  "/caf\u00e9",
  "/prefix/..;/admin",
  "/prefix/.;/admin",
  "/prefix/%2e%2e;x/admin",
  "/prefix/%252e%252e/admin",
  "/prefix/%252f",
  "/prefix/%255C",
  "/prefix/..%3b/admin",
  "/prefix/%2e%3B/admin",
  "/prefix/%c0%ae%c0%ae/admin",
  "/prefix/%C0%AF",
  "/prefix/%e0%80%ae",
  "/prefix/%f0%80%80%ae",
  // Escapes of escapes: a second, third … decoding by the upstream yields `.`/`..`, `/`, `\`, a control.
  "/prefix/%25%32%65%25%32%65/admin",
  "/prefix/%25%32e%25%32E/admin",
  "/prefix/%2525%32%65%2525%32%65/admin",
  "/prefix/%25252e%25252e/admin",
  "/prefix/%25%32%66admin",
  "/prefix/%25%35%63admin",
  "/prefix/%2500",
  "/prefix/.%253B/admin",
  "/prefix/%25C0%25AE",
  "/prefix/%C0%25AE",
  "/prefix/%25u002e%25u002e/admin",
  // `..?` and `..#`: `..` to a decoder that re-parses the decoded path.
  "/prefix/..%3F/admin",
  "/prefix/..%23",
];

describe("normalizeRequestPath", () => {
  it.each(accepted)("accepts %j as %j", (raw, path, search) => {
    expect(normalizeRequestPath(raw)).toEqual({ path, search });
  });

  it.each(refused)("refuses %j", (raw) => {
    expect(normalizeRequestPath(raw)).toBeUndefined();
  });

  it("keeps a traversal from escaping a prefix: the normalised path no longer starts with it", () => {
    for (const raw of ["/prefix/../admin", "/prefix/%2e%2e/admin", "/prefix/x/../../admin"]) {
      const result = normalizeRequestPath(raw);
      expect(result?.path).toBe("/admin");
      expect(result?.path.startsWith("/prefix/")).toBe(false);
    }
  });

  it("returns the input unchanged (same path text) when nothing needs rewriting", () => {
    expect(normalizeRequestPath("/a/b-c_d~e/f.txt")).toEqual({ path: "/a/b-c_d~e/f.txt", search: "" });
  });
});
