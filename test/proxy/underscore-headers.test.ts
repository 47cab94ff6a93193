import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { headerValues, type Listening, listen, send } from "./harness.js";

/**
 * A client spelling tollgate's own headers with `_` (which CGI, WSGI, PHP-FPM and Rack upstreams read
 * as `-`), through the real gateway with a real token, to a real loopback upstream. Node's server keeps
 * underscore names as sent, so `rawHeaders` shows exactly what an upstream framework would be handed.
 */
describe("gateway: client headers spelled with underscores (issue 12, class 2)", () => {
  let harness: GatewayHarness;
  let upstream: Listening;
  const received: string[][] = [];

  beforeAll(async () => {
    upstream = await listen((req, res) => {
      received.push(req.rawHeaders);
      req.resume();
      req.on("end", () => res.end("ok"));
    });
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  ci: { claims: { repository_owner_id: 65 } }
routes:
  - name: app
    path_prefix: /app/
    upstream: ${upstream.origin}
    allow: [ci]
    forward_claims: [repository, job_workflow_ref]
`,
    );
  });
  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  async function throughGateway(headers: string[]): Promise<string[]> {
    const token = await harness.mint({ repository: "octo-org/octo-repo" });
    const before = received.length;
    const response = await send(`${harness.url}/app/x`, {
      // A header list (not an object) keeps names as written; Node then adds no Host of its own.
      headers: ["Host", new URL(harness.url).host, "Gateway-Authorization", `Bearer ${token}`, ...headers],
    });
    expect(response.status).toBe(200);
    expect(received.length).toBe(before + 1);
    return received[before]!;
  }

  it("drops Tollgate_Claim_Repository and X_Forwarded_For: the upstream sees only tollgate's claim and address", async () => {
    const seen = await throughGateway([
      "Tollgate_Claim_Repository",
      "evil/x",
      "X_Forwarded_For",
      "1.2.3.4",
      "tollgate-claim_ref",
      "refs/heads/main",
      "X_REAL_IP",
      "1.2.3.4",
      "X_Request_Id",
      "spoofed",
      "Gateway_Authorization",
      "Bearer leaked",
    ]);
    // Read the way a CGI upstream reads them: upper case, `-` as `_`.
    const cgi = (name: string) =>
      headerValues(
        seen.map((item, i) => (i % 2 === 0 ? item.toLowerCase().replaceAll("_", "-") : item)),
        name,
      );
    expect(cgi("tollgate-claim-repository")).toEqual(["octo-org/octo-repo"]);
    expect(cgi("tollgate-claim-ref")).toEqual([]);
    expect(cgi("x-forwarded-for")).toEqual(["127.0.0.1"]);
    expect(cgi("x-real-ip")).toEqual([]);
    expect(cgi("x-request-id")).toHaveLength(1);
    expect(cgi("x-request-id")).not.toEqual(["spoofed"]);
    expect(cgi("gateway-authorization")).toEqual([]);
    // Tollgate's own claim header for a claim whose name has `_` keeps it (the claim's name, as configured).
    expect(headerValues(seen, "tollgate-claim-job_workflow_ref")).toHaveLength(1);
    expect(
      seen.filter((item, i) => i % 2 === 0 && item.includes("_") && !item.startsWith("tollgate-")),
    ).toEqual([]);
  });

  it("passes a benign X_Custom_Thing as sent (the twin: underscores alone are not refused)", async () => {
    const seen = await throughGateway(["X_Custom_Thing", "kept", "X-Custom-Thing", "also kept"]);
    expect(headerValues(seen, "x_custom_thing")).toEqual(["kept"]);
    expect(headerValues(seen, "x-custom-thing")).toEqual(["also kept"]);
  });
});
