import { PassThrough } from "node:stream";
import { Redis } from "ioredis";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, createStateStore, type StateStore } from "../../src/store/index.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";

let redis: TestRedis;
let raw: Redis;
beforeAll(async () => {
  redis = await startTestRedis();
  raw = new Redis(redis.url);
  // The test's own client sees Redis stop too; its reconnect errors are expected there.
  raw.on("error", () => {});
});
afterAll(async () => {
  raw?.disconnect();
  await redis?.stop();
});

function capturedLogger(): { logger: pino.Logger; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new PassThrough();
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  return { logger: pino(stream), text: () => Buffer.concat(chunks).toString("utf8") };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The same contract, held by both implementations: what the broker's cache relies on.
describe.each([
  ["memory", () => createMemoryStore()],
  ["redis", () => createStateStore({ kind: "redis", url: redis.url }, { logger: pino({ level: "silent" }) })],
])("%s store: the StateStore contract", (_kind, create: () => StateStore) => {
  it("an unknown key is undefined; a value set is read back, by every key alone", async () => {
    const store = create();
    try {
      expect(await store.get("contract:unknown")).toBeUndefined();
      await store.set("contract:a", "one", 60_000);
      await store.set("contract:b", "two", 60_000);
      expect(await store.get("contract:a")).toBe("one");
      expect(await store.get("contract:b")).toBe("two");
    } finally {
      await store.close();
    }
  });

  it("a value is gone once its time to live is over", async () => {
    const store = create();
    try {
      await store.set("contract:short", "x", 60);
      expect(await store.get("contract:short")).toBe("x");
      await sleep(150);
      expect(await store.get("contract:short")).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("a time to live of 0 deletes, as does delete()", async () => {
    const store = create();
    try {
      await store.set("contract:z", "1", 60_000);
      await store.set("contract:z", "2", 0);
      expect(await store.get("contract:z")).toBeUndefined();
      await store.set("contract:d", "1", 60_000);
      await store.delete("contract:d");
      expect(await store.get("contract:d")).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});

describe("redis store: shared, prefixed, and soft when Redis is away", () => {
  it("two instances see each other's values (the point of it)", async () => {
    const silent = pino({ level: "silent" });
    const first = createStateStore({ kind: "redis", url: redis.url }, { logger: silent });
    const second = createStateStore({ kind: "redis", url: redis.url }, { logger: silent });
    try {
      await first.set("shared:token", "from-first", 60_000);
      expect(await second.get("shared:token")).toBe("from-first");
      // The twin: two memory stores share nothing.
      const [a, b] = [createMemoryStore(), createMemoryStore()];
      await a.set("shared:token", "from-a", 60_000);
      expect(await b.get("shared:token")).toBeUndefined();
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it("keys carry the tollgate: prefix and Redis expires them itself", async () => {
    const store = createStateStore({ kind: "redis", url: redis.url }, { logger: pino({ level: "silent" }) });
    try {
      await store.set("prefixed", "v", 30_000);
      expect(await raw.get("tollgate:prefixed")).toBe("v");
      expect(await raw.get("prefixed")).toBeNull();
      const ttl = await raw.pttl("tollgate:prefixed");
      expect(ttl).toBeGreaterThan(25_000);
      expect(ttl).toBeLessThanOrEqual(30_000);
    } finally {
      await store.close();
    }
  });

  it("with Redis down, reads are misses and writes give up, quickly, with one report and no value in it", async () => {
    const canary = "ghs_RedisStoreCanary0123456789abcdef";
    const log = capturedLogger();
    const store = createStateStore({ kind: "redis", url: redis.url }, { logger: log.logger });
    try {
      await store.set("soft", canary, 60_000);
      expect(await store.get("soft")).toBe(canary);
      await redis.stop();
      // The lost connection is noticed at once; from then on every call answers without waiting.
      await sleep(100);
      const started = Date.now();
      expect(await store.get("soft")).toBeUndefined();
      await store.set("soft", canary, 60_000);
      await store.delete("soft");
      // Three calls that used to wait for a reconnect each; instant now (the margin is for a loaded machine).
      expect(Date.now() - started).toBeLessThan(600);
      const text = log.text();
      expect(text).toContain("shared store unavailable");
      // Reported once per 30 s, however many calls failed.
      expect(text.split("\n").filter((line) => line.includes("shared store unavailable")).length).toBe(1);
      for (const form of [
        canary,
        Buffer.from(canary).toString("base64"),
        Buffer.from(canary).toString("base64url"),
      ])
        expect(text).not.toContain(form);

      // Back again: the same store reconnects on its own.
      await redis.start();
      let value: string | undefined;
      for (let attempt = 0; attempt < 100 && value === undefined; attempt++) {
        await store.set("soft", "after", 60_000);
        value = await store.get("soft");
        if (value === undefined) await sleep(100);
      }
      expect(value).toBe("after");
    } finally {
      await store.close();
      if (raw.status !== "ready") await sleep(200);
    }
  }, 30_000);
});
