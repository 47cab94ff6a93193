import pino from "pino";
import { describe, expect, it } from "vitest";
import { createMemoryStore, createSingleFlight, createStateStore } from "../../src/store/index.js";

describe("memory store", () => {
  it("keeps a value for its time to live, and not a millisecond longer", async () => {
    let now = 1_000;
    const store = createMemoryStore({ clock: () => now });
    await store.set("k", "v", 500);
    now = 1_499;
    expect(await store.get("k")).toBe("v");
    now = 1_500;
    expect(await store.get("k")).toBeUndefined();
  });

  it("a time to live of 0 deletes, as does delete()", async () => {
    const store = createMemoryStore();
    await store.set("a", "1", 10_000);
    await store.set("a", "2", 0);
    expect(await store.get("a")).toBeUndefined();
    await store.set("b", "1", 10_000);
    await store.delete("b");
    expect(await store.get("b")).toBeUndefined();
  });

  it("is bounded: expired entries go first, then the oldest write", async () => {
    let now = 0;
    const store = createMemoryStore({ clock: () => now, maxEntries: 3 });
    await store.set("short", "x", 10);
    await store.set("old", "x", 1_000);
    await store.set("newer", "x", 1_000);
    now = 20;
    await store.set("fourth", "x", 1_000);
    expect(await store.get("old")).toBe("x");
    await store.set("fifth", "x", 1_000);
    expect(await store.get("old")).toBeUndefined();
    expect(await store.get("newer")).toBe("x");
    expect(await store.get("fifth")).toBe("x");
  });

  it("is what store.kind: memory gives (redis is in test/store/redis-store.test.ts)", () => {
    expect(createStateStore({ kind: "memory" }, { logger: pino({ level: "silent" }) }).kind).toBe("memory");
  });
});

describe("single flight", () => {
  it("concurrent runs of one key share one execution", async () => {
    const flights = createSingleFlight();
    let executions = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const work = async () => {
      executions++;
      await gate;
      return "done";
    };
    const runs = Array.from({ length: 20 }, () => flights.run("scope", work));
    expect(flights.size).toBe(1);
    release();
    expect(await Promise.all(runs)).toEqual(Array(20).fill("done"));
    expect(executions).toBe(1);
    expect(flights.size).toBe(0);
  });

  it("different keys do not share, and a failure is not remembered", async () => {
    const flights = createSingleFlight();
    let executions = 0;
    await Promise.all([
      flights.run("a", async () => executions++),
      flights.run("b", async () => executions++),
    ]);
    expect(executions).toBe(2);
    await expect(flights.run("a", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await flights.run("a", async () => "again")).toBe("again");
  });
});
