import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";
import type { FeatureFactory } from "../../src/server/index.js";
import { devIssuerYaml, startGatewayHarness } from "../helpers/gateway-harness.js";
import { startRecordingUpstream } from "../helpers/upstream.js";

const yaml = (issuerUrl: string, upstreamUrl: string, owner: number) => `${devIssuerYaml(issuerUrl)}
policies:
  p:
    claims: { repository_owner_id: ${owner} }
routes:
  - { name: r, path_prefix: /r/, upstream: "${upstreamUrl}", allow: [p] }
`;

describe("configuration reload", () => {
  it("applies the new policy to a token whose decision the old configuration had memoised", async () => {
    const upstream = await startRecordingUpstream();
    const harness = await startGatewayHarness((issuerUrl) => yaml(issuerUrl, upstream.url, 65));
    try {
      const headers = { "gateway-authorization": `Bearer ${await harness.mint()}` };
      expect((await fetch(`${harness.url}/r/x`, { headers })).status).toBe(200);
      expect((await fetch(`${harness.url}/r/x`, { headers })).status).toBe(200);

      const next = compileConfigText(yaml(harness.issuer.issuerUrl, upstream.url, 999), {});
      const outcome = await harness.running.reload(next.config!);
      expect(outcome.verifierReplaced).toBe(false);
      expect((await fetch(`${harness.url}/r/x`, { headers })).status).toBe(403);

      const back = compileConfigText(yaml(harness.issuer.issuerUrl, upstream.url, 65), {});
      await harness.running.reload(back.config!);
      expect((await fetch(`${harness.url}/r/x`, { headers })).status).toBe(200);
    } finally {
      await harness.close();
      await upstream.close();
    }
  });

  it("takes audit.flush_interval from the configuration, and asks for a restart when a reload changes it", async () => {
    const upstream = await startRecordingUpstream();
    const withInterval = (issuerUrl: string, interval: string) =>
      `${yaml(issuerUrl, upstream.url, 65)}audit:\n  flush_interval: ${interval}\n`;
    const harness = await startGatewayHarness((issuerUrl) => withInterval(issuerUrl, "1s"));
    const auditLines = async () =>
      (await readFile(harness.auditFile, "utf8").catch(() => "")).split("\n").filter(Boolean);
    try {
      const headers = { "gateway-authorization": `Bearer ${await harness.mint()}` };
      expect((await fetch(`${harness.url}/r/x`, { headers })).status).toBe(200);
      // The configured second, not the 20 ms default: a quarter of a second later the line is still held…
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(await auditLines()).toEqual([]);
      // …and written once the second is over.
      const deadline = Date.now() + 10_000;
      while ((await auditLines()).length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect((await auditLines()).map((line) => JSON.parse(line).event)).toEqual(["gateway.request"]);

      const same = compileConfigText(withInterval(harness.issuer.issuerUrl, "1s"), {});
      expect((await harness.running.reload(same.config!)).restartNeeded).not.toContain(
        "audit.flush_interval",
      );
      const changed = compileConfigText(withInterval(harness.issuer.issuerUrl, "0s"), {});
      expect((await harness.running.reload(changed.config!)).restartNeeded).toContain("audit.flush_interval");
      // audit.denials likewise: the audit log that folds denials is built once, at start.
      expect((await harness.running.reload(same.config!)).restartNeeded).not.toContain("audit.denials");
      const folding = compileConfigText(
        `${withInterval(harness.issuer.issuerUrl, "1s")}  denials: { window: 0s }\n`,
        {},
      );
      expect((await harness.running.reload(folding.config!)).restartNeeded).toContain("audit.denials");
    } finally {
      await harness.close();
      await upstream.close();
    }
  });
});

describe("a reload and a graceful stop", () => {
  it("a reload that lands after a stop began is refused, and what it built is closed", async () => {
    const built: string[] = [];
    const closed: string[] = [];
    let generation = 0;
    const probeFeature: FeatureFactory = () => {
      const name = `probe-${generation++}`;
      built.push(name);
      return {
        name,
        close: async () => {
          closed.push(name);
        },
      };
    };
    const upstream = await startRecordingUpstream();
    const harness = await startGatewayHarness((issuerUrl) => yaml(issuerUrl, upstream.url, 65), {
      features: [probeFeature],
    });
    try {
      // The twin first: before the stop, a reload is applied (and the replaced probe, without retire(),
      // waits for the stop to be closed).
      await harness.running.reload(harness.config);
      expect(built).toEqual(["probe-0", "probe-1"]);
      expect(closed).toEqual([]);

      const stopping = harness.running.close();
      await expect(harness.running.reload(harness.config)).rejects.toThrow(/stopping/);
      await stopping;
      expect(built).toEqual(["probe-0", "probe-1", "probe-2"]);
      expect(closed.sort()).toEqual(["probe-0", "probe-1", "probe-2"]);
    } finally {
      await harness.close().catch(() => {});
      await upstream.close();
    }
  });
});
