import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import {
  createDevIssuer,
  type DevIssuer,
  githubLikeClaims,
  mintWithKeyFile,
} from "../../src/dev/dev-issuer.js";
import { createTokenVerifier, defaultVerifierSettings, type TokenVerifier } from "../../src/oidc/index.js";
import { createLoopbackFetch, expectRejected, testAudience } from "./verifier-harness.js";

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tollgate-dev-issuer-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function started(options: Parameters<typeof createDevIssuer>[0] = {}): Promise<DevIssuer> {
  const issuer = await createDevIssuer(options);
  cleanups.push(() => issuer.close());
  return issuer;
}

async function trusting(issuer: DevIssuer): Promise<TokenVerifier> {
  const verifier = createTokenVerifier(
    [
      {
        name: "dev",
        issuer: issuer.issuerUrl,
        audiences: [testAudience],
        algorithms: ["RS256"],
        clockSkewMs: 30_000,
      },
    ],
    defaultVerifierSettings,
    { fetch: createLoopbackFetch().fetch },
  );
  cleanups.push(async () => verifier.close());
  await verifier.start();
  return verifier;
}

describe("createDevIssuer", () => {
  it("serves GitHub-shaped discovery and a JWKS with only public members", async () => {
    const issuer = await started();
    const discovery = (await (
      await fetch(`${issuer.issuerUrl}/.well-known/openid-configuration`)
    ).json()) as Record<string, unknown>;
    expect(discovery.issuer).toBe(issuer.issuerUrl);
    expect(discovery.jwks_uri).toBe(issuer.jwksUrl);
    expect(discovery.id_token_signing_alg_values_supported).toEqual(["RS256"]);
    const { keys } = (await (await fetch(issuer.jwksUrl)).json()) as { keys: Record<string, unknown>[] };
    expect(keys).toHaveLength(1);
    expect(Object.keys(keys[0]!).sort()).toEqual(["alg", "e", "kid", "kty", "n", "use"]);
    expect(keys[0]!.kid).toBe(issuer.keyId);
    expect(issuer.requestCount()).toBe(1);
  });

  it("answers 503 while unavailable and counts those JWKS requests too", async () => {
    const issuer = await started();
    issuer.setAvailable(false);
    expect((await fetch(issuer.jwksUrl)).status).toBe(503);
    expect((await fetch(`${issuer.issuerUrl}/.well-known/openid-configuration`)).status).toBe(503);
    issuer.setAvailable(true);
    expect((await fetch(issuer.jwksUrl)).status).toBe(200);
    expect(issuer.requestCount()).toBe(2);
  });

  it("listens on loopback; refuses any other address", async () => {
    const issuer = await started({ host: "127.0.0.1" });
    expect(issuer.issuerUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const host of ["0.0.0.0", "::", "10.0.0.1", "example.com"]) {
      await expect(createDevIssuer({ host })).rejects.toThrow(/loopback only/);
    }
  });

  it("mints stamped tokens: iss, iat, nbf, exp 5 minutes later, a fresh jti, kid in the header", async () => {
    const nowMs = 1_900_000_000_000;
    const issuer = await started({ clock: () => nowMs });
    const token = await issuer.mint({ sub: "x" }, { audience: testAudience });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: issuer.issuerUrl, sub: "x", aud: testAudience, iat: 1_900_000_000 });
    expect(claims.nbf).toBe(1_900_000_000);
    expect(claims.exp).toBe(1_900_000_300);
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(decodeJwt(await issuer.mint({})).jti).not.toBe(claims.jti);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: "RS256", typ: "JWT", kid: issuer.keyId });
  });

  it("lets claims override or remove stamped ones", async () => {
    const issuer = await started();
    const claims = decodeJwt(await issuer.mint({ iss: "https://elsewhere.example", exp: undefined }));
    expect(claims.iss).toBe("https://elsewhere.example");
    expect(claims).not.toHaveProperty("exp");
  });

  it("rotates keys: the old key leaves the JWKS unless kept", async () => {
    const issuer = await started();
    const first = issuer.keyId;
    await issuer.rotateKey({ keepPrevious: true });
    const second = issuer.keyId;
    expect(second).not.toBe(first);
    let kids = ((await (await fetch(issuer.jwksUrl)).json()) as { keys: { kid: string }[] }).keys.map(
      (k) => k.kid,
    );
    expect(kids).toEqual([second, first]);
    await issuer.rotateKey();
    kids = ((await (await fetch(issuer.jwksUrl)).json()) as { keys: { kid: string }[] }).keys.map(
      (k) => k.kid,
    );
    expect(kids).toEqual([issuer.keyId]);
  });
});

