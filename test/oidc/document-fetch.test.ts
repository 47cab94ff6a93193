import { afterEach, describe, expect, it } from "vitest";
import { createDevIssuer, type DevIssuer, githubLikeClaims } from "../../src/dev/dev-issuer.js";
import { isTollgateError } from "../../src/errors/index.js";
import {
  createTokenVerifier,
  defaultVerifierSettings,
  type IssuerSettings,
  type TokenVerifier,
  type VerifierSettings,
} from "../../src/oidc/index.js";
import { type StubServer, sendJson, startStubServer } from "./stub-server.js";
import {
  createLoopbackFetch,
  createTestClock,
  eventually,
  expectRejected,
  testAudience,
} from "./verifier-harness.js";

// Misbehaving issuers: every fetched document is size-capped, time-limited, must be JSON, is not followed
// through redirects, and discovery must name exactly the configured issuer.

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function devIssuer(): Promise<DevIssuer> {
  const issuer = await createDevIssuer({ clock: createTestClock() });
  cleanups.push(() => issuer.close());
  return issuer;
}

async function stub(handler: Parameters<typeof startStubServer>[0]): Promise<StubServer> {
  const server = await startStubServer(handler);
  cleanups.push(() => server.close());
  return server;
}

function verifierFor(
  issuer: Partial<IssuerSettings> & { issuer: string },
  settings: Partial<VerifierSettings> = {},
): { verifier: TokenVerifier; fetchedUrls: string[] } {
  const loopback = createLoopbackFetch();
  const verifier = createTokenVerifier(
    [{ name: "stub", audiences: [testAudience], algorithms: ["RS256"], clockSkewMs: 30_000, ...issuer }],
    { ...defaultVerifierSettings, ...settings },
    { clock: createTestClock(), fetch: loopback.fetch },
  );
  cleanups.push(() => verifier.close());
  return { verifier, fetchedUrls: loopback.urls };
}

async function lastError(verifier: TokenVerifier): Promise<string | undefined> {
  await verifier.start();
  expect(verifier.isReady()).toBe(false);
  return verifier.status()[0]?.lastError;
}

describe("size cap", () => {
  it("accepts a key set under the cap; aborts a streamed body as soon as it exceeds the cap", async () => {
    const issuer = await devIssuer();
    const small = verifierFor({ issuer: issuer.issuerUrl }, { maxDocumentBytes: 4096 });
    await small.verifier.start();
    expect(small.verifier.isReady()).toBe(true);

    let bytesSent = 0;
    let finished = false;
    const huge = await stub((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" }); // chunked: no length to check up front
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let remaining = 1024; // 64 MiB at most, and the test expects far less to be sent
      const pump = () => {
        while (remaining > 0) {
          remaining -= 1;
          bytesSent += chunk.length;
          if (!response.write(chunk)) return void response.once("drain", pump);
        }
        finished = true;
        response.end();
      };
      response.on("close", () => {
        remaining = 0;
      });
      pump();
    });
    const { verifier } = verifierFor(
      { issuer: issuer.issuerUrl, jwksUri: `${huge.url}/jwks` },
      { maxDocumentBytes: 64 * 1024 },
    );
    expect(await lastError(verifier)).toMatch(/exceeds the 65536-byte limit/);
    expect(finished).toBe(false);
    expect(bytesSent).toBeLessThan(64 * 1024 * 1024);
    const token = await issuer.mint(githubLikeClaims(), { audience: testAudience });
    await expectRejected(verifier, token, "TG_ISSUER_UNAVAILABLE");
  });

  it("refuses a declared content-length over the cap without reading it", async () => {
    const issuer = await devIssuer();
    const server = await stub((_request, response) => {
      response.writeHead(200, { "content-type": "application/json", "content-length": 10_000_000 });
      response.write("{");
    });
    const { verifier } = verifierFor(
      { issuer: issuer.issuerUrl, jwksUri: `${server.url}/jwks` },
      { maxDocumentBytes: 1024 },
    );
    expect(await lastError(verifier)).toMatch(/10000000 bytes exceeds the 1024-byte limit/);
  });
});

