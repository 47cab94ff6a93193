import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";
import type { ProxyRoute } from "../../src/proxy/types.js";

const text = await readFile(new URL("../../examples/tollgate.yaml", import.meta.url), "utf8");

describe("the compiled configuration is frozen", () => {
  // ES modules run in strict mode, so writes to frozen objects throw instead of being ignored.
  const config = compileConfigText(text).config!;
  // The example's first route is a proxy route: its upstream URL is what must be frozen.
  const route = config.routes[0] as ProxyRoute;

  it("throws on writes to plain objects and arrays, at every depth", () => {
    expect(() => {
      (config.listen as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => (config.routes as unknown[]).push({})).toThrow(TypeError);
    expect(() => (config.issuers[0]!.audiences as string[]).push("anyone")).toThrow(TypeError);
    expect(() => {
      (config.verifier as { maxTokenBytes: number }).maxTokenBytes = 1;
    }).toThrow(TypeError);
    expect(() => (route.access.allow as unknown[]).pop()).toThrow(TypeError);
    expect(() => (config.compiledTunnels[0]!.destinations as unknown[]).push({})).toThrow(TypeError);
    expect(() => {
      (config.compiledBroker as { authorization: string }).authorization = "none";
    }).toThrow(TypeError);
  });

  it("throws on Map, Set and URL mutators", () => {
    expect(() => (config.policies as Map<string, unknown>).set("x", {})).toThrow(TypeError);
    expect(() => (config.policies as Map<string, unknown>).delete("org-ci")).toThrow(TypeError);
    expect(() => (route.methods as Set<string>).add("DELETE")).toThrow(TypeError);
    expect(() => {
      route.upstream.pathname = "/elsewhere";
    }).toThrow(TypeError);
    expect(() => {
      route.upstream.host = "attacker.example";
    }).toThrow(TypeError);
    expect(() => route.upstream.searchParams.append("a", "b")).toThrow(TypeError);
  });

  it("still reads normally", () => {
    expect(config.policies.get("org-ci")?.name).toBe("org-ci");
    expect(route.methods?.has("PUT")).toBe(true);
    expect(route.upstream.href).toBe("http://artifacts.internal:8081/");
    expect(new URL("/a.tgz", route.upstream).href).toBe("http://artifacts.internal:8081/a.tgz");
    expect(route.upstream.host).toBe("artifacts.internal:8081");
  });

  it("does not share structure with another compilation", () => {
    const again = compileConfigText(text).config!;
    expect(again).not.toBe(config);
    expect(again.routes[0]!.upstream).not.toBe(route.upstream);
  });
});
