import fc from "fast-check";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import { describe, expect, it } from "vitest";
import { coalescingCounter } from "../../src/store/coalescing-counter.js";

/**
 * The coalescing counter must count exactly as one call per request would: whatever the batches (how
 * many requests for which keys arrive in one event-loop turn), each key admits its first `points`
 * requests in arrival order and refuses every later one. The bulk counter underneath is the real
 * rate-limiter-flexible limiter the memory store uses, which takes `consume(key, points)` as Redis does.
 */

type Outcome = { key: string; allowed: boolean; remaining: number };

/** Sends each batch's requests in one turn, waits for all of them, then the next batch. */
async function run(points: number, batches: string[][]): Promise<Outcome[]> {
  const bulk = new RateLimiterMemory({ keyPrefix: `p${Math.random()}`, points, duration: 600 });
  const counter = coalescingCounter(bulk, points);
  const outcomes: Outcome[] = [];
  for (const batch of batches) {
    const settled = await Promise.all(
      batch.map((key) =>
        counter.consume(key).then(
          (res): Outcome => ({ key, allowed: true, remaining: res.remainingPoints }),
          (rejection: unknown): Outcome => {
            if (!(rejection instanceof RateLimiterRes)) throw rejection;
            expect(rejection.msBeforeNext).toBeGreaterThan(0);
            return { key, allowed: false, remaining: rejection.remainingPoints };
          },
        ),
      ),
    );
    outcomes.push(...settled);
  }
  return outcomes;
}

describe("coalescingCounter: exact counts, however requests are batched", () => {
  it("each key admits exactly its first `points` requests, in arrival order, with the remaining points counting down", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.array(fc.constantFrom("a", "b", "c"), { maxLength: 15 }), { maxLength: 8 }),
        async (points, batches) => {
          const outcomes = await run(points, batches);
          for (const key of ["a", "b", "c"]) {
            const mine = outcomes.filter((outcome) => outcome.key === key);
            mine.forEach((outcome, index) => {
              expect(outcome.allowed).toBe(index < points);
              expect(outcome.remaining).toBe(index < points ? points - index - 1 : 0);
            });
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("twin: a store failure refuses the whole batch with the failure itself (on_store_error decides), not a limit", async () => {
    const failure = new Error("store down");
    const counter = coalescingCounter({ consume: () => Promise.reject(failure) }, 5);
    const results = await Promise.allSettled([
      counter.consume("a"),
      counter.consume("a"),
      counter.consume("b"),
    ]);
    for (const result of results) {
      expect(result.status).toBe("rejected");
      expect((result as PromiseRejectedResult).reason).toBe(failure);
    }
  });

  it("one store call per key and turn: 30 requests for two keys in one turn cost two calls, the next turn two more", async () => {
    const calls: Array<[string, number]> = [];
    const bulk = new RateLimiterMemory({ keyPrefix: `c${Math.random()}`, points: 100, duration: 60 });
    const counter = coalescingCounter(
      {
        consume(key, count) {
          calls.push([key, count]);
          return bulk.consume(key, count);
        },
      },
      100,
    );
    await Promise.all(Array.from({ length: 30 }, (_, index) => counter.consume(index % 3 === 0 ? "x" : "y")));
    expect(calls.sort()).toEqual([
      ["x", 10],
      ["y", 20],
    ]);
    await Promise.all([counter.consume("x"), counter.consume("y")]);
    expect(calls).toHaveLength(4);
  });

  it("a rejection that did not count the batch (an in-memory block reports a total of 0) refuses every request in it", async () => {
    const counter = coalescingCounter({ consume: () => Promise.reject(new RateLimiterRes(0, 5_000)) }, 10);
    const results = await Promise.allSettled([counter.consume("a"), counter.consume("a")]);
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
    expect(((results[0] as PromiseRejectedResult).reason as RateLimiterRes).msBeforeNext).toBe(5_000);
  });
});
