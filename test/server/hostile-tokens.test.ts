import { request as httpRequest } from "node:http";
import {
  base64url,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTPayload,
  SignJWT,
} from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubLikeClaims } from "../../src/dev/dev-issuer.js";
import {
  devIssuerYaml,
  type GatewayHarness,
  startGatewayHarness,
  testAudience,
} from "../helpers/gateway-harness.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";

function get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end();
  });
}

const encode = (value: unknown) => base64url.encode(JSON.stringify(value));

/**
 * The negative prober: every hostile token below must be refused with 401 by the running gateway,
 * the process must keep serving, and none of the tokens may appear in any log line. The verifier's
 * unit tests check each rejection's precise code; this suite checks the whole HTTP path.
 */
describe("gateway: hostile tokens over HTTP", () => {
  let upstream: RecordingUpstream;
  let harness: GatewayHarness;
  const hostile: Record<string, string> = {};

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
# Every denial on its own line: these tests read each one (denial folding: test/audit/denial-aggregation…).
audit: { denials: { window: 0s } }
policies:
  p:
    claims: { repository_owner_id: 65 }
routes:
  - { name: r, path_prefix: /r/, upstream: "${upstream.url}", allow: [p] }
`,
    );
    const jwks = (await (await fetch(harness.issuer.jwksUrl)).json()) as { keys: JWK[] };
    const issuerJwk = jwks.keys[0]!;
    const issuerPublicKey = await importJWK(issuerJwk, "RS256");
    const publicPem = await exportSPKI(issuerPublicKey as Parameters<typeof exportSPKI>[0]);
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      ...githubLikeClaims(),
      iss: harness.issuer.issuerUrl,
      aud: testAudience,
      iat: now,
      nbf: now,
      exp: now + 300,
    };
    const valid = await harness.mint();
    const [validHeader, , validSignature] = valid.split(".");

    hostile["alg none"] = `${encode({ alg: "none", typ: "JWT" })}.${encode(claims)}.`;
    hostile["HS256 keyed with the public PEM"] = await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256", kid: issuerJwk.kid })
      .sign(new TextEncoder().encode(publicPem));
    hostile["HS256 keyed with the public JWK"] = await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256", kid: issuerJwk.kid })
      .sign(new TextEncoder().encode(JSON.stringify(issuerJwk)));
    const foreign = await generateKeyPair("RS256", { extractable: true });
    hostile["foreign key with the issuer's kid"] = await new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: issuerJwk.kid })
      .sign(foreign.privateKey);
    hostile["embedded jwk"] = await new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", jwk: await exportJWK(foreign.publicKey) })
      .sign(foreign.privateKey);
    hostile["jku header"] = await new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: "attacker", jku: `${upstream.url}/jwks` })
      .sign(foreign.privateKey);
    hostile.expired = await harness.mint(
      {},
      { issuedAt: now - 900, notBefore: now - 900, expiresInSeconds: 300 },
    );
    hostile["future nbf"] = await harness.mint({}, { notBefore: now + 600 });
    hostile["future iat"] = await harness.mint({}, { issuedAt: now + 600 });
    hostile["wrong audience"] = await harness.mint({}, { audience: "someone-else" });
    hostile["wrong issuer"] = await new SignJWT({
      ...claims,
      iss: "https://token.actions.githubusercontent.com",
    })
      .setProtectedHeader({ alg: "RS256", kid: issuerJwk.kid })
      .sign(foreign.privateKey);
    hostile["tampered payload"] =
      `${validHeader}.${encode({ ...claims, repository_owner_id: "65", actor: "mallory" })}.${validSignature}`;
    hostile["two parts"] = `${validHeader}.${encode(claims)}`;
    hostile["bad base64"] = `${validHeader}.!!!.${validSignature}`;
    hostile["not JSON"] = `${base64url.encode("{not json")}.${encode(claims)}.${validSignature}`;
    hostile.oversized = `${validHeader}.${encode({ ...claims, pad: "x".repeat(12_000) })}.${validSignature}`;
    hostile["iss as an array"] = await new SignJWT({
      ...claims,
      iss: [harness.issuer.issuerUrl],
    } as unknown as JWTPayload)
      .setProtectedHeader({ alg: "RS256", kid: issuerJwk.kid })
      .sign(foreign.privateKey);
  });

  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  it("refuses every hostile token with 401 (or 400/431 where HTTP refuses first) and never reaches the upstream", async () => {
    expect(Object.keys(hostile).length).toBeGreaterThanOrEqual(17);
    for (const [name, token] of Object.entries(hostile)) {
      const response = await get(`${harness.url}/r/x`, { "gateway-authorization": `Bearer ${token}` });
      expect([400, 401, 431], name).toContain(response.status);
      expect(response.body, name).not.toContain(token);
    }
    expect(upstream.seen.length).toBe(0);
  });

  it("still serves a valid token afterwards (the allow twin)", async () => {
    const response = await get(`${harness.url}/r/x`, {
      "gateway-authorization": `Bearer ${await harness.mint()}`,
    });
    expect(response.status).toBe(200);
  });

  it("never writes any of those tokens to the audit or operational log, in any encoding", async () => {
    const output = await harness.allOutput();
    for (const [name, token] of Object.entries(hostile)) {
      for (const form of [token, Buffer.from(token).toString("base64"), encodeURIComponent(token)]) {
        expect(output.includes(form), name).toBe(false);
      }
    }
    const denials = (await harness.auditEvents()).filter((event) => event.event === "auth.denied");
    expect(denials.length).toBeGreaterThanOrEqual(15);
    for (const event of denials) expect(event.token_sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
