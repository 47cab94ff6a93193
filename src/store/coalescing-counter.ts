import { RateLimiterRes } from "rate-limiter-flexible";
import type { Counter } from "./types.js";

/**
 * The counting call a {@link coalescingCounter} batches into: rate-limiter-flexible's `consume(key,
 * points)`, which adds `points` to the key's window in one atomic step and resolves (within the limit)
 * or rejects (over it) with the key's total after the addition.
 */
export interface BulkCounter {
  consume(key: string, points: number): Promise<RateLimiterRes>;
}

interface PendingKey {
  /** One resolver pair per request, in arrival order. */
  readonly waiters: Array<{ resolve(res: RateLimiterRes): void; reject(reason: unknown): void }>;
}

/**
 * Counts every request that asks for a key within one turn of the event loop with one store call: the
 * requests' count is added in one atomic increment, and from the key's total after it each request
 * learns its own place in the window — the first `points - (total - count)` of them are within the
 * limit, the rest are over. The limit is exact (an atomic increment orders the fleet's requests as
 * one-by-one calls would) while a busy gateway makes one Redis round trip per key and turn instead of
 * one per request: bench/README.md, "Abuse controls", measured that round trip at +44 % of a request's
 * CPU before this.
 *
 * The batch closes at `setImmediate`, after the poll phase that parsed the requests, so a request waits
 * for no timer: alone in its turn it makes its call as it would have unbatched.
 *
 * @example
 * const counter = coalescingCounter(new RateLimiterRedis({ storeClient: redis, points: 100, duration: 60 }), 100);
 * await counter.consume("12345"); // resolves within the limit, rejects with a RateLimiterRes over it
 */
export function coalescingCounter(bulk: BulkCounter, points: number): Counter {
  let pending = new Map<string, PendingKey>();
  let scheduled = false;

  const flush = (): void => {
    const batch = pending;
    pending = new Map();
    scheduled = false;
    for (const [key, { waiters }] of batch) {
      const count = waiters.length;
      bulk.consume(key, count).then(
        (res) => settle(waiters, res, points),
        (rejection: unknown) => {
          if (rejection instanceof RateLimiterRes) settle(waiters, rejection, points);
          else for (const waiter of waiters) waiter.reject(rejection);
        },
      );
    }
  };

  return {
    consume(key) {
      return new Promise<RateLimiterRes>((resolve, reject) => {
        let entry = pending.get(key);
        if (entry === undefined) {
          entry = { waiters: [] };
          pending.set(key, entry);
        }
        entry.waiters.push({ resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
  };
}

/**
 * Tells each request of a batch its fate from the key's total after the batch was added: request `i`
 * (from 1) is the `total - count + i`-th of the window. A rejection that did not count the batch (the
 * limiter's in-memory block of a key already over its limit reports a total of 0) refuses them all.
 */
function settle(waiters: PendingKey["waiters"], res: RateLimiterRes, points: number): void {
  const count = waiters.length;
  const counted = res.consumedPoints >= count;
  const before = res.consumedPoints - count;
  waiters.forEach((waiter, index) => {
    const place = before + index + 1;
    if (counted && place <= points) {
      waiter.resolve(new RateLimiterRes(points - place, res.msBeforeNext, place, place === 1));
    } else {
      waiter.reject(new RateLimiterRes(0, res.msBeforeNext, Math.max(place, points + 1), false));
    }
  });
}
