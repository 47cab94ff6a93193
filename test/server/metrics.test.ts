import { describe, expect, it } from "vitest";
import { devIssuerYaml, startGatewayHarness } from "../helpers/gateway-harness.js";
import { startRecordingUpstream } from "../helpers/upstream.js";

const config = (upstreamUrl: string, metrics: boolean) => (issuerUrl: string) =>
  `${devIssuerYaml(issuerUrl)}
server: { metrics: ${metrics} }
policies:
  p:
    claims: { repository_owner_id: 65 }
routes:
  - { name: r, path_prefix: /r/, upstream: "${upstreamUrl}", allow: [p] }
`;

describe("GET /metrics", () => {
  it("counts decisions, cached token checks and key loads, with no caller-chosen label", async () => {
    const upstream = await startRecordingUpstream();
    const harness = await startGatewayHarness(config(upstream.url, true));
    try {
      const token = await harness.mint();
      const headers = { "gateway-authorization": `Bearer ${token}` };
      await fetch(`${harness.url}/r/one`, { headers });
      await fetch(`${harness.url}/r/two`, { headers });
      await fetch(`${harness.url}/r/secret-path-value`);
      const response = await fetch(`${harness.url}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
      const text = await response.text();
      expect(text).toMatch(
        /tollgate_decisions_total\{event="gateway.request",decision="allow",reason="allowed-by-policy",route="r"\} [2-9]/,
      );
      expect(text).toMatch(
        /tollgate_decisions_total\{event="gateway.request",decision="deny",reason="TG_TOKEN_MISSING",route="r"\} [1-9]/,
      );
      expect(text).toMatch(/tollgate_token_checks_total\{result="cached"\} [1-9]/);
      expect(text).toMatch(
        /tollgate_issuer_key_loads_total\{issuer="dev",reason="initial",outcome="ok"\} [1-9]/,
      );
      expect(text).toContain("tollgate_request_duration_seconds_bucket");
      expect(text).not.toContain("secret-path-value");
      expect(text).not.toContain(token);
    } finally {
      await harness.close();
      await upstream.close();
    }
  });

  it("is not served when server.metrics is false (the path goes to routing)", async () => {
    const upstream = await startRecordingUpstream();
    const harness = await startGatewayHarness(config(upstream.url, false));
    try {
      const response = await fetch(`${harness.url}/metrics`);
      expect(response.status).toBe(404);
    } finally {
      await harness.close();
      await upstream.close();
    }
  });
});
