import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDevIssuer, type DevIssuer, githubLikeClaims } from "../../src/dev/dev-issuer.js";
import {
  devIssuerYaml,
  type GatewayHarness,
  startGatewayHarness,
  testAudience,
} from "../helpers/gateway-harness.js";

// GET /_tollgate/whoami on a real gateway (dev issuer, loopback): who the gateway takes a token for, and
// the usual 401 with its code otherwise, audited either way.
const configYaml = (issuerUrl: string) => `${devIssuerYaml(issuerUrl)}
policies:
  p: { claims: { repository_owner_id: 65 } }
routes:
  - { name: everything, path_prefix: /, upstream: "http://127.0.0.1:9", allow: [p] }
`;

async function whoami(url: string, headers: Record<string, string> = {}, method = "GET") {
  const response = await fetch(`${url}/_tollgate/whoami`, { method, headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: JSON.parse(text || "{}") };
}

describe("GET /_tollgate/whoami", () => {
  let harness: GatewayHarness;
  let stranger: DevIssuer;

  beforeAll(async () => {
    harness = await startGatewayHarness(configYaml);
    stranger = await createDevIssuer({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await stranger?.close();
    await harness?.close();
  });

  it("answers 200 with the token's issuer, subject, repository and expiry, and nothing of the configuration", async () => {
    const token = await harness.mint({ sub: "repo:octo-org/octo-repo:ref:refs/heads/main" });
    const answer = await whoami(harness.url, { "gateway-authorization": `Bearer ${token}` });
    expect(answer.status).toBe(200);
    expect(answer.headers.get("cache-control")).toBe("no-store");
    expect(Object.keys(answer.json).sort()).toEqual(["expires_at", "issuer", "repository", "subject"]);
    expect(answer.json).toMatchObject({
      issuer: harness.issuer.issuerUrl,
      subject: "repo:octo-org/octo-repo:ref:refs/heads/main",
      repository: "octo-org/octo-repo",
    });
    const exp = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).exp as number;
    expect(answer.json.expires_at).toBe(new Date(exp * 1000).toISOString());
    // Neither the issuer's configured name nor its audiences.
    expect(answer.text).not.toContain(testAudience);
    expect(answer.text).not.toContain('"dev"');
    const event = (await harness.auditEvents()).find(
      (line) => line.request_id === answer.headers.get("x-request-id"),
    );
    expect(event).toMatchObject({
      event: "auth.whoami",
      decision: "allow",
      reason: "token-accepted",
      status: 200,
      path: "/_tollgate/whoami",
      identity: { repository: "octo-org/octo-repo" },
    });
    expect(event?.token_sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("takes the token as Authorization: Bearer too (what curl -H users type)", async () => {
    const token = await harness.mint();
    const answer = await whoami(harness.url, { authorization: `Bearer ${token}` });
    expect(answer.status).toBe(200);
  });

  const refusals: [string, () => Promise<Record<string, string>>, string][] = [
    ["no token", async () => ({}), "TG_TOKEN_MISSING"],
    [
      "an expired token",
      async () => ({
        "gateway-authorization": `Bearer ${await harness.mint({}, { issuedAt: Math.floor(Date.now() / 1000) - 900, expiresInSeconds: 300 })}`,
      }),
      "TG_TOKEN_EXPIRED",
    ],
    [
      "a token of another issuer",
      async () => ({
        "gateway-authorization": `Bearer ${await stranger.mint(githubLikeClaims(), { audience: testAudience })}`,
      }),
      "TG_TOKEN_ISSUER_UNKNOWN",
    ],
    [
      "a token for another audience",
      async () => ({
        "gateway-authorization": `Bearer ${await harness.mint({}, { audience: "sts.amazonaws.com" })}`,
      }),
      "TG_TOKEN_AUDIENCE_MISMATCH",
    ],
  ];
  for (const [name, headers, code] of refusals) {
    it(`answers 401 ${code} to ${name}, audited, with no detail for the caller`, async () => {
      const answer = await whoami(harness.url, await headers());
      expect(answer.status).toBe(401);
      expect(answer.headers.get("www-authenticate")).toBe('Bearer realm="tollgate"');
      expect(answer.json.error.code).toBe(code);
      expect(answer.text).not.toContain(testAudience);
      const event = (await harness.auditEvents()).find(
        (line) => line.request_id === answer.json.error.request_id,
      );
      // A token that failed is auth.denied, as on every path; no token at all is whoami's own denial.
      expect(event).toMatchObject({
        event: code === "TG_TOKEN_MISSING" ? "auth.whoami" : "auth.denied",
        decision: "deny",
        reason: code,
        status: 401,
      });
    });
  }

  it("answers 405 to another method, before looking at the token", async () => {
    const answer = await whoami(harness.url, {}, "POST");
    expect(answer.status).toBe(405);
    expect(answer.headers.get("allow")).toBe("GET, HEAD");
  });

  it("is not a prefix: /_tollgate/whoami/x goes to the routes (the twin)", async () => {
    const response = await fetch(`${harness.url}/_tollgate/whoami/x`);
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("TG_TOKEN_MISSING");
    const events = await harness.auditEvents();
    expect(events.at(-1)).toMatchObject({ route: "everything" });
  });

  it("never writes the token to the audit log or the operational log", async () => {
    const token = await harness.mint();
    await whoami(harness.url, { "gateway-authorization": `Bearer ${token}` });
    await whoami(harness.url, { "gateway-authorization": `Bearer ${token}x` });
    const output = await harness.allOutput();
    const [, payload, signature] = token.split(".");
    expect(output).not.toContain(payload!);
    expect(output).not.toContain(signature!);
    expect(output).not.toContain(Buffer.from(token).toString("base64"));
  });
});

describe("GET /_tollgate/whoami behind listen.auth_failures", () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    harness = await startGatewayHarness(
      (issuerUrl) => `listen:
  auth_failures: { max: 2, per: 60s }
${configYaml(issuerUrl)}`,
    );
  });
  afterAll(async () => {
    await harness?.close();
  });

  it("counts failed tokens like every other check: past the allowance, even a good token is 429", async () => {
    const good = await harness.mint();
    expect((await whoami(harness.url, { "gateway-authorization": `Bearer ${good}` })).status).toBe(200);
    const bad = await harness.mint({}, { audience: "elsewhere" });
    for (let attempt = 0; attempt < 2; attempt += 1) {
      expect((await whoami(harness.url, { "gateway-authorization": `Bearer ${bad}` })).status).toBe(401);
    }
    const refused = await whoami(harness.url, { "gateway-authorization": `Bearer ${good}` });
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe("TG_RATE_LIMITED");
  });
});
