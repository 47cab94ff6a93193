import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { decodeJwt, decodeProtectedHeader, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { type KeySetLoadEvent, oidcChannels } from "../../src/oidc/index.js";
import {
  eventually,
  expectRejected,
  startVerifierHarness,
  type VerifierHarness,
} from "./verifier-harness.js";

const cooldownMs = 30_000;
let harness: VerifierHarness | undefined;

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

/** A jose `jwtVerify` that counts calls: every call is a signature check. */
function countingJwtVerify(): { jwtVerify: typeof jwtVerify; calls: () => number } {
  let calls = 0;
  const counted = ((...args: Parameters<typeof jwtVerify>) => {
    calls += 1;
    return jwtVerify(...args);
  }) as typeof jwtVerify;
  return { jwtVerify: counted, calls: () => calls };
}

describe("verified-token cache", () => {
  it("answers a repeated token from the cache without a signature check; a new token is checked", async () => {
    const counter = countingJwtVerify();
    harness = await startVerifierHarness({ hooks: { jwtVerify: counter.jwtVerify } });
    const token = await harness.mint();
    const first = await harness.verifier.verify(token);
    expect(first.cached).toBe(false);
    expect(counter.calls()).toBe(1);
    const second = await harness.verifier.verify(token);
    expect(second.cached).toBe(true);
    expect(second.claims).toEqual(first.claims);
    expect(Object.isFrozen(second)).toBe(true);
    expect(counter.calls()).toBe(1);

    await harness.verifier.verify(await harness.mint());
    expect(counter.calls()).toBe(2);
  });

  it("shares one signature check between concurrent verifications of the same new token", async () => {
    const counter = countingJwtVerify();
    harness = await startVerifierHarness({ hooks: { jwtVerify: counter.jwtVerify } });
    const token = await harness.mint();
    const results = await Promise.all(Array.from({ length: 5 }, () => harness!.verifier.verify(token)));
    expect(results.every((result) => result.tokenSha256 === results[0]!.tokenSha256)).toBe(true);
    expect(counter.calls()).toBe(1);
  });

  it("serves a cached token until exp only, then re-verifies and refuses it", async () => {
    const counter = countingJwtVerify();
    harness = await startVerifierHarness({ hooks: { jwtVerify: counter.jwtVerify } });
    const token = await harness.mint({}, { expiresInSeconds: 60 });
    await harness.verifier.verify(token);
    harness.clock.advance(59_000);
    await expect(harness.verifier.verify(token)).resolves.toMatchObject({ cached: true });
    expect(counter.calls()).toBe(1);
    harness.clock.advance(2_000 + 30_000); // past exp and the skew
    await expectRejected(harness.verifier, token, "TG_TOKEN_EXPIRED");
    expect(counter.calls()).toBe(2);
  });

  it("stops serving a cached token once it exceeds max_token_age, even before exp", async () => {
    harness = await startVerifierHarness({ issuer: { maxTokenAgeMs: 60_000 } });
    const token = await harness.mint({}, { expiresInSeconds: 300 });
    await harness.verifier.verify(token);
    harness.clock.advance(50_000);
    await expect(harness.verifier.verify(token)).resolves.toMatchObject({ cached: true });
    harness.clock.advance(50_000);
    await expectRejected(harness.verifier, token, "TG_TOKEN_TOO_OLD");
  });

  it("does not cache refused tokens", async () => {
    const counter = countingJwtVerify();
    harness = await startVerifierHarness({ hooks: { jwtVerify: counter.jwtVerify } });
    const token = await harness.mint({}, { audience: "someone-else" });
    await expectRejected(harness.verifier, token, "TG_TOKEN_AUDIENCE_MISMATCH");
    await expectRejected(harness.verifier, token, "TG_TOKEN_AUDIENCE_MISMATCH");
    expect(counter.calls()).toBe(2);
  });

  it("is bounded: the oldest entry is evicted and must be verified again", async () => {
    const counter = countingJwtVerify();
    harness = await startVerifierHarness({
      verifier: { tokenCacheSize: 2 },
      hooks: { jwtVerify: counter.jwtVerify },
    });
    const [a, b, c] = await Promise.all([harness.mint(), harness.mint(), harness.mint()]);
    for (const token of [a!, b!, c!]) await harness.verifier.verify(token);
    expect(counter.calls()).toBe(3);
    await expect(harness.verifier.verify(c!)).resolves.toMatchObject({ cached: true });
    await expect(harness.verifier.verify(a!)).resolves.toMatchObject({ cached: false });
    expect(counter.calls()).toBe(4);
  });

  it("keeps a cached token valid after its key rotated away, while a new token with the old key fails", async () => {
    harness = await startVerifierHarness();
    const cachedToken = await harness.mint();
    const uncachedOldKeyToken = await harness.mint();
    await harness.verifier.verify(cachedToken);

    await harness.issuer.rotateKey();
    const newKeyToken = await harness.mint();
    // The new kid is unknown: one refetch picks up the rotated key set (which no longer has the old key).
    await expect(harness.verifier.verify(newKeyToken)).resolves.toMatchObject({ cached: false });

    await expect(harness.verifier.verify(cachedToken)).resolves.toMatchObject({ cached: true });
    await expectRejected(harness.verifier, uncachedOldKeyToken, "TG_TOKEN_KEY_UNKNOWN");
  });
});

describe("per-connection memo of the last token", () => {
  it("answers the same token again on the same connection as the cache does", async () => {
    const counter = countingJwtVerify();
    harness = await startVerifierHarness({ hooks: { jwtVerify: counter.jwtVerify } });
    const connection = {};
    const token = await harness.mint();
    await expect(harness.verifier.verify(token, connection)).resolves.toMatchObject({ cached: false });
    const second = await harness.verifier.verify(token, connection);
    const third = await harness.verifier.verify(token, connection);
    expect(second).toMatchObject({ cached: true });
    expect(third).toBe(second);
    expect(counter.calls()).toBe(1);
  });

  it("never answers a different token from the memo: a forged token after a good one is refused", async () => {
    harness = await startVerifierHarness();
    const connection = {};
    const token = await harness.mint();
    await harness.verifier.verify(token, connection);
    await harness.verifier.verify(token, connection);
    const [header, payload] = token.split(".");
    const forged = `${header}.${payload}.${"A".repeat(342)}`;
    await expectRejected(harness.verifier, forged, "TG_TOKEN_SIGNATURE_INVALID", connection);
    const otherCaller = await harness.mint({ repository_owner_id: "999" });
    await expect(harness.verifier.verify(otherCaller, connection)).resolves.toMatchObject({
      claims: expect.objectContaining({ repository_owner_id: "999" }),
    });
  });

  it("stops answering once the token's validity ends, as the cache does", async () => {
    harness = await startVerifierHarness();
    const connection = {};
    const token = await harness.mint({}, { expiresInSeconds: 60 });
    await harness.verifier.verify(token, connection);
    await harness.verifier.verify(token, connection);
    harness.clock.advance(59_000);
    await expect(harness.verifier.verify(token, connection)).resolves.toMatchObject({ cached: true });
    harness.clock.advance(2_000 + 30_000);
    await expectRejected(harness.verifier, token, "TG_TOKEN_EXPIRED", connection);
  });

  it("remembers nothing when the cache is off: every use is a signature check", async () => {
    const counter = countingJwtVerify();
    harness = await startVerifierHarness({
      verifier: { tokenCacheSize: 0 },
      hooks: { jwtVerify: counter.jwtVerify },
    });
    const connection = {};
    const token = await harness.mint();
    for (let i = 0; i < 3; i++) {
      await expect(harness.verifier.verify(token, connection)).resolves.toMatchObject({ cached: false });
    }
    expect(counter.calls()).toBe(3);
  });
});

describe("JWKS cache and unknown kid", () => {
  it("refetches for an unknown kid at most once per cooldown, with concurrent misses sharing one fetch", async () => {
    harness = await startVerifierHarness({ verifier: { unknownKidCooldownMs: cooldownMs } });
    const h = harness;
    expect(h.issuer.requestCount()).toBe(1); // start()

    await expectRejected(h.verifier, await h.mint({}, { keyId: "unknown-1" }), "TG_TOKEN_KEY_UNKNOWN");
    expect(h.issuer.requestCount()).toBe(2);

    const burst = await Promise.all(
      Array.from({ length: 10 }, (_, i) => h.mint({}, { keyId: `unknown-burst-${i}` })),
    );
    await Promise.all(burst.map((token) => expectRejected(h.verifier, token, "TG_TOKEN_KEY_UNKNOWN")));
    expect(h.issuer.requestCount()).toBe(2);

    h.clock.advance(cooldownMs);
    const later = await Promise.all(
      Array.from({ length: 10 }, (_, i) => h.mint({}, { keyId: `unknown-later-${i}` })),
    );
    await Promise.all(later.map((token) => expectRejected(h.verifier, token, "TG_TOKEN_KEY_UNKNOWN")));
    expect(h.issuer.requestCount()).toBe(3);

    // Known keys keep working throughout, without fetching.
    await expect(h.verifier.verify(await h.mint())).resolves.toBeDefined();
    expect(h.issuer.requestCount()).toBe(3);
  });

  it("picks up a rotated key on the first token that names it, and a kid unknown after that waits for the cooldown", async () => {
    harness = await startVerifierHarness({ verifier: { unknownKidCooldownMs: cooldownMs } });
    const h = harness;
    await h.issuer.rotateKey({ keepPrevious: true });
    await expect(h.verifier.verify(await h.mint())).resolves.toBeDefined();
    expect(h.issuer.requestCount()).toBe(2);

    await h.issuer.rotateKey({ keepPrevious: true });
    const tooSoon = await h.mint();
    await expectRejected(h.verifier, tooSoon, "TG_TOKEN_KEY_UNKNOWN");
    expect(h.issuer.requestCount()).toBe(2);
    h.clock.advance(cooldownMs);
    await expect(h.verifier.verify(tooSoon)).resolves.toBeDefined();
    expect(h.issuer.requestCount()).toBe(3);
  });

  it("tries each candidate key for a token without kid; refuses one that no published key signed", async () => {
    harness = await startVerifierHarness({ verifier: { unknownKidCooldownMs: cooldownMs } });
    const h = harness;
    const oldKeyNoKid = await h.mint({}, { header: { kid: undefined } });
    await h.issuer.rotateKey({ keepPrevious: true });
    h.clock.advance(cooldownMs);
    await expect(h.verifier.verify(await h.mint())).resolves.toBeDefined(); // loads [new, old]
    expect(decodeProtectedHeader(oldKeyNoKid).kid).toBeUndefined();
    await expect(h.verifier.verify(oldKeyNoKid)).resolves.toMatchObject({ cached: false });

    const { privateKey } = await generateKeyPair("RS256");
    const foreign = await new SignJWT(decodeJwt(await h.mint()))
      .setProtectedHeader({ alg: "RS256" })
      .sign(privateKey);
    await expectRejected(h.verifier, foreign, "TG_TOKEN_SIGNATURE_INVALID");
  });

  it("refreshes the key set in the background on its timer, picking up a rotation without any token", async () => {
    const reasons: string[] = [];
    const listener = (message: unknown) => reasons.push((message as KeySetLoadEvent).reason);
    subscribe(oidcChannels.keys, listener);
    try {
      harness = await startVerifierHarness({ verifier: { refreshIntervalMs: 50 } });
      const h = harness;
      await h.issuer.rotateKey();
      const fetchesAtRotation = h.issuer.requestCount();
      await eventually(() => h.issuer.requestCount() >= fetchesAtRotation + 2, "background refreshes");
      await expect(h.verifier.verify(await h.mint())).resolves.toBeDefined();
      h.verifier.close();
    } finally {
      unsubscribe(oidcChannels.keys, listener);
    }
    expect(reasons[0]).toBe("initial");
    expect(reasons).toContain("refresh");
    // The rotated key was already there: the token did not need an unknown-kid refetch.
    expect(reasons).not.toContain("unknown-kid");
  });

  it("publishes each key set load on the diagnostics channel", async () => {
    const events: KeySetLoadEvent[] = [];
    const listener = (message: unknown) => events.push(message as KeySetLoadEvent);
    subscribe(oidcChannels.keys, listener);
    try {
      harness = await startVerifierHarness();
      await expectRejected(
        harness.verifier,
        await harness.mint({}, { keyId: "nope" }),
        "TG_TOKEN_KEY_UNKNOWN",
      );
    } finally {
      unsubscribe(oidcChannels.keys, listener);
    }
    expect(events.map((event) => [event.issuer, event.reason, event.ok, event.keyCount])).toEqual([
      ["dev", "initial", true, 1],
      ["dev", "unknown-kid", true, 1],
    ]);
  });
});

describe("issuer outages", () => {
  const staleMs = 60 * 60_000;
  const refreshMs = 10 * 60_000;

  it("serves the last good keys through an outage until staleKeysMaxAgeMs, then fails closed with 503", async () => {
    harness = await startVerifierHarness({
      verifier: {
        staleKeysMaxAgeMs: staleMs,
        refreshIntervalMs: refreshMs,
        unknownKidCooldownMs: cooldownMs,
      },
    });
    const h = harness;
    h.issuer.setAvailable(false);

    // The refresh is overdue and fails in the background; tokens still verify with the keys we have.
    h.clock.advance(refreshMs + 1);
    await expect(h.verifier.verify(await h.mint())).resolves.toBeDefined();
    await eventually(() => h.verifier.status()[0]?.lastError !== undefined, "the failed background refresh");
    expect(h.verifier.status()[0]).toMatchObject({ issuer: "dev", ready: true });
    expect(h.verifier.status()[0]?.lastError).toContain("HTTP 503");
    expect(h.verifier.isReady()).toBe(true);

    h.clock.set(h.clock() - refreshMs - 1 + staleMs); // exactly at the limit: still served
    await expect(h.verifier.verify(await h.mint())).resolves.toBeDefined();

    h.clock.advance(1);
    const error = await expectRejected(h.verifier, await h.mint(), "TG_ISSUER_UNAVAILABLE");
    expect((error as Error & { status: number }).status).toBe(503);
    expect(h.verifier.isReady()).toBe(false);
    expect(h.verifier.status()[0]?.ready).toBe(false);

    // The issuer is back, but request-driven fetches wait for the cooldown.
    h.issuer.setAvailable(true);
    const fetchesBefore = h.issuer.requestCount();
    await expectRejected(h.verifier, await h.mint(), "TG_ISSUER_UNAVAILABLE");
    expect(h.issuer.requestCount()).toBe(fetchesBefore);
    h.clock.advance(cooldownMs);
    await expect(h.verifier.verify(await h.mint())).resolves.toBeDefined();
    expect(h.verifier.isReady()).toBe(true);
  });

  it("start() resolves while the issuer is down; verification fails closed until keys load", async () => {
    harness = await startVerifierHarness({ start: false, verifier: { unknownKidCooldownMs: cooldownMs } });
    const h = harness;
    h.issuer.setAvailable(false);
    await expect(h.verifier.start()).resolves.toBeUndefined();
    expect(h.verifier.isReady()).toBe(false);
    expect(h.verifier.status()[0]?.lastError).toContain("HTTP 503");
    await expectRejected(h.verifier, await h.mint(), "TG_ISSUER_UNAVAILABLE");

    h.issuer.setAvailable(true);
    h.clock.advance(cooldownMs);
    await expect(h.verifier.verify(await h.mint())).resolves.toBeDefined();
    expect(h.verifier.isReady()).toBe(true);
    expect(h.verifier.status()[0]?.lastError).toBeUndefined();
  });

  it("keeps the old keys when an unknown-kid refetch fails", async () => {
    harness = await startVerifierHarness({ verifier: { unknownKidCooldownMs: cooldownMs } });
    const h = harness;
    h.issuer.setAvailable(false);
    await expectRejected(h.verifier, await h.mint({}, { keyId: "rotated-in" }), "TG_TOKEN_KEY_UNKNOWN");
    expect(h.verifier.status()[0]?.lastError).toContain("HTTP 503");
    await expect(h.verifier.verify(await h.mint())).resolves.toBeDefined();
  });
});
