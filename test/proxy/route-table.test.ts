import { describe, expect, it } from "vitest";
import type { CompiledRoute } from "../../src/config/types.js";
import { createRouteTable, upstreamPathFor } from "../../src/proxy/index.js";
import { testRoute } from "./harness.js";

const upstream = new URL("http://127.0.0.1:1");
const route = (name: string, pathPrefix: string, host?: string): CompiledRoute =>
  testRoute({ name, pathPrefix, upstream, ...(host === undefined ? {} : { host }) });

describe("createRouteTable", () => {
  const table = createRouteTable([
    route("root", "/"),
    route("api", "/api"),
    route("api-v2", "/api/v2/"),
    route("artifacts", "/artifacts/"),
    route("artifacts-internal", "/artifacts/", "internal.example.com"),
    route("deep", "/a/b/c/d"),
  ]);

  const cases: [host: string | undefined, path: string, expected: string | undefined][] = [
    [undefined, "/api", "api"],
    [undefined, "/api/users", "api"],
    [undefined, "/api/v2", "api-v2"],
    [undefined, "/api/v2/", "api-v2"],
    [undefined, "/api/v2/x", "api-v2"],
    [undefined, "/api/v20", "api"],
    [undefined, "/apix", "root"],
    [undefined, "/artifacts", "artifacts"],
    [undefined, "/artifacts/", "artifacts"],
    [undefined, "/artifacts/a.zip", "artifacts"],
    [undefined, "/artifactsx", "root"],
    ["internal.example.com", "/artifacts/a.zip", "artifacts-internal"],
    ["INTERNAL.example.com:8443", "/artifacts/a.zip", "artifacts-internal"],
    ["internal.example.com.", "/artifacts", "artifacts-internal"],
    ["other.example.com", "/artifacts/a.zip", "artifacts"],
    ["internal.example.com", "/api/x", "api"],
    [undefined, "/a/b/c/d/e", "deep"],
    [undefined, "/a/b/c", "root"],
    [undefined, "/", "root"],
  ];

  it.each(cases)("host %j path %j → %j", (host, path, expected) => {
    expect(table.match(host, path)?.name).toBe(expected);
  });

  it("finds nothing without a catch-all route (deny by default)", () => {
    const noRoot = createRouteTable([route("api", "/api"), route("only-host", "/x/", "a.example")]);
    expect(noRoot.match(undefined, "/")).toBeUndefined();
    expect(noRoot.match(undefined, "/apix")).toBeUndefined();
    expect(noRoot.match(undefined, "/ap")).toBeUndefined();
    expect(noRoot.match("b.example", "/x/y")).toBeUndefined();
    expect(noRoot.match(undefined, "/x/y")).toBeUndefined();
    expect(noRoot.match("a.example", "/x/y")?.name).toBe("only-host");
  });

  it("prefers the longest prefix over a host-bound shorter one", () => {
    const t = createRouteTable([route("host-short", "/a/", "h.example"), route("any-long", "/a/b/")]);
    expect(t.match("h.example", "/a/b/c")?.name).toBe("any-long");
    expect(t.match("h.example", "/a/c")?.name).toBe("host-short");
  });

  it("keeps the first of two identical routes", () => {
    const t = createRouteTable([route("first", "/same/"), route("second", "/same/")]);
    expect(t.match(undefined, "/same/x")?.name).toBe("first");
  });

  it("exposes the routes it was built from", () => {
    const routes = [route("r", "/r")];
    expect(createRouteTable(routes).routes).toBe(routes);
  });
});

describe("upstreamPathFor", () => {
  const cases: [prefix: string, strip: boolean, path: string, expected: string][] = [
    ["/artifacts/", true, "/artifacts/a/b.zip", "/a/b.zip"],
    ["/artifacts/", true, "/artifacts/", "/"],
    ["/artifacts/", true, "/artifacts", "/"],
    ["/api", true, "/api/x", "/x"],
    ["/api", true, "/api", "/"],
    ["/", true, "/x/y", "/x/y"],
    ["/artifacts/", false, "/artifacts/a", "/artifacts/a"],
  ];
  it.each(cases)("prefix %j strip %j: %j → %j", (pathPrefix, stripPrefix, path, expected) => {
    expect(upstreamPathFor({ pathPrefix, stripPrefix }, path)).toBe(expected);
  });
});
