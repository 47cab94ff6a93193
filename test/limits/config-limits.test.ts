import { describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";

/** What `tollgate check` says of rate_limit, single_use and listen.auth_failures. */

const issuers = `issuers:
  - name: github
    preset: github
    audiences: [tollgate.example.com]
  - name: corp
    issuer: https://idp.corp.example
    audiences: [tollgate]
policies:
  ci:
    issuer: github
    claims:
      repository_owner_id: 5678
  corp-team:
    issuer: corp
    claims:
      sub: svc-deployer
      team: platform
`;

function compile(body: string) {
  return compileConfigText(`${issuers}${body}`, { env: {}, sourceName: "limits.yaml" });
}

const route = (rateLimit: string, allow = "[ci]", extra = "") => `routes:
  - name: api
    path_prefix: /api/
    upstream: http://api.internal:8080
    allow: ${allow}
    rate_limit: ${rateLimit}
${extra}`;

describe("rate_limit in tollgate check", () => {
  it("compiles a limit keyed by a claim, with its defaults", () => {
    const { config, problems } = compile(route("{ requests: 60, per: 1m, key: repository_id }"));
    expect(problems).toEqual([]);
    expect(config?.routes[0]?.rateLimit).toEqual({
      id: "route:api",
      requests: 60,
      perSeconds: 60,
      burst: 0,
      key: { kind: "claim", claim: "repository_id" },
      onStoreError: "allow",
    });
  });

  it("refuses a key that is neither a known claim nor one the route's policies name, and suggests the nearest", () => {
    const { problems } = compile(route("{ requests: 60, per: 1m, key: repositry_id }"));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({
      path: "routes[0].rate_limit.key",
      line: expect.any(Number),
      fix: "key: repository_id",
    });
  });

  it("twin: another issuer's claim is accepted when a policy of the route names it", () => {
    expect(compile(route("{ requests: 5, per: 10s, key: team }", "[corp-team]")).problems).toEqual([]);
    // … and refused where no policy of this route names it.
    expect(compile(route("{ requests: 5, per: 10s, key: team }", "[ci]")).problems[0]?.path).toBe(
      "routes[0].rate_limit.key",
    );
  });

  it("refuses windows the counters cannot keep: below 1s, not whole seconds, above 1d", () => {
    for (const per of ["500ms", "1500ms", "2d"]) {
      const { problems } = compile(route(`{ requests: 5, per: ${per}, key: repository_id }`));
      expect(problems.map((problem) => problem.path)).toEqual(["routes[0].rate_limit.per"]);
    }
  });

  it("warns on key: client_ip without server.trust_proxy (behind a load balancer all callers share one address)", () => {
    const without = compile(route("{ requests: 5, per: 10s, key: client_ip }"));
    expect(without.problems).toEqual([]);
    expect(without.warnings.map((warning) => warning.id)).toContain("rate-limit-client-ip-behind-proxy");
    const behind = compile(
      `${route("{ requests: 5, per: 10s, key: client_ip }")}server:\n  trust_proxy: true\n`,
    );
    expect(behind.warnings.map((warning) => warning.id)).not.toContain("rate-limit-client-ip-behind-proxy");
  });

  it("checks tunnels' and broker grants' limits the same way", () => {
    const body = `tunnels:
  - name: db
    destinations: ["db.internal:5432"]
    allow: [ci]
    rate_limit: { requests: 10, per: 1m, key: nope }
    concurrency: { max: 5, key: nope_either }
broker:
  grants:
    - allow: [ci]
      actions: [register]
      scopes: ["{repository}"]
      rate_limit: { requests: 10, per: 1m, key: also_nope }
      single_use: true
`;
    const { problems } = compile(body);
    expect(problems.map((problem) => problem.path).sort()).toEqual([
      "broker.grants[0].rate_limit.key",
      "tunnels[0].concurrency.key",
      "tunnels[0].rate_limit.key",
    ]);
    const fixed = compile(
      body
        .replace("key: nope_either", "key: repository_owner_id")
        .replace("key: nope", "key: repository_id")
        .replace("key: also_nope", "key: run_id"),
    );
    expect(fixed.problems).toEqual([]);
    expect(fixed.config?.compiledTunnels[0]?.rateLimit?.id).toBe("tunnel:db");
    expect(fixed.config?.compiledTunnels[0]?.concurrency).toEqual({
      id: "tunnel:db:concurrency",
      max: 5,
      key: { kind: "claim", claim: "repository_owner_id" },
      onStoreError: "allow",
    });
    expect(fixed.config?.compiledBroker?.grants[0]).toMatchObject({
      rateLimit: { id: "grant:0", key: { kind: "claim", claim: "run_id" } },
      singleUse: { onStoreError: "deny" },
    });
  });
});

describe("single_use and listen.auth_failures in tollgate check", () => {
  it("single_use: true denies on a store error by default; a mapping may choose allow; false is off", () => {
    const on = compile(
      route("{ requests: 5, per: 10s, key: repository_id }", "[ci]", "    single_use: true\n"),
    );
    expect(on.config?.routes[0]?.singleUse).toEqual({ onStoreError: "deny" });
    const allow = compile(
      route(
        "{ requests: 5, per: 10s, key: repository_id }",
        "[ci]",
        "    single_use: { on_store_error: allow }\n",
      ),
    );
    expect(allow.config?.routes[0]?.singleUse).toEqual({ onStoreError: "allow" });
    const off = compile(
      route("{ requests: 5, per: 10s, key: repository_id }", "[ci]", "    single_use: false\n"),
    );
    expect(off.config?.routes[0]?.singleUse).toBeUndefined();
  });

  it("listen.auth_failures compiles, and warns without server.trust_proxy", () => {
    const { config, warnings } = compile(`listen:\n  auth_failures: { max: 20, per: 1m }\n`);
    expect(config?.authFailures).toEqual({ max: 20, perSeconds: 60, onStoreError: "allow" });
    expect(warnings.map((warning) => warning.id)).toContain("auth-failures-behind-proxy");
    const trusted = compile(`listen:\n  auth_failures: { max: 20, per: 1m }\nserver:\n  trust_proxy: true\n`);
    expect(trusted.warnings.map((warning) => warning.id)).not.toContain("auth-failures-behind-proxy");
  });

  it("refuses a zero max and unknown fields", () => {
    expect(compile(`listen:\n  auth_failures: { max: 0, per: 1m }\n`).problems[0]?.path).toBe(
      "listen.auth_failures.max",
    );
    expect(compile(route("{ requests: 5, per: 10s, key: run_id, burts: 3 }")).problems[0]?.path).toMatch(
      /^routes\[0\]\.rate_limit/,
    );
  });
});

describe("the documented examples", () => {
  it("the README's abuse-controls block passes check with the README's issuer and policy", async () => {
    const { readFile } = await import("node:fs/promises");
    const readme = await readFile(new URL("../../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## Abuse controls"));
    const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toBeDefined();
    const base = `issuers:
  - name: github
    preset: github
    audiences: [tollgate.example.com]
policies:
  main-deploys:
    claims:
      repository_owner_id: 5678
      repository_id: 1234
      ref: refs/heads/main
      event_name: { not: [pull_request_target, workflow_run] }
`;
    const result = compileConfigText(`${base}${block}`, { env: {}, sourceName: "README.md" });
    expect(result.problems).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.config?.routes[0]).toMatchObject({
      rateLimit: { id: "route:artifacts", requests: 600, burst: 100 },
      singleUse: { onStoreError: "deny" },
    });
    expect(result.config?.authFailures).toEqual({ max: 20, perSeconds: 60, onStoreError: "allow" });
  });
});
