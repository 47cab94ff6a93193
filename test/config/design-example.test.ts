import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";

const designExample = await readFile(new URL("./fixtures/design-example.yaml", import.meta.url), "utf8");
const exampleFile = await readFile(new URL("../../examples/tollgate.yaml", import.meta.url), "utf8");

describe("the DESIGN.md example", () => {
  const result = compileConfigText(designExample, { sourceName: "design-example.yaml" });

  it("compiles without problems", () => {
    expect(result.problems).toEqual([]);
    expect(result.config).toBeDefined();
  });

  it("expands issuers, policies and routes", () => {
    const config = result.config!;
    expect(config.listen).toEqual({ host: "0.0.0.0", port: 8080 });
    expect(config.issuers).toEqual([
      {
        name: "github",
        issuer: "https://token.actions.githubusercontent.com",
        audiences: ["tollgate.example.com"],
        algorithms: ["RS256"],
        clockSkewMs: 30_000,
      },
    ]);
    expect([...config.policies.keys()]).toEqual(["main-deploys", "org-ci"]);
    const route = config.routes[0]!;
    expect(route.name).toBe("artifacts");
    expect(route.pathPrefix).toBe("/artifacts/");
    expect(route.mode).toBe("proxy");
    expect(route.upstream?.href).toBe("http://artifacts.internal:8081/");
    expect(route.stripPrefix).toBe(true);
    expect([...(route.methods ?? [])]).toEqual(["GET", "HEAD", "PUT"]);
    expect(route.timeoutMs).toBe(30_000);
    expect(route.authHeader).toBe("gateway-authorization");
    expect(route.access.allow.map((policy) => policy.name)).toEqual(["org-ci"]);
    expect(route.access.deny).toEqual([]);
  });

  it("compiles the tunnels and broker sections for their features", () => {
    const config = result.config!;
    expect(config.compiledTunnels.map((tunnel) => [tunnel.name, tunnel.destinations.length])).toEqual([
      ["databases", 3],
    ]);
    expect(config.compiledTunnels[0]!.access.allow.map((policy) => policy.name)).toEqual(["main-deploys"]);
    expect(config.compiledBroker).toMatchObject({ authorization: "oidc", apiUrl: "https://api.github.com" });
    expect(config.compiledBroker!.grants).toHaveLength(1);
  });

  it("applies the documented defaults", () => {
    const config = result.config!;
    expect(config.audit).toEqual({
      sink: "stdout",
      flushIntervalMs: 20,
      denials: { windowMs: 10_000, maxSources: 256 },
    });
    expect(config.store).toEqual({ kind: "memory" });
    expect(config.server).toEqual({
      maxHeaderBytes: 16_384,
      shutdownGraceMs: 10_000,
      trustProxy: false,
      metrics: true,
    });
    expect(config.verifier.maxTokenBytes).toBe(16 * 1024);
  });

  it("warns, with a line, that org-ci leaves event_name open", () => {
    expect(result.warnings.map((warning) => [warning.id, warning.path])).toEqual([
      ["event-name-open", "policies.org-ci.claims.event_name"],
    ]);
    const claimsLine =
      designExample.split("\n").findIndex((line, index) => index > 15 && line.trim() === "claims:") + 1;
    expect(result.warnings[0]!.line).toBe(claimsLine);
    expect(result.config!.warnings).toEqual(result.warnings);
  });
});

describe("examples/tollgate.yaml", () => {
  it("points editors at the committed schema", () => {
    expect(exampleFile.split("\n")[0]).toBe("# yaml-language-server: $schema=../schema/tollgate.schema.json");
  });

  it("passes check with neither problems nor warnings", () => {
    const result = compileConfigText(exampleFile, { sourceName: "examples/tollgate.yaml" });
    expect(result.problems).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.config?.routes.map((route) => route.name)).toEqual(["artifacts", "deploy-api"]);
    expect(result.config?.routes[1]?.host).toBe("gateway.example.com");
    expect(result.config?.issuers[0]?.maxTokenAgeMs).toBe(600_000);
  });
});
