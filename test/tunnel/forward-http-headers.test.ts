import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { headerValues, type Listening, listen } from "../proxy/harness.js";

/**
 * The absolute-form forward proxy with header names spelled with `_`, through the real gateway to a
 * real loopback destination. tollgate adds no header there; what it must keep from the destination is
 * the credential it consumed and the hop-by-hop headers, in every spelling (docs/tunnels.md).
 */
describe("forward proxy: client headers spelled with underscores (issue 12, class 2)", () => {
  let harness: GatewayHarness;
  let destination: Listening;
  const received: string[][] = [];

  beforeAll(async () => {
    destination = await listen((req, res) => {
      received.push(req.rawHeaders);
      req.resume();
      req.on("end", () => res.end("ok"));
    });
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  ci: { claims: { repository_owner_id: 65 } }
tunnels:
  - name: local
    destinations: ["127.0.0.1:${destination.port}"]
    allow: [ci]
`,
    );
  });
  afterAll(async () => {
    await harness?.close();
    await destination?.close();
  });

  /** One absolute-form request through the gateway; resolves with the headers the destination received. */
  async function forward(headers: string[]): Promise<string[]> {
    const token = await harness.mint();
    const before = received.length;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: harness.running.address.port,
          path: `http://127.0.0.1:${destination.port}/x`,
          // A header list (not an object) keeps names as written; Node then adds no Host of its own.
          headers: [
            "Host",
            `127.0.0.1:${destination.port}`,
            "Proxy-Authorization",
            `Bearer ${token}`,
            ...headers,
          ],
          agent: false,
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(200);
    expect(received.length).toBe(before + 1);
    return received[before]!;
  }

  it("drops the credential and hop-by-hop headers spelled with _: Gateway_Authorization, Proxy_Authorization, Keep_Alive", async () => {
    const seen = await forward([
      "Gateway_Authorization",
      "Bearer leaked-1",
      "Proxy_Authorization",
      "Bearer leaked-2",
      "Keep_Alive",
      "timeout=5",
      "TRANSFER_ENCODING",
      "gzip",
    ]);
    const cgiNames = seen
      .filter((_, i) => i % 2 === 0)
      .map((name) => name.toUpperCase().replaceAll("-", "_"));
    for (const gone of ["GATEWAY_AUTHORIZATION", "PROXY_AUTHORIZATION", "KEEP_ALIVE", "TRANSFER_ENCODING"]) {
      expect(cgiNames, gone).not.toContain(gone);
    }
    expect(JSON.stringify(seen)).not.toContain("leaked");
  });

  it("passes the client's other headers as sent, underscores and X_Forwarded_For included (the twin)", async () => {
    const seen = await forward([
      "X_Custom_Thing",
      "kept",
      "X_Forwarded_For",
      "1.2.3.4",
      "Authorization",
      "Bearer dest",
    ]);
    expect(headerValues(seen, "x_custom_thing")).toEqual(["kept"]);
    // tollgate adds no X-Forwarded-* on this path, so a destination must not trust it (docs/tunnels.md).
    expect(headerValues(seen, "x_forwarded_for")).toEqual(["1.2.3.4"]);
    expect(headerValues(seen, "authorization")).toEqual(["Bearer dest"]);
  });
});
