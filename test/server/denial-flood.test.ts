import { stat } from "node:fs/promises";
import { Pool } from "undici";
import { describe, expect, it } from "vitest";
import { devIssuerYaml, startGatewayHarness } from "../helpers/gateway-harness.js";
import { startRecordingUpstream } from "../helpers/upstream.js";

/**
 * Issue 12, class 7, end to end: a junk flood through a real gateway. Bounded in count (2,000 requests)
 * and time (the loop stops after 15 s whatever it reached). The audit file grows by a few lines with
 * folding on (the default), by a line per request with `audit.denials.window: 0s` (what it did before),
 * and the metrics count every request either way.
 */
const floodRequests = 2_000;
const floodTimeLimitMs = 15_000;

async function flood(url: string, path: string): Promise<number> {
  const pool = new Pool(url, { connections: 8 });
  const started = Date.now();
  let sent = 0;
  try {
    const worker = async () => {
      while (sent < floodRequests && Date.now() - started < floodTimeLimitMs) {
        sent += 1;
        const response = await pool.request({
          path,
          method: "GET",
          headers: { "gateway-authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJqdW5rIjp0cnVlfQ.c2ln" },
        });
        await response.body.dump();
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  } finally {
    await pool.close();
  }
  return sent;
}

async function deniedCount(url: string): Promise<number> {
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const line =
    /tollgate_decisions_total\{event="auth.denied",decision="deny",reason="TG_TOKEN_ISSUER_UNKNOWN",route="r"\} (\d+)/.exec(
      metrics,
    );
  return Number(line?.[1] ?? 0);
}

const config = (upstreamUrl: string, window: string) => (issuerUrl: string) =>
  `${devIssuerYaml(issuerUrl)}
audit: { denials: { window: ${window} } }
policies:
  p:
    claims: { repository_owner_id: 65 }
routes:
  - { name: r, path_prefix: /r/, upstream: "${upstreamUrl}", allow: [p] }
`;

describe("a flood of junk tokens", () => {
  it("grows the audit log by a few counted lines, not a line per request, and metrics count each", async () => {
    const upstream = await startRecordingUpstream();
    const folded = await startGatewayHarness(config(upstream.url, "60s"));
    const unfolded = await startGatewayHarness(config(upstream.url, "0s"));
    try {
      // Metrics live in one registry per process, so each flood is measured as the counter's growth.
      const before = await deniedCount(folded.url);
      const sentFolded = await flood(folded.url, "/r/x");
      const between = await deniedCount(folded.url);
      const sentUnfolded = await flood(unfolded.url, "/r/x");
      const after = await deniedCount(unfolded.url);
      expect(between - before).toBe(sentFolded);
      expect(after - between).toBe(sentUnfolded);
      const foldedEvents = await folded.auditEvents();
      const unfoldedEvents = await unfolded.auditEvents();
      const foldedBytes = (await stat(folded.auditFile)).size;
      const unfoldedBytes = (await stat(unfolded.auditFile)).size;

      // One whole line, one counted line standing for all the others.
      expect(foldedEvents).toHaveLength(2);
      expect(foldedEvents[0]).toMatchObject({ event: "auth.denied", reason: "TG_TOKEN_ISSUER_UNKNOWN" });
      expect(foldedEvents[1]).toMatchObject({
        event: "auth.denied",
        repeated: sentFolded - 1,
        window_ms: 60_000,
      });
      // The twin: without folding, a line per request.
      expect(unfoldedEvents).toHaveLength(sentUnfolded);
      expect(foldedBytes * 100).toBeLessThan(unfoldedBytes);
      console.log(
        `junk flood: ${sentUnfolded} requests wrote ${unfoldedBytes} audit bytes unfolded ` +
          `(${Math.round(unfoldedBytes / sentUnfolded)} per request), ${foldedBytes} folded`,
      );
    } finally {
      await folded.close();
      await unfolded.close();
      await upstream.close();
    }
  });
});