describe("timeout", () => {
  it("gives up on an issuer that never answers", async () => {
    const server = await stub(() => {
      // Accept and say nothing.
    });
    const { verifier } = verifierFor({ issuer: server.url }, { fetchTimeoutMs: 300 });
    expect(await lastError(verifier)).toMatch(/timed out after 300ms/);
  });

  it("gives up on a body that stalls after the headers", async () => {
    const server = await stub((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.write('{"keys": [');
    });
    const { verifier } = verifierFor(
      { issuer: "http://127.0.0.1:1", jwksUri: `${server.url}/jwks` },
      { fetchTimeoutMs: 300 },
    );
    expect(await lastError(verifier)).toMatch(/timed out after 300ms/);
  });
});

describe("close", () => {
  it("aborts a key fetch under way, so stopping does not wait for a slow issuer", async () => {
    let connectionClosed = false;
    let requested = false;
    const server = await stub((request) => {
      requested = true;
      request.socket.once("close", () => {
        connectionClosed = true;
      });
    });
    const { verifier } = verifierFor({ issuer: server.url }, { fetchTimeoutMs: 60_000 });
    const starting = verifier.start();
    await eventually(() => requested, "the discovery request");
    expect(connectionClosed).toBe(false);
    verifier.close();
    await starting;
    await eventually(() => connectionClosed, "the aborted connection");
    expect(verifier.isReady()).toBe(false);
  });
});

describe("discovery", () => {
  /** A discovery endpoint at its own address that points at the dev issuer's keys. */
  async function discoveryStub(document: (url: string) => Record<string, unknown>) {
    return stub((request, response, url) => {
      if (request.url === "/.well-known/openid-configuration") return sendJson(response, document(url));
      sendJson(response, { error: "not found" }, 404);
    });
  }

  it("accepts a document naming exactly the configured issuer; refuses one that names another", async () => {
    const issuer = await devIssuer();
    const exact = await discoveryStub((url) => ({ issuer: url, jwks_uri: issuer.jwksUrl }));
    const good = verifierFor({ issuer: exact.url });
    await good.verifier.start();
    expect(good.verifier.isReady()).toBe(true);
    const token = await issuer.mint(githubLikeClaims({ iss: exact.url }), { audience: testAudience });
    await expect(good.verifier.verify(token)).resolves.toMatchObject({ issuer: "stub" });

    for (const named of [(url: string) => `${url}/`, () => issuer.issuerUrl, () => undefined]) {
      const other = await discoveryStub((url) => ({ issuer: named(url), jwks_uri: issuer.jwksUrl }));
      const { verifier, fetchedUrls } = verifierFor({ issuer: other.url });
      expect(await lastError(verifier)).toMatch(/names issuer .* not the configured|names issuer none/);
      expect(fetchedUrls).not.toContain(issuer.jwksUrl);
    }
  });

  it("refuses a jwks_uri that is plain http to a non-loopback host, without fetching it", async () => {
    const server = await discoveryStub((url) => ({
      issuer: url,
      jwks_uri: "http://keys.example.com/jwks",
    }));
    const { verifier, fetchedUrls } = verifierFor({ issuer: server.url });
    expect(await lastError(verifier)).toMatch(/jwks_uri must use https/);
    expect(fetchedUrls.some((url) => url.includes("example.com"))).toBe(false);
  });

  it("refuses a discovery document without jwks_uri", async () => {
    const server = await discoveryStub((url) => ({ issuer: url }));
    const { verifier } = verifierFor({ issuer: server.url });
    expect(await lastError(verifier)).toMatch(/has no jwks_uri/);
  });

  it("uses an explicit jwks_uri without any discovery request", async () => {
    const issuer = await devIssuer();
    const { verifier, fetchedUrls } = verifierFor({ issuer: issuer.issuerUrl, jwksUri: issuer.jwksUrl });
    await verifier.start();
    expect(verifier.isReady()).toBe(true);
    expect(fetchedUrls).toEqual([issuer.jwksUrl]);
  });
});

