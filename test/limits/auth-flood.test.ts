import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";

/**
 * A junk-token flood against `listen.auth_failures`: how much of it reaches token verification. (How the
 * valid client's latency holds during a flood is measured, not asserted: bench/abuse-controls.mjs.)
 */

const floodRequests = 400;
const floodConcurrency = 16;
const max = 5;

/** Sends `count` requests with `token` from `localAddress`, `concurrency` at a time; the statuses seen. */
async function flood(url: string, token: string, localAddress: string): Promise<Map<number, number>> {
  const agent = new Agent({ localAddress, connections: floodConcurrency });
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async () => {
    while (next < floodRequests) {
      next += 1;
      // A blocked address's connections are closed before any HTTP: counted as status 0.
      const status = await request(url, {
        dispatcher: agent,
        headers: { "gateway-authorization": `Bearer ${token}` },
      }).then(
        async (answer) => {
          await answer.body.dump();
          return answer.statusCode;
        },
        () => 0,
      );
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  try {
    await Promise.all(Array.from({ length: floodConcurrency }, worker));
  } finally {
    await agent.close();
  }
  return statuses;
}

/** `tollgate_decisions_total` for one reason, summed over the series (metrics count folded denials too). */
async function decisions(harness: GatewayHarness, reason: string): Promise<number> {
  const text = await fetch(`${harness.url}/metrics`).then((res) => res.text());
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("tollgate_decisions_total{") && line.includes(`reason="${reason}"`)) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

async function startGateway(upstream: RecordingUpstream, throttled: boolean): Promise<GatewayHarness> {
  return startGatewayHarness(
    (
      issuerUrl,
    ) => `${throttled ? `listen:\n  auth_failures: { max: ${max}, per: 60s }\n` : ""}${devIssuerYaml(issuerUrl)}policies:
  octo:
    claims:
      repository_owner_id: 65
routes:
  - name: open
    path_prefix: /open/
    upstream: ${upstream.url}
    allow: [octo]
`,
  );
}

describe("a junk-token flood", () => {
  let upstream: RecordingUpstream;
  beforeAll(async () => {
    upstream = await startRecordingUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
  });

  it("with listen.auth_failures, at most `max` (plus what was in flight) reaches signature verification; the rest is 429 or a refused connection, and a valid client elsewhere is served throughout", async () => {
    const harness = await startGateway(upstream, true);
    try {
      const valid = await harness.mint();
      const forged = `${valid.slice(0, -8)}AAAAAAAA`;
      const served: number[] = [];
      const during = (async () => {
        for (let index = 0; index < 20; index++) {
          served.push(
            (
              await fetch(`${harness.url}/open/x`, {
                headers: { "gateway-authorization": `Bearer ${valid}` },
              })
            ).status,
          );
        }
      })();
      const statuses = await flood(`${harness.url}/open/x`, forged, "127.0.0.20");
      await during;
      expect(served).toEqual(Array(20).fill(200));
      const verified = await decisions(harness, "TG_TOKEN_SIGNATURE_INVALID");
      expect(verified).toBeGreaterThanOrEqual(max);
      expect(verified).toBeLessThanOrEqual(max + floodConcurrency);
      expect(statuses.get(401)).toBe(verified);
      // The rest: 429 on a connection that was open when the address was blocked, then refused connections.
      expect((statuses.get(429) ?? 0) + (statuses.get(0) ?? 0)).toBe(floodRequests - verified);
      expect(statuses.get(0) ?? 0).toBeGreaterThan(0);
    } finally {
      await harness.close();
    }
  });

  it("twin: without it, every junk token is verified", async () => {
    const harness = await startGateway(upstream, false);
    try {
      const valid = await harness.mint();
      const forged = `${valid.slice(0, -8)}AAAAAAAA`;
      const statuses = await flood(`${harness.url}/open/x`, forged, "127.0.0.21");
      expect(statuses.get(401)).toBe(floodRequests);
      expect(await decisions(harness, "TG_TOKEN_SIGNATURE_INVALID")).toBe(floodRequests);
    } finally {
      await harness.close();
    }
  });
});