describe("key file and mintWithKeyFile", () => {
  it("creates the key file with mode 0600 and reuses it on the next start", async () => {
    const keyFile = join(await tempDir(), "issuer-key.json");
    const first = await started({ keyFile, keyId: "dev-key-1" });
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect(first.keyId).toBe("dev-key-1");
    const text = await readFile(keyFile, "utf8");
    expect(JSON.parse(text)).toMatchObject({ kty: "RSA", kid: "dev-key-1", alg: "RS256" });
    await first.close();
    const second = await started({ keyFile });
    expect(second.keyId).toBe("dev-key-1");
    expect(await readFile(keyFile, "utf8")).toBe(text);
  });

  it("signs without a server tokens the running issuer's verifier trusts; another key file's are refused", async () => {
    const dir = await tempDir();
    const keyFile = join(dir, "issuer-key.json");
    const issuer = await started({ keyFile });
    const verifier = await trusting(issuer);
    const token = await mintWithKeyFile(
      keyFile,
      issuer.issuerUrl,
      githubLikeClaims({ ref: "refs/heads/dev" }),
      {
        audience: testAudience,
        expiresInSeconds: 120,
      },
    );
    const verified = await verifier.verify(token);
    expect(verified.claims.ref).toBe("refs/heads/dev");
    expect(verified.claims.exp).toBe((verified.claims.iat as number) + 120);

    const strangerFile = join(dir, "stranger-key.json");
    const stranger = await started({ keyFile: strangerFile });
    await stranger.close();
    const foreign = await mintWithKeyFile(strangerFile, issuer.issuerUrl, githubLikeClaims(), {
      audience: testAudience,
    });
    await expectRejected(verifier, foreign, "TG_TOKEN_KEY_UNKNOWN");
  });

  it("writes a rotated key to the key file, so mintWithKeyFile follows the rotation", async () => {
    const keyFile = join(await tempDir(), "issuer-key.json");
    const issuer = await started({ keyFile });
    await issuer.rotateKey();
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const token = await mintWithKeyFile(keyFile, issuer.issuerUrl, {}, { audience: testAudience });
    expect(decodeProtectedHeader(token).kid).toBe(issuer.keyId);
  });

  it("refuses a key file that does not hold a private RSA JWK", async () => {
    const keyFile = join(await tempDir(), "public-only.json");
    const issuer = await started();
    const { keys } = (await (await fetch(issuer.jwksUrl)).json()) as { keys: unknown[] };
    await writeFile(keyFile, JSON.stringify(keys[0]));
    await expect(mintWithKeyFile(keyFile, issuer.issuerUrl, {})).rejects.toThrow(/private RSA JWK/);
  });
});

describe("githubLikeClaims", () => {
  it("matches the push-main fixture, minus the claims mint stamps and the audience", async () => {
    const fixture = JSON.parse(
      await readFile(new URL("../fixtures/claims/push-main.json", import.meta.url), "utf8"),
    ) as Record<string, unknown>;
    for (const stamped of ["iss", "iat", "nbf", "exp", "jti", "aud"]) delete fixture[stamped];
    expect(githubLikeClaims()).toEqual(fixture);
  });

  it("applies overrides, and undefined removes a claim", () => {
    const claims = githubLikeClaims({ repository_owner_id: "999", actor: undefined });
    expect(claims.repository_owner_id).toBe("999");
    expect(JSON.parse(JSON.stringify(claims))).not.toHaveProperty("actor");
  });
});
