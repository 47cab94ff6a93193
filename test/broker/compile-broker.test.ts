import { describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";

const issuer = `issuers:
  - name: github
    preset: github
    audiences: [tollgate.example.com]
policies:
  org-ci:
    claims:
      repository_owner_id: 65
      event_name: push
`;

const compile = (yaml: string, env: NodeJS.ProcessEnv = {}) =>
  compileConfigText(yaml, { env, sourceName: "test.yaml" });

describe("compiling the broker section", () => {
  it("applies defaults: oidc, api.github.com, 10s, nothing allowed, no warning", () => {
    const { config, warnings } = compile(
      `${issuer}broker:\n  grants:\n    - allow: [org-ci]\n      actions: [register]\n      scopes: ["{repository}"]\n`,
    );
    expect(config?.compiledBroker).toMatchObject({
      authorization: "oidc",
      apiUrl: "https://api.github.com",
      timeoutMs: 10_000,
    });
    expect(config?.compiledBroker?.scopes.allow).toEqual([]);
    // An empty allow list is legal (it refuses everything); the broker says so at start-up.
    expect(warnings).toEqual([]);
  });

  it("GITHUB_API_URL, ALLOWED_SCOPES and DENIED_SCOPES override the file, and say so", () => {
    const yaml = `${issuer}broker:\n  github:\n    api_url: https://ghe.example.com/api/v3/\n  allowed_scopes: [octo-org]\n  grants:\n    - allow: [org-ci]\n      actions: [register]\n      scopes: ["{repository}"]\n`;
    const fileOnly = compile(yaml).config!.compiledBroker!;
    expect(fileOnly.apiUrl).toBe("https://ghe.example.com/api/v3");
    expect(fileOnly.scopes.allow.map((pattern) => pattern.source)).toEqual(["octo-org"]);
    const { config, warnings } = compile(yaml, {
      GITHUB_API_URL: "https://other.example.com/api/v3",
      ALLOWED_SCOPES: "a-org; match:b-org/.*",
      DENIED_SCOPES: "b-org/secret",
    });
    const broker = config!.compiledBroker!;
    expect(broker.apiUrl).toBe("https://other.example.com/api/v3");
    expect(broker.scopes.allow.map((pattern) => pattern.source)).toEqual(["a-org", "match:b-org/.*"]);
    expect(broker.scopes.allowOrigin).toBe("ALLOWED_SCOPES");
    expect(broker.scopes.deny.map((pattern) => pattern.source)).toEqual(["b-org/secret"]);
    expect(warnings.map((warning) => warning.id)).toContain("broker-scopes-from-environment");
  });

  it("an invalid pattern is a problem with a fix, pointing at the entry or the variable", () => {
    const fromFile = compile(`${issuer}broker:\n  allowed_scopes: ["match:*"]\n`);
    expect(fromFile.config).toBeUndefined();
    expect(fromFile.problems).toEqual([
      expect.objectContaining({
        path: "broker.allowed_scopes[0]",
        line: 11,
        fix: expect.stringContaining("match:.*"),
      }),
    ]);
    const fromEnv = compile(`${issuer}broker: {}\n`, { DENIED_SCOPES: "ok-org;match:(" });
    expect(fromEnv.problems).toEqual([expect.objectContaining({ path: "$DENIED_SCOPES" })]);
  });

  it("a glob-looking pattern is a warning that check prints with its line", () => {
    const { config, warnings } = compile(`${issuer}broker:\n  allowed_scopes:\n    - "match:octo-org/*"\n`);
    expect(config).toBeDefined();
    expect(warnings).toContainEqual(
      expect.objectContaining({
        id: "scope-pattern-looks-like-glob",
        path: "broker.allowed_scopes[0]",
        line: 12,
      }),
    );
  });

  it("authorization: oidc without an issuer is a problem; authorization: none without one is fine", () => {
    const oidc = compile("broker:\n  allowed_scopes: [octo-org]\n");
    expect(oidc.problems).toEqual([expect.objectContaining({ path: "broker.authorization" })]);
    const none = compile("broker:\n  authorization: none\n  allowed_scopes: [octo-org]\n");
    expect(none.problems).toEqual([]);
    expect(none.config?.issuers).toEqual([]);
    expect(none.config?.compiledBroker?.grants).toEqual([]);
  });

  it("plain http is refused except on loopback", () => {
    const base = "broker:\n  authorization: none\n";
    expect(compile(`${base}  github:\n    api_url: http://ghe.internal/api/v3\n`).problems).toEqual([
      expect.objectContaining({ path: "broker.github.api_url", message: expect.stringContaining("https") }),
    ]);
    expect(compile(`${base}  github:\n    api_url: http://127.0.0.1:9999\n`).problems).toEqual([]);
    expect(compile(base, { GITHUB_API_URL: "http://ghe.internal" }).problems).toEqual([
      expect.objectContaining({ path: "$GITHUB_API_URL" }),
    ]);
    expect(
      compile(base, { GITHUB_API_URL: "https://user:pw@ghe.internal" }).problems[0]?.message,
    ).not.toContain("pw");
  });

  it("a grant scope that can never be a scope is a problem at its path", () => {
    const { problems } = compile(
      `${issuer}broker:\n  allowed_scopes: [octo-org]\n  grants:\n    - allow: [org-ci]\n      actions: [register]\n      scopes: ["{repository}/x/y", "{repository}"]\n`,
    );
    expect(problems).toEqual([expect.objectContaining({ path: "broker.grants[0].scopes[0]" })]);
  });

  it("the compiled section is frozen", () => {
    const broker = compile("broker:\n  authorization: none\n  allowed_scopes: [octo-org]\n").config!
      .compiledBroker!;
    expect(() => (broker.scopes.allow as unknown[]).push({})).toThrow(TypeError);
    expect(broker.scopes.allow[0]!.test("octo-org")).toBe(true);
  });
});
