import { createPublicKey, type JsonWebKey } from "node:crypto";
import { base64url, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubLikeClaims } from "../../src/dev/dev-issuer.js";
import { sha256Hex } from "../../src/lib/sha256.js";
import { githubActionsIssuer } from "../../src/oidc/index.js";
import {
  expectRejected,
  startVerifierHarness,
  testAudience,
  type VerifierHarness,
} from "./verifier-harness.js";

// The negative prober: every way a token can be forged, replayed out of its window, or aimed at another
// audience or issuer must be refused with its own code. Every allow case sits next to its deny twin.

let h: VerifierHarness;

beforeAll(async () => {
  h = await startVerifierHarness({
    issuer: { maxTokenAgeMs: undefined },
    // A second issuer pinned to GitHub's URL, served by the same loopback keys through an explicit
    // jwks_uri: it lets look-alike issuers be tested without any traffic leaving this machine.
    extraIssuers: (issuer) => [
      {
        name: "github",
        issuer: githubActionsIssuer,
        audiences: [testAudience],
        jwksUri: issuer.jwksUrl,
        algorithms: ["RS256"],
        clockSkewMs: 30_000,
      },
    ],
  });
});

afterAll(async () => {
  await h.close();
});

/** Claims a valid token for the dev issuer carries, at the harness clock. */
function validClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = h.nowSeconds();
  return {
    ...githubLikeClaims(),
    iss: h.issuer.issuerUrl,
    aud: testAudience,
    iat,
    nbf: iat,
    exp: iat + 300,
    jti: crypto.randomUUID(),
    ...overrides,
  };
}

async function issuerPublicJwk(): Promise<JsonWebKey> {
  const response = await fetch(h.issuer.jwksUrl);
  const { keys } = (await response.json()) as { keys: JsonWebKey[] };
  return keys[0]!;
}

describe("a well-formed token", () => {
  it("verifies, with frozen claims and the token's hash", async () => {
    const token = await h.mint();
    const verified = await h.verifier.verify(token);
    expect(verified.issuer).toBe("dev");
    expect(verified.claims.repository).toBe("octo-org/octo-repo");
    expect(verified.tokenSha256).toBe(sha256Hex(token));
    expect(verified.expiresAtMs).toBe((h.nowSeconds() + 300) * 1000);
    expect(verified.cached).toBe(false);
    expect(Object.isFrozen(verified)).toBe(true);
    expect(Object.isFrozen(verified.claims)).toBe(true);
  });
});

describe("algorithm attacks", () => {
  it("refuses alg none", async () => {
    const token = new UnsecuredJWT(validClaims()).encode();
    await expectRejected(h.verifier, token, "TG_TOKEN_ALGORITHM_FORBIDDEN");
  });

  it("refuses alg none with an empty-looking signature and odd casing", async () => {
    const header = base64url.encode(JSON.stringify({ alg: "None", typ: "JWT", kid: h.issuer.keyId }));
    const payload = base64url.encode(JSON.stringify(validClaims()));
    await expectRejected(h.verifier, `${header}.${payload}.`, "TG_TOKEN_ALGORITHM_FORBIDDEN");
  });

  it("refuses HS256 signed with the issuer's public key as a PEM secret", async () => {
    const pem = createPublicKey({ key: await issuerPublicJwk(), format: "jwk" })
      .export({ type: "spki", format: "pem" })
      .toString();
    const token = await new SignJWT(validClaims())
      .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: h.issuer.keyId })
      .sign(new TextEncoder().encode(pem));
    await expectRejected(h.verifier, token, "TG_TOKEN_ALGORITHM_FORBIDDEN");
  });

  it("refuses HS256 and HS512 signed with the issuer's public JWK as the secret", async () => {
    const jwkText = JSON.stringify(await issuerPublicJwk());
    for (const alg of ["HS256", "HS512"]) {
      const token = await new SignJWT(validClaims())
        .setProtectedHeader({ alg, typ: "JWT", kid: h.issuer.keyId })
        .sign(new TextEncoder().encode(jwkText));
      await expectRejected(h.verifier, token, "TG_TOKEN_ALGORITHM_FORBIDDEN");
    }
  });

  it("refuses an asymmetric algorithm outside the issuer's allow-list, before any key lookup", async () => {
    const before = h.issuer.requestCount();
    const { privateKey } = await generateKeyPair("PS256");
    const token = await new SignJWT(validClaims())
      .setProtectedHeader({ alg: "PS256", kid: h.issuer.keyId })
      .sign(privateKey);
    await expectRejected(h.verifier, token, "TG_TOKEN_ALGORITHM_FORBIDDEN");
    expect(h.issuer.requestCount()).toBe(before);
  });
});

