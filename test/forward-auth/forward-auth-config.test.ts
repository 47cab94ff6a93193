import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";

// What `tollgate check` says of route modes and server.forward_auth: the compiler's problems are what it
// prints, with path, line and fix.
const base = `issuers:
  - { name: gh, preset: github, audiences: [tollgate.example.com] }
policies:
  ci: { claims: { repository_owner_id: 5678 } }
`;

function problemsOf(text: string) {
  const result = compileConfigText(text, { sourceName: "t.yaml" });
  return { config: result.config, problems: result.problems };
}

describe("route mode and server.forward_auth in the configuration", () => {
  it("compiles a forward_auth route without upstream, and the endpoint with its defaults", () => {
    const { config, problems } = problemsOf(`${base}server: { forward_auth: {} }
routes:
  - { name: a, mode: forward_auth, path_prefix: /a/, allow: [ci], forward_claims: [repository] }
  - { name: b, path_prefix: /b/, upstream: "http://b.internal:80", allow: [ci] }
`);
    expect(problems).toEqual([]);
    expect(config?.server.forwardAuth).toEqual({ path: "/_tollgate/auth", maxAgeMs: 60_000 });
    const [a, b] = config!.routes;
    expect(a).toMatchObject({ mode: "forward_auth", forwardClaims: ["repository"] });
    expect(a?.upstream).toBeUndefined();
    expect(b).toMatchObject({ mode: "proxy", stripPrefix: false, timeoutMs: 30_000 });
    expect(b?.upstream?.origin).toBe("http://b.internal");
  });

  it("refuses a route the gateway would answer itself: under /_tollgate/, or at or below server.forward_auth.path", () => {
    const { problems } = problemsOf(`${base}server: { forward_auth: { path: /auth } }
routes:
  - { name: own, path_prefix: /_tollgate/x/, upstream: "http://a.internal:80", allow: [ci] }
  - { name: cased, path_prefix: /_Tollgate/, upstream: "http://a.internal:80", allow: [ci] }
  - { name: at, path_prefix: /auth, upstream: "http://a.internal:80", allow: [ci] }
  - { name: below, path_prefix: /auth/x/, upstream: "http://a.internal:80", allow: [ci] }
  - { name: beside, path_prefix: /authority/, upstream: "http://a.internal:80", allow: [ci] }
`);
    expect(problems.map((problem) => problem.path)).toEqual([
      "routes[0].path_prefix",
      "routes[1].path_prefix",
      "routes[2].path_prefix",
      "routes[3].path_prefix",
    ]);
    expect(problems[0]?.message).toContain("/_tollgate/whoami");
    expect(problems[2]?.message).toContain("server.forward_auth.path is /auth");
  });

  it("twin: without server.forward_auth, only /_tollgate/ is reserved", () => {
    const { problems } = problemsOf(`${base}routes:
  - { name: at, path_prefix: /auth/, upstream: "http://a.internal:80", allow: [ci] }
  - { name: top, path_prefix: /, upstream: "http://a.internal:80", allow: [ci] }
`);
    expect(problems).toEqual([]);
  });

  it("is off by default", () => {
    const { config } = problemsOf(`${base}routes:
  - { name: b, path_prefix: /b/, upstream: "http://b.internal:80", allow: [ci] }
`);
    expect(config?.server.forwardAuth).toBeUndefined();
  });

  it("refuses upstream, strip_prefix, timeout and via on a forward_auth route, each with its fix", () => {
    const { config, problems } = problemsOf(`${base}routes:
  - name: a
    mode: forward_auth
    path_prefix: /a/
    upstream: "http://a.internal:80"
    strip_prefix: true
    timeout: 5s
    allow: [ci]
`);
    expect(config).toBeUndefined();
    expect(problems.map((problem) => problem.path)).toEqual([
      "routes[0].upstream",
      "routes[0].strip_prefix",
      "routes[0].timeout",
    ]);
    expect(problems[0]?.message).toContain("mode: forward_auth");
    expect(problems[0]?.fix).toContain("remove upstream");
    expect(problems[0]?.line).toBe(9);
  });

  it("refuses a proxy route (the default mode) without an upstream, naming both ways out", () => {
    const { config, problems } = problemsOf(`${base}routes:
  - { name: a, path_prefix: /a/, allow: [ci] }
`);
    expect(config).toBeUndefined();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path: "routes[0].upstream" });
    expect(problems[0]?.message).toContain("no upstream");
    expect(problems[0]?.fix).toContain("mode: forward_auth");
  });

  it("refuses an unknown mode and a malformed endpoint path or max_age", () => {
    const { problems } = problemsOf(`${base}server: { forward_auth: { path: "auth/", max_age: 10 } }
routes:
  - { name: a, mode: ingress, path_prefix: /a/, allow: [ci] }
`);
    const paths = problems.map((problem) => problem.path);
    expect(paths).toContain("routes[0].mode");
    expect(paths).toContain("server.forward_auth.path");
    expect(paths).toContain("server.forward_auth.max_age");
    // The mode is wrong, so the missing upstream is not reported on top of it.
    expect(paths).not.toContain("routes[0].upstream");
  });

  it("takes a custom path and max_age", () => {
    const { config, problems } =
      problemsOf(`${base}server: { forward_auth: { path: /auth/check, max_age: 0s } }
routes:
  - { name: a, mode: forward_auth, path_prefix: /a/, allow: [ci] }
`);
    expect(problems).toEqual([]);
    expect(config?.server.forwardAuth).toEqual({ path: "/auth/check", maxAgeMs: 0 });
  });

  it("examples/ingress/tollgate.yaml passes tollgate check without a problem or warning", async () => {
    const text = await readFile(new URL("../../examples/ingress/tollgate.yaml", import.meta.url), "utf8");
    const result = compileConfigText(text, { sourceName: "examples/ingress/tollgate.yaml" });
    expect(result.problems).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.config?.server.forwardAuth).toEqual({ path: "/_tollgate/auth", maxAgeMs: 60_000 });
    expect(result.config?.routes.map((route) => route.mode)).toEqual(["forward_auth"]);
  });
});
