import { UnsecuredJWT } from "jose";
import { describe, expect, it } from "vitest";
import { createTokenSource } from "../../src/client/index.js";
import { TollgateError } from "../../src/errors/index.js";

// The clock is frozen and moved by hand; the "endpoint" is a counter that hands out numbered tokens.
const start = Date.UTC(2026, 0, 1, 12, 0, 0);

function tokenExpiringAt(ms: number, serial: number): string {
  return new UnsecuredJWT({ serial }).setExpirationTime(Math.floor(ms / 1000)).encode();
}

function fixture(lifetimeMs = 300_000) {
  let now = start;
  let fetches = 0;
  let failing = false;
  const source = createTokenSource({
    clock: () => now,
    fetchToken: async () => {
      fetches += 1;
      if (failing) throw new TollgateError("TG_CLIENT_TOKEN_UNAVAILABLE", "endpoint down");
      return tokenExpiringAt(now + lifetimeMs, fetches);
    },
  });
  return {
    source,
    advance: (ms: number) => {
      now += ms;
    },
    fetches: () => fetches,
    setFailing: (value: boolean) => {
      failing = value;
    },
  };
}

describe("createTokenSource", () => {
  it("reuses a token while more than a minute of it is left", async () => {
    const { source, advance, fetches } = fixture();
    const first = await source.token();
    advance(239_000); // 61 s left
    expect(await source.token()).toBe(first);
    expect(fetches()).toBe(1);
  });

  it("refreshes once less than a minute is left, before the token expires", async () => {
    const { source, advance, fetches } = fixture();
    const first = await source.token();
    advance(241_000); // 59 s left: still valid, but too close to expiry to hand out
    const second = await source.token();
    expect(second).not.toBe(first);
    expect(fetches()).toBe(2);
    expect(source.cachedUntil()).toBe(start + 241_000 + 300_000);
  });

  it("keeps a long job going: an hour of calls costs one fetch per four minutes, never an expired token", async () => {
    const { source, advance, fetches } = fixture();
    for (let minute = 0; minute < 60; minute += 1) {
      await source.token();
      expect(source.cachedUntil()! - (start + minute * 60_000)).toBeGreaterThan(60_000);
      advance(60_000);
    }
    expect(fetches()).toBe(15);
  });

  it("shares one fetch between concurrent callers (single flight)", async () => {
    const { source, fetches } = fixture();
    const tokens = await Promise.all(Array.from({ length: 20 }, () => source.token()));
    expect(new Set(tokens).size).toBe(1);
    expect(fetches()).toBe(1);
  });

  it("hands out the cached token when a refresh fails but the token still has a few seconds", async () => {
    const { source, advance, setFailing } = fixture();
    const first = await source.token();
    advance(250_000); // 50 s left: refresh due
    setFailing(true);
    expect(await source.token()).toBe(first);
  });

  it("fails when a refresh fails and the cached token is (nearly) expired", async () => {
    const { source, advance, setFailing } = fixture();
    await source.token();
    advance(297_000); // 3 s left: below the grace period
    setFailing(true);
    await expect(source.token()).rejects.toMatchObject({ code: "TG_CLIENT_TOKEN_UNAVAILABLE" });
  });

  it("never caches a token without exp", async () => {
    let fetches = 0;
    const source = createTokenSource({
      fetchToken: async () => {
        fetches += 1;
        return new UnsecuredJWT({}).encode();
      },
    });
    await source.token();
    await source.token();
    expect(fetches).toBe(2);
    expect(source.cachedUntil()).toBeUndefined();
  });

  it("refuses an answer that is not a JWT, without repeating it", async () => {
    const source = createTokenSource({ fetchToken: async () => "not-a-jwt-but-maybe-a-secret" });
    const error = await source.token().catch((caught: unknown) => caught as TollgateError);
    expect(error).toMatchObject({ code: "TG_CLIENT_TOKEN_UNAVAILABLE" });
    expect(String((error as Error).message)).not.toContain("maybe-a-secret");
  });
});