describe("document content", () => {
  it.each([
    [
      "a redirect",
      (response: import("node:http").ServerResponse) => {
        response.writeHead(302, { location: "http://127.0.0.1:1/jwks" });
        response.end();
      },
      /HTTP 302 \(redirects are not followed\)/,
    ],
    [
      "not JSON",
      (response: import("node:http").ServerResponse) => {
        response.writeHead(200, { "content-type": "application/json" });
        response.end("<html>keys</html>");
      },
      /not JSON/,
    ],
    [
      "a JSON array",
      (response: import("node:http").ServerResponse) => sendJson(response, [1]),
      /not a JSON object/,
    ],
    [
      "no keys array",
      (response: import("node:http").ServerResponse) => sendJson(response, { keys: "x" }),
      /no keys array/,
    ],
    [
      "only a symmetric key",
      (response: import("node:http").ServerResponse) =>
        sendJson(response, { keys: [{ kty: "oct", k: "c2VjcmV0", kid: "k" }] }),
      /no public signing keys/,
    ],
    [
      "only a private key",
      (response: import("node:http").ServerResponse) =>
        sendJson(response, { keys: [{ kty: "RSA", n: "AQAB", e: "AQAB", d: "AQAB", kid: "k" }] }),
      /no public signing keys/,
    ],
    [
      "an error status",
      (response: import("node:http").ServerResponse) => sendJson(response, { secret: "body" }, 500),
      /HTTP 500$/,
    ],
  ])("refuses %s", async (_name, answer, problem) => {
    const server = await stub((_request, response) => answer(response));
    const { verifier } = verifierFor({ issuer: "http://127.0.0.1:1", jwksUri: `${server.url}/jwks` });
    const message = await lastError(verifier);
    expect(message).toMatch(problem);
    expect(message).not.toContain("secret");
  });

  it("ignores symmetric and encryption keys next to a valid signing key", async () => {
    const issuer = await devIssuer();
    const published = (await (await fetch(issuer.jwksUrl)).json()) as { keys: unknown[] };
    const server = await stub((_request, response) =>
      sendJson(response, {
        keys: [
          { kty: "oct", k: "c2VjcmV0", kid: issuer.keyId },
          { ...(published.keys[0] as object), use: "enc", kid: "enc" },
          ...published.keys,
        ],
      }),
    );
    const { verifier } = verifierFor({ issuer: issuer.issuerUrl, jwksUri: `${server.url}/jwks` });
    await verifier.start();
    expect(verifier.isReady()).toBe(true);
    await expect(
      verifier.verify(await issuer.mint(githubLikeClaims(), { audience: testAudience })),
    ).resolves.toBeDefined();
    await expectRejected(
      verifier,
      await issuer.mint(githubLikeClaims(), { audience: testAudience, keyId: "enc" }),
      "TG_TOKEN_KEY_UNKNOWN",
    );
  });
});

describe("configuration safety", () => {
  const base: IssuerSettings = {
    name: "x",
    issuer: "https://issuer.example.com",
    audiences: [testAudience],
    algorithms: ["RS256"],
    clockSkewMs: 30_000,
  };

  it("accepts a sound issuer; refuses unsafe ones at creation", () => {
    expect(() => createTokenVerifier([base], defaultVerifierSettings).close()).not.toThrow();
    for (const unsafe of [
      { issuer: "http://issuer.example.com" },
      { jwksUri: "http://issuer.example.com/jwks" },
      { algorithms: ["HS256"] },
      { algorithms: ["none"] },
      { algorithms: ["RS256", "HS384"] },
      { algorithms: [] },
      { audiences: [] },
      { audiences: [""] },
    ]) {
      let error: unknown;
      try {
        createTokenVerifier([{ ...base, ...unsafe }], defaultVerifierSettings);
      } catch (caught) {
        error = caught;
      }
      expect(isTollgateError(error) && error.code, JSON.stringify(unsafe)).toBe("TG_CONFIG_INVALID");
    }
  });

  it("refuses the same issuer configured twice", () => {
    expect(() => createTokenVerifier([base, { ...base, name: "y" }], defaultVerifierSettings)).toThrow(
      /configured twice/,
    );
  });
});