describe("key attacks", () => {
  it("refuses a foreign key that claims the issuer's kid", async () => {
    const { privateKey } = await generateKeyPair("RS256");
    const token = await new SignJWT(validClaims())
      .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: h.issuer.keyId })
      .sign(privateKey);
    const error = await expectRejected(h.verifier, token, "TG_TOKEN_SIGNATURE_INVALID");
    expect(error.message).toContain(h.issuer.keyId);
  });

  it("refuses a token carrying its own key in a jwk header, even signed by that key", async () => {
    const { privateKey, publicKey } = await generateKeyPair("RS256");
    const token = await new SignJWT(validClaims())
      .setProtectedHeader({ alg: "RS256", kid: h.issuer.keyId, jwk: await exportJWK(publicKey) })
      .sign(privateKey);
    await expectRejected(h.verifier, token, "TG_TOKEN_INVALID");
  });

  it.each([
    ["jwk", { kty: "RSA", n: "AQAB", e: "AQAB" }],
    ["jku", "http://127.0.0.1:9/jwks"],
    ["x5u", "http://127.0.0.1:9/cert.pem"],
    ["x5c", ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]],
  ])("refuses a %s header even on a token the issuer really signed", async (name, value) => {
    const token = await h.mint({}, { header: { [name]: value } });
    await expectRejected(h.verifier, token, "TG_TOKEN_INVALID");
  });

  it("refuses a crit header even on a token the issuer really signed", async () => {
    const token = await h.mint({}, { header: { crit: ["x-tollgate"], "x-tollgate": true } });
    await expectRejected(h.verifier, token, "TG_TOKEN_INVALID");
  });

  it("refuses a kid the issuer never published", async () => {
    const token = await h.mint({}, { keyId: "not-a-published-kid" });
    await expectRejected(h.verifier, token, "TG_TOKEN_KEY_UNKNOWN");
  });
});

describe("time claims (30s skew)", () => {
  it("accepts a token that expired within the skew; refuses one that expired beyond it", async () => {
    const now = h.nowSeconds();
    await expect(
      h.verifier.verify(await h.mint({ iat: now - 310, nbf: now - 310, exp: now - 10 })),
    ).resolves.toBeDefined();
    await expectRejected(
      h.verifier,
      await h.mint({ iat: now - 400, nbf: now - 400, exp: now - 100 }),
      "TG_TOKEN_EXPIRED",
    );
  });

  it("accepts nbf within the skew; refuses a future nbf beyond it", async () => {
    const now = h.nowSeconds();
    await expect(h.verifier.verify(await h.mint({ nbf: now + 10 }))).resolves.toBeDefined();
    await expectRejected(h.verifier, await h.mint({ nbf: now + 120 }), "TG_TOKEN_NOT_YET_VALID");
  });

  it("accepts iat within the skew; refuses a future iat beyond it", async () => {
    const now = h.nowSeconds();
    await expect(h.verifier.verify(await h.mint({ iat: now + 10, nbf: now }))).resolves.toBeDefined();
    await expectRejected(
      h.verifier,
      await h.mint({ iat: now + 120, nbf: now, exp: now + 600 }),
      "TG_TOKEN_NOT_YET_VALID",
    );
  });

  it("refuses a token without exp", async () => {
    await expectRejected(h.verifier, await h.mint({ exp: undefined }), "TG_TOKEN_INVALID");
  });

  it("refuses non-numeric time claims", async () => {
    const now = h.nowSeconds();
    await expectRejected(h.verifier, await h.mint({ exp: String(now + 300) }), "TG_TOKEN_INVALID");
    await expectRejected(h.verifier, await h.mint({ nbf: String(now) }), "TG_TOKEN_INVALID");
  });

  it("accepts a token younger than max_token_age; refuses an older one", async () => {
    const aged = await startVerifierHarness({ issuer: { maxTokenAgeMs: 60_000 } });
    try {
      const now = aged.nowSeconds();
      await expect(aged.verifier.verify(await aged.mint({ iat: now - 30 }))).resolves.toBeDefined();
      await expectRejected(
        aged.verifier,
        await aged.mint({ iat: now - 120, exp: now + 300 }),
        "TG_TOKEN_TOO_OLD",
      );
      await expectRejected(aged.verifier, await aged.mint({ iat: undefined }), "TG_TOKEN_INVALID");
    } finally {
      await aged.close();
    }
  });
});

describe("issuer pinning", () => {
  it("accepts the exact GitHub issuer string; refuses look-alikes without fetching from them", async () => {
    const genuine = await h.mint({ iss: githubActionsIssuer });
    await expect(h.verifier.verify(genuine)).resolves.toMatchObject({ issuer: "github" });
    for (const iss of [
      "https://token.actions.githubusercontent.com.evil.example",
      "https://token.actions.githubusercontent.com/",
      "https://TOKEN.actions.githubusercontent.com",
      "https://token.actions.githubusercontent.com:443",
      "http://token.actions.githubusercontent.com",
      " https://token.actions.githubusercontent.com",
      `${h.issuer.issuerUrl}/`,
      "",
    ]) {
      await expectRejected(h.verifier, await h.mint({ iss }), "TG_TOKEN_ISSUER_UNKNOWN");
    }
    expect(h.fetchedUrls.every((url) => url.startsWith(h.issuer.issuerUrl))).toBe(true);
  });

  it("refuses iss that is missing, an array or a number", async () => {
    for (const iss of [undefined, [h.issuer.issuerUrl], 42, { iss: h.issuer.issuerUrl }]) {
      await expectRejected(h.verifier, await h.mint({ iss }), "TG_TOKEN_ISSUER_UNKNOWN");
    }
  });
});

