import { describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";

// routes[].websocket as `tollgate check` and the compiler see it: defaults, limits, false, and the
// problems reported with their path.
const base = `issuers:
  - { name: gh, preset: github, audiences: [tollgate.example.com] }
policies:
  ci: { claims: { repository_owner_id: 5678 } }
routes:
`;

function compile(routes: string) {
  return compileConfigText(`${base}${routes}`, { sourceName: "t.yaml" });
}

describe("routes[].websocket", () => {
  it("carries upgrades by default, with the tunnels' limits (10m idle, 6h lifetime)", () => {
    const { config, problems } = compile(
      `  - { name: a, path_prefix: /a/, upstream: "http://a.internal", allow: [ci] }\n`,
    );
    expect(problems).toEqual([]);
    expect(config?.routes[0]).toMatchObject({
      websocket: { idleTimeoutMs: 600_000, maxLifetimeMs: 21_600_000 },
    });
  });

  it("takes idle_timeout and max_lifetime, each defaulting alone", () => {
    const { config, problems } = compile(`  - name: a
    path_prefix: /a/
    upstream: "http://a.internal"
    allow: [ci]
    websocket: { idle_timeout: 30s }
  - name: b
    path_prefix: /b/
    upstream: "http://b.internal"
    allow: [ci]
    websocket: { max_lifetime: 1h, idle_timeout: 2m }
`);
    expect(problems).toEqual([]);
    expect(config?.routes[0]).toMatchObject({
      websocket: { idleTimeoutMs: 30_000, maxLifetimeMs: 21_600_000 },
    });
    expect(config?.routes[1]).toMatchObject({
      websocket: { idleTimeoutMs: 120_000, maxLifetimeMs: 3_600_000 },
    });
  });

  it("refuses upgrades with false", () => {
    const { config, problems } = compile(
      `  - { name: a, path_prefix: /a/, upstream: "http://a.internal", allow: [ci], websocket: false }\n`,
    );
    expect(problems).toEqual([]);
    expect(config?.routes[0]).toMatchObject({ websocket: false });
  });

  it("reports true, unknown keys, zero and unit-less durations, with their fixes", () => {
    const { config, problems } =
      compile(`  - { name: a, path_prefix: /a/, upstream: "http://a.internal", allow: [ci], websocket: true }
  - { name: b, path_prefix: /b/, upstream: "http://b.internal", allow: [ci], websocket: { idle: 5m } }
  - { name: c, path_prefix: /c/, upstream: "http://c.internal", allow: [ci], websocket: { idle_timeout: 0s } }
  - { name: d, path_prefix: /d/, upstream: "http://d.internal", allow: [ci], websocket: { max_lifetime: 30 } }
`);
    expect(config).toBeUndefined();
    const at = (path: string) => problems.find((problem) => problem.path === path);
    expect(at("routes[0].websocket")).toMatchObject({
      message: "must be false (refuse upgrades), or a mapping with idle_timeout and max_lifetime",
      fix: expect.stringContaining("write websocket: { idle_timeout"),
    });
    expect(at("routes[1].websocket.idle")?.fix).toBe(
      "remove it (keys allowed here: idle_timeout, max_lifetime)",
    );
    expect(at("routes[2].websocket.idle_timeout")?.message).toBe("must be longer than 0s");
    // Neither form fits a mapping with a unit-less duration: the field's own message, with its example.
    expect(at("routes[3].websocket")?.fix).toContain("max_lifetime");
  });

  it("reports single_use of the wrong kind as that field, not as a claim matcher", () => {
    const { problems } = compile(
      `  - { name: a, path_prefix: /a/, upstream: "http://a.internal", allow: [ci], single_use: "yes" }\n`,
    );
    expect(problems).toEqual([
      expect.objectContaining({ path: "routes[0].single_use", fix: "write single_use: true" }),
    ]);
    expect(problems[0]?.message).not.toContain("glob");
  });

  it("is refused on a forward_auth route, where the ingress carries the connection", () => {
    const { config, problems } = compile(`  - name: a
    mode: forward_auth
    path_prefix: /a/
    allow: [ci]
    websocket: { idle_timeout: 1m }
`);
    expect(config).toBeUndefined();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path: "routes[0].websocket" });
    expect(problems[0]?.fix).toContain("remove websocket");
  });
});
