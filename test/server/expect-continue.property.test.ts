import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendExpectingContinue } from "../helpers/expect-continue-client.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { propertySettings } from "../helpers/property.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";

/**
 * Issue 12, class 6: `Expect: 100-continue` is an invitation to send the body. The gateway must give it
 * only to a request it admits; any other gets its final status first (and the connection is closed,
 * since the client may or may not send the body it held back).
 */

describe("Expect: 100-continue is answered only for admitted requests (property)", () => {
  let upstream: RecordingUpstream;
  let harness: GatewayHarness;
  let allowedToken: string;
  let deniedToken: string;
  let otherIssuerToken: string;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  octo:
    claims: { repository_owner_id: 65 }
routes:
  - { name: r, path_prefix: /r/, upstream: "${upstream.url}", methods: [POST, PUT], allow: [octo] }
tunnels:
  - { name: local, destinations: ["127.0.0.1:${upstream.port}"], allow: [octo] }
`,
    );
    allowedToken = await harness.mint({ repository_owner_id: 65 });
    deniedToken = await harness.mint({ repository_owner_id: 66 });
    otherIssuerToken = await harness.mint({ repository_owner_id: 65 }, { audience: "someone-else" });
  });

  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  const credentials = {
    none: undefined,
    garbage: () => "not-a-token",
    otherAudience: () => otherIssuerToken,
    policyDenied: () => deniedToken,
    allowed: () => allowedToken,
  } as const;

  // A route request gets 100 Continue exactly when the gateway admits it, and every refusal closes the connection without reading the body.
  it("routes: 100 only for an admitted request", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...(Object.keys(credentials) as (keyof typeof credentials)[])),
        fc.constantFrom("POST", "PUT", "DELETE"),
        fc.constantFrom("/r/upload", "/r/a/../b", "/elsewhere", "/r/%2fetc"),
        fc.integer({ min: 1, max: 4_000 }),
        async (credential, method, path, bodyBytes) => {
          const token = credentials[credential]?.();
          const headers: Record<string, string> = token ? { "gateway-authorization": `Bearer ${token}` } : {};
          const seenBefore = upstream.seen.length;
          const outcome = await sendExpectingContinue(
            harness.running.address.port,
            `${method} ${path} HTTP/1.1`,
            headers,
            Buffer.alloc(bodyBytes, 0x61),
          );
          const admitted =
            credential === "allowed" && method !== "DELETE" && (path === "/r/upload" || path === "/r/a/../b");
          expect(outcome.sawContinue).toBe(admitted);
          if (admitted) {
            expect(outcome.status).toBe(200);
            expect(upstream.seen.at(-1)?.body.length).toBe(bodyBytes);
          } else {
            expect(outcome.status).toBeGreaterThanOrEqual(400);
            expect(outcome.closed).toBe(true);
            expect(upstream.seen.length).toBe(seenBefore);
          }
        },
      ),
      propertySettings(60),
    );
  });

  // A forward-proxied http:// request gets 100 Continue exactly when its tunnel admits it.
  it("forward proxy: 100 only for an admitted request", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...(Object.keys(credentials) as (keyof typeof credentials)[])),
        fc.constantFrom(`127.0.0.1:${upstream.port}`, "127.0.0.1:9", "169.254.169.254:80"),
        fc.integer({ min: 1, max: 4_000 }),
        async (credential, authority, bodyBytes) => {
          const token = credentials[credential]?.();
          const headers: Record<string, string> = token ? { "proxy-authorization": `Bearer ${token}` } : {};
          const outcome = await sendExpectingContinue(
            harness.running.address.port,
            `POST http://${authority}/upload HTTP/1.1`,
            headers,
            Buffer.alloc(bodyBytes, 0x62),
          );
          const admitted = credential === "allowed" && authority === `127.0.0.1:${upstream.port}`;
          expect(outcome.sawContinue).toBe(admitted);
          if (admitted) expect(outcome.status).toBe(200);
          else {
            expect(outcome.status).toBeGreaterThanOrEqual(400);
            expect(outcome.closed).toBe(true);
          }
        },
      ),
      propertySettings(40),
    );
  });
});
