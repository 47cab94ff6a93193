import { Redis } from "ioredis";
import pino from "pino";
import { RateLimiterRes } from "rate-limiter-flexible";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, createStateStore, type StateStore } from "../../src/store/index.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";

/**
 * What the abuse controls ask of the store, held by both implementations: `addOnce` (single use) is
 * atomic, and `createCounter` (rate limits) counts one limit for every client of the store.
 */

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const silent = pino({ level: "silent" });
const openRedisStore = () => createStateStore({ kind: "redis", url: redis.url }, { logger: silent });

describe.each([
  ["memory", () => createMemoryStore()],
  ["redis", openRedisStore],
])("%s store: addOnce and createCounter", (_kind, create: () => StateStore) => {
  it("addOnce: of many concurrent calls for one key exactly one adds it; another key is added on its own", async () => {
    const store = create();
    try {
      const key = `once:test:${Math.random()}`;
      const results = await Promise.all(Array.from({ length: 20 }, () => store.addOnce(key, 60_000)));
      expect(results.filter((result) => result === "added")).toHaveLength(1);
      expect(results.filter((result) => result === "exists")).toHaveLength(19);
      expect(await store.addOnce(`${key}:other`, 60_000)).toBe("added");
    } finally {
      await store.close();
    }
  });

  it("addOnce: the key is forgotten after its time to live", async () => {
    const store = create();
    try {
      const key = `once:ttl:${Math.random()}`;
      expect(await store.addOnce(key, 50)).toBe("added");
      expect(await store.addOnce(key, 50)).toBe("exists");
      await new Promise((resolve) => setTimeout(resolve, 120));
      expect(await store.addOnce(key, 50)).toBe("added");
    } finally {
      await store.close();
    }
  });

  it("createCounter: `points` per window for a key, then rejected with a RateLimiterRes; other keys apart", async () => {
    const store = create();
    try {
      const counter = store.createCounter({
        keyPrefix: `rl:test:${Math.random()}`,
        points: 3,
        durationSeconds: 60,
      });
      for (let index = 0; index < 3; index++) await counter.consume("a");
      const rejection = await counter.consume("a").catch((error: unknown) => error);
      expect(rejection).toBeInstanceOf(RateLimiterRes);
      expect((rejection as RateLimiterRes).msBeforeNext).toBeGreaterThan(0);
      await expect(counter.consume("b")).resolves.toBeInstanceOf(RateLimiterRes);
    } finally {
      await store.close();
    }
  });

  it("createSlots: at most `max` held per key; a release frees one (once); other keys apart", async () => {
    const store = create();
    try {
      const slots = store.createSlots({ keyPrefix: `cc:test:${Math.random()}`, max: 2 });
      const first = await slots.acquire("repo");
      const second = await slots.acquire("repo");
      expect(first).toBeDefined();
      expect(second).toBeDefined();
      expect(await slots.acquire("repo")).toBeUndefined();
      expect(await slots.acquire("other")).toBeDefined();
      first!.release();
      first!.release(); // a second release gives nothing more back
      await new Promise((resolve) => setTimeout(resolve, 20)); // Redis: the release is sent, not awaited
      expect(await slots.acquire("repo")).toBeDefined();
      expect(await slots.acquire("repo")).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});

describe("redis store: one count for every instance", () => {
  it("slots: two instances share `max`; held slots are renewed past their lease, and a dead instance's free themselves", async () => {
    const first = openRedisStore();
    const second = openRedisStore();
    const third = openRedisStore();
    try {
      const prefix = `cc:shared:${Math.random()}`;
      const [a, b, c] = [first, second, third].map((store) =>
        store.createSlots({ keyPrefix: prefix, max: 3, leaseMs: 300 }),
      );
      const held = await Promise.all([a!.acquire("repo"), a!.acquire("repo"), b!.acquire("repo")]);
      expect(held.every((slot) => slot !== undefined)).toBe(true);
      expect(await b!.acquire("repo")).toBeUndefined();
      // Held for more than twice the lease: renewals keep all three.
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(await c!.acquire("repo")).toBeUndefined();
      // The first instance dies without releasing (its renewals stop with it) …
      await first.close();
      expect(await c!.acquire("repo")).toBeUndefined();
      // … and within one lease its two slots are free for the others.
      await new Promise((resolve) => setTimeout(resolve, 450));
      expect(await c!.acquire("repo")).toBeDefined();
      expect(await c!.acquire("repo")).toBeDefined();
      expect(await c!.acquire("repo")).toBeUndefined();
    } finally {
      await Promise.all([second.close(), third.close()]);
    }
  });

  it("slots with Redis down reject with an Error (the caller's on_store_error decides)", async () => {
    const store = openRedisStore();
    try {
      const slots = store.createSlots({ keyPrefix: `cc:down:${Math.random()}`, max: 1 });
      await redis.stop();
      let failure: unknown;
      for (let attempt = 0; attempt < 20 && failure === undefined; attempt++) {
        failure = await slots.acquire("k").then(
          () => undefined,
          (error: unknown) => error,
        );
      }
      expect(failure).toBeInstanceOf(Error);
      await redis.start();
    } finally {
      await store.close();
    }
  });

  it("two stores (two instances' connections) share one counter and one addOnce", async () => {
    const first = openRedisStore();
    const second = openRedisStore();
    try {
      const prefix = `rl:shared:${Math.random()}`;
      const counters = [first, second].map((store) =>
        store.createCounter({ keyPrefix: prefix, points: 10, durationSeconds: 60 }),
      );
      // 20 concurrent requests, split across both: exactly 10 admitted.
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, index) =>
          counters[index % 2]!.consume("repo").then(
            () => "allowed",
            () => "limited",
          ),
        ),
      );
      expect(outcomes.filter((outcome) => outcome === "allowed")).toHaveLength(10);
      const key = `once:shared:${Math.random()}`;
      const added = await Promise.all([first.addOnce(key, 60_000), second.addOnce(key, 60_000)]);
      expect(added.sort()).toEqual(["added", "exists"]);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it("batched in one turn and spread over two instances and several turns, a limit admits exactly its points; past them no Redis call is made", async () => {
    const first = openRedisStore();
    const second = openRedisStore();
    const probe = new Redis(redis.url);
    try {
      const prefix = `rl:batched:${Math.random()}`;
      const counters = [first, second].map((store) =>
        store.createCounter({ keyPrefix: prefix, points: 25, durationSeconds: 60 }),
      );
      let allowed = 0;
      // Four turns of 12 requests on each instance (coalesced to one call per instance and turn).
      for (let turn = 0; turn < 4; turn++) {
        const outcomes = await Promise.all(
          Array.from({ length: 24 }, (_, index) =>
            counters[index % 2]!.consume("repo").then(
              () => true,
              (rejection: unknown) => {
                expect(rejection).toBeInstanceOf(RateLimiterRes);
                return false;
              },
            ),
          ),
        );
        allowed += outcomes.filter(Boolean).length;
      }
      expect(allowed).toBe(25);
      // Both instances have seen the key over its limit: they refuse it from memory, without Redis.
      const scriptCalls = async () => {
        const stats = await probe.info("commandstats");
        return [...stats.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce(
          (sum, match) => sum + Number(match[1]),
          0,
        );
      };
      const before = await scriptCalls();
      const later = await Promise.allSettled(
        Array.from({ length: 40 }, (_, index) => counters[index % 2]!.consume("repo")),
      );
      expect(later.every((result) => result.status === "rejected")).toBe(true);
      expect(await scriptCalls()).toBe(before);
      // Twin: another key still reaches Redis (one call for its turn's batch on each instance).
      await Promise.all(Array.from({ length: 6 }, (_, index) => counters[index % 2]!.consume("other")));
      expect(await scriptCalls()).toBe(before + 2);
    } finally {
      probe.disconnect();
      await Promise.all([first.close(), second.close()]);
    }
  });

  it("with Redis down: addOnce says unavailable and a counter rejects with an Error (not a RateLimiterRes); both work again once it is back", async () => {
    const store = openRedisStore();
    try {
      const counter = store.createCounter({
        keyPrefix: `rl:down:${Math.random()}`,
        points: 5,
        durationSeconds: 60,
      });
      await counter.consume("k");
      await redis.stop();
      // The store learns of the outage from its connection; the first calls may still wait for the timeout.
      let result = await store.addOnce(`once:down:${Math.random()}`, 60_000);
      for (let attempt = 0; attempt < 20 && result !== "unavailable"; attempt++) {
        result = await store.addOnce(`once:down:${Math.random()}`, 60_000);
      }
      expect(result).toBe("unavailable");
      const failure = await counter.consume("k").catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(Error);
      expect(failure).not.toBeInstanceOf(RateLimiterRes);
      await redis.start();
      let back = false;
      for (let attempt = 0; attempt < 100 && !back; attempt++) {
        back = (await store.addOnce(`once:back:${Math.random()}`, 60_000)) === "added";
        if (!back) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(back).toBe(true);
      await expect(counter.consume("k")).resolves.toBeInstanceOf(RateLimiterRes);
    } finally {
      await store.close();
    }
  });
});

describe("memory store: single use never forgets a live entry", () => {
  it("full of live entries, addOnce says unavailable instead of evicting one (which would allow a replay)", async () => {
    const store = createMemoryStore({ maxEntries: 3 });
    for (const key of ["a", "b", "c"]) expect(await store.addOnce(key, 60_000)).toBe("added");
    expect(await store.addOnce("d", 60_000)).toBe("unavailable");
    // The used ones are all still known.
    for (const key of ["a", "b", "c"]) expect(await store.addOnce(key, 60_000)).toBe("exists");
  });

  it("twin: expired entries make room", async () => {
    let now = 0;
    const store = createMemoryStore({ maxEntries: 2, clock: () => now });
    expect(await store.addOnce("a", 1_000)).toBe("added");
    expect(await store.addOnce("b", 1_000)).toBe("added");
    now = 2_000;
    expect(await store.addOnce("c", 1_000)).toBe("added");
  });
});