describe("audience", () => {
  it("accepts aud as the configured string; refuses another audience", async () => {
    await expect(h.verifier.verify(await h.mint())).resolves.toBeDefined();
    await expectRejected(
      h.verifier,
      await h.mint({}, { audience: "other.example.com" }),
      "TG_TOKEN_AUDIENCE_MISMATCH",
    );
  });

  it("accepts an aud array containing the audience; refuses an array without it", async () => {
    await expect(
      h.verifier.verify(await h.mint({}, { audience: ["x", testAudience] })),
    ).resolves.toBeDefined();
    await expectRejected(
      h.verifier,
      await h.mint({}, { audience: ["x", "y"] }),
      "TG_TOKEN_AUDIENCE_MISMATCH",
    );
  });

  it("refuses a missing, empty, numeric or prefixed aud", async () => {
    for (const aud of [undefined, "", [], 1, `${testAudience}.evil`, testAudience.toUpperCase()]) {
      await expectRejected(h.verifier, await h.mint({ aud }), "TG_TOKEN_AUDIENCE_MISMATCH");
    }
  });
});

describe("tampering", () => {
  it("refuses a genuine signature moved onto another payload", async () => {
    const genuine = await h.mint({ repository_owner_id: "65" });
    const other = await h.mint({ repository_owner_id: "999" });
    const [header, , signature] = genuine.split(".");
    const [, payload] = other.split(".");
    await expect(h.verifier.verify(genuine)).resolves.toBeDefined();
    await expectRejected(h.verifier, `${header}.${payload}.${signature}`, "TG_TOKEN_SIGNATURE_INVALID");
  });

  it("refuses claims re-encoded after signing", async () => {
    const genuine = await h.mint();
    const [header, payload, signature] = genuine.split(".");
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload!))) as Record<
      string,
      unknown
    >;
    const forged = base64url.encode(JSON.stringify({ ...claims, ref: "refs/heads/release" }));
    await expectRejected(h.verifier, `${header}.${forged}.${signature}`, "TG_TOKEN_SIGNATURE_INVALID");
  });

  it("refuses a header re-encoded after signing", async () => {
    const genuine = await h.mint();
    const [, payload, signature] = genuine.split(".");
    const header = base64url.encode(JSON.stringify({ alg: "RS256", kid: h.issuer.keyId, typ: "JWT", x: 1 }));
    await expectRejected(h.verifier, `${header}.${payload}.${signature}`, "TG_TOKEN_SIGNATURE_INVALID");
  });
});

describe("malformed and oversized input", () => {
  const json = (value: unknown) => base64url.encode(JSON.stringify(value));

  it.each([
    ["empty", () => ""],
    ["one part", () => "abc"],
    ["two parts", () => "abc.def"],
    ["four parts", () => "a.b.c.d"],
    ["five parts (JWE)", () => "a.b.c.d.e"],
    ["bad base64", () => "%%%.%%%.%%%"],
    ["non-JSON header", () => `${base64url.encode("not json")}.${json({ iss: "x" })}.c2ln`],
    ["non-JSON payload", () => `${json({ alg: "RS256" })}.${base64url.encode("not json")}.c2ln`],
    ["array payload", () => `${json({ alg: "RS256" })}.${json([1, 2])}.c2ln`],
    ["header without alg", () => `${json({ typ: "JWT" })}.${json({ iss: "x" })}.c2ln`],
    ["whitespace", () => "   "],
  ])("refuses %s as malformed", async (_name, token) => {
    await expectRejected(h.verifier, token(), "TG_TOKEN_MALFORMED");
  });

  it("refuses a bad signature encoding on an otherwise genuine token", async () => {
    const [header, payload] = (await h.mint()).split(".");
    await expectRejected(h.verifier, `${header}.${payload}.!!!`, "TG_TOKEN_MALFORMED");
  });

  it("accepts a large but allowed token; refuses an oversized one before parsing it", async () => {
    const limit = h.verifierSettings.maxTokenBytes;
    await expect(h.verifier.verify(await h.mint({ padding: "x".repeat(limit / 2) }))).resolves.toBeDefined();
    await expectRejected(h.verifier, await h.mint({ padding: "x".repeat(limit) }), "TG_TOKEN_TOO_LARGE");
    // Not even a JWT: the size cap answers first.
    await expectRejected(h.verifier, "!".repeat(limit + 1), "TG_TOKEN_TOO_LARGE");
    // Multi-byte characters count in bytes, not in UTF-16 units.
    await expectRejected(h.verifier, "é".repeat(limit / 2 + 1), "TG_TOKEN_TOO_LARGE");
  });
});
