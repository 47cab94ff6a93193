import { Redis } from "ioredis";
import type { Logger } from "pino";
import { RateLimiterRedis } from "rate-limiter-flexible";
import { coalescingCounter } from "./coalescing-counter.js";
import { createRedisSlots } from "./redis-slots.js";
import type { StateStore } from "./types.js";

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /** `redis://[[user]:password@]host[:port][/db]`, or `rediss://…` for TLS. */
  url: string;
  /** Told when Redis cannot be used (at most once per {@link RedisStoreOptions.reportEveryMs}). */
  logger: Logger;
  /** Put before every key, so one Redis can serve other software too. Default `tollgate:`. */
  keyPrefix?: string;
  /** Longest wait for one command before it counts as failed. Default 1 s. */
  commandTimeoutMs?: number;
  /** Shortest time between two reports of the same trouble. Default 30 s. */
  reportEveryMs?: number;
}

/**
 * The shared store: Redis, so that every instance behind one load balancer sees the same broker cache
 * (one GitHub call per scope and hour for the whole fleet, not one per instance). Entries expire in Redis
 * itself (`SET … PX`).
 *
 * What is stored is a cache, so the store fails soft: when Redis is down or slow, `get` answers "unknown"
 * and `set`/`delete` give up (at once while it is known to be down, else after at most
 * `commandTimeoutMs`), and the caller does the work itself (asks GitHub). The trouble is reported on the operational log at most every `reportEveryMs`, by its
 * code alone: ioredis' own errors carry the command's arguments, and the values here are runner tokens.
 * Reconnection is ioredis' (backing off up to 2 s).
 *
 * @example
 * const store = createRedisStore({ url: "rediss://:secret@redis.internal:6380", logger });
 * await store.set("broker:registration:octo-org", JSON.stringify(minted), 55 * 60_000);
 */
export function createRedisStore(options: RedisStoreOptions): StateStore {
  const { logger } = options;
  const reportEveryMs = options.reportEveryMs ?? 30_000;
  const redis = new Redis(options.url, {
    keyPrefix: options.keyPrefix ?? "tollgate:",
    commandTimeout: options.commandTimeoutMs ?? 1_000,
    connectTimeout: 2_000,
    // A command waits for a reconnect at most once, then fails (and the caller carries on without the store).
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
    // The password and the values never go to a log: ioredis' friendly stacks and reconnect details stay off.
    showFriendlyErrorStack: false,
    lazyConnect: false,
    // Commands issued in one event-loop turn (rate limits of several keys, single-use marks, the broker's
    // cache) leave in one write, and their answers come back in one read.
    enableAutoPipelining: true,
  });
  let lastReportMs = Number.NEGATIVE_INFINITY;
  const report = (what: string, code: string) => {
    const now = Date.now();
    if (now - lastReportMs < reportEveryMs) return;
    lastReportMs = now;
    logger.warn(
      { component: "store", store: "redis", error: code },
      `shared store unavailable (${what}); instances answer without it until it is back`,
    );
  };
  // Known to be down from the first lost connection or failed attempt until it is ready again: then a
  // call answers at once instead of waiting `commandTimeoutMs` in ioredis' queue for a reconnect (2-3
  // store calls per broker request would each add a second). Before the first trouble, calls do wait
  // (bounded by the timeout), so the first requests after a start find the connection being opened.
  let down = false;
  // Without a listener an 'error' event (Redis down at start, a dropped connection) would end the process.
  redis.on("error", (error: unknown) => {
    down = true;
    report("connection", errorCode(error));
  });
  redis.on("close", () => {
    down = true;
  });
  redis.on("ready", () => {
    down = false;
  });
  const unavailable = (what: string): boolean => {
    if (!down || redis.status === "ready") return false;
    report(what, "not-connected");
    return true;
  };

  // Slot sets renew their leases on a timer: closing the store stops them.
  const slotSets: Array<{ close(): void }> = [];

  return {
    kind: "redis",
    async get(key) {
      if (unavailable("read")) return undefined;
      try {
        return (await redis.get(key)) ?? undefined;
      } catch (error) {
        report("read", errorCode(error));
        return undefined;
      }
    },
    async set(key, value, ttlMs) {
      if (unavailable("write")) return;
      try {
        if (ttlMs <= 0) await redis.del(key);
        else await redis.set(key, value, "PX", Math.ceil(ttlMs));
      } catch (error) {
        report("write", errorCode(error));
      }
    },
    async delete(key) {
      if (unavailable("delete")) return;
      try {
        await redis.del(key);
      } catch (error) {
        report("delete", errorCode(error));
      }
    },
    async addOnce(key, ttlMs) {
      if (unavailable("write")) return "unavailable";
      try {
        // One atomic command: of any number of instances racing, exactly one gets "OK".
        const stored = await redis.set(key, "1", "PX", Math.max(1, Math.ceil(ttlMs)), "NX");
        return stored === "OK" ? "added" : "exists";
      } catch (error) {
        report("write", errorCode(error));
        return "unavailable";
      }
    },
    createCounter({ keyPrefix, points, durationSeconds }) {
      const limiter = new RateLimiterRedis({
        storeClient: redis,
        keyPrefix,
        points,
        duration: durationSeconds,
        // A key that has used its points is refused from memory until its window ends (the window's end
        // comes from Redis), so a caller hammering past its limit costs no more Redis calls.
        inMemoryBlockOnConsumed: points,
      });
      // Requests for one key within one event-loop turn are counted with one call (coalescing-counter.ts).
      return coalescingCounter(
        {
          // While Redis is known to be down, fail at once (the caller applies its on_store_error) instead
          // of queueing behind a reconnect, as the other calls here do. Not the limiter's own
          // `rejectIfRedisNotReady`: that also fails every call made while the first connection is opening.
          consume(key, count) {
            if (unavailable("count")) return Promise.reject(new Error("redis not connected"));
            return limiter.consume(key, count);
          },
        },
        points,
      );
    },
    createSlots(slotOptions) {
      const slots = createRedisSlots(
        { redis, unavailable, report: (what, error) => report(what, errorCode(error)) },
        slotOptions,
      );
      slotSets.push(slots);
      return slots;
    },
    async close() {
      for (const slots of slotSets) slots.close();
      try {
        await redis.quit();
      } catch {
        redis.disconnect();
      }
    },
  };
}

/** A code for the log: the system error code, or the error's class name; never its message. */
function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === "string" ? name : "unknown";
}
