import { describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";
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
});
