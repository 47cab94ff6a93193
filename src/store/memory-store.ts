import { RateLimiterMemory } from "rate-limiter-flexible";
import { type Clock, systemClock } from "../lib/clock.js";
import type { StateStore } from "./types.js";

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  clock?: Clock;
  /** Largest number of entries kept; beyond it, expired entries go first, then the oldest. Default 10,000. */
  maxEntries?: number;
}

interface Entry {
  value: string;
  expiresAtMs: number;
}

/**
 * The in-process {@link StateStore}: a `Map` with a time to live per entry, bounded in size. Expired
 * entries are dropped when read and whenever the store is full, so no timer runs.
 *
 * @example
 * const store = createMemoryStore({ clock: () => now });
 * await store.set("broker:registration:octo-org", JSON.stringify(token), 55 * 60_000);
 * await store.get("broker:registration:octo-org");
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): StateStore {
  const clock = options.clock ?? systemClock;
  const maxEntries = Math.max(1, options.maxEntries ?? 10_000);
  const entries = new Map<string, Entry>();

  function makeRoom(now: number): void {
    if (entries.size < maxEntries) return;
    for (const [key, entry] of entries) if (entry.expiresAtMs <= now) entries.delete(key);
    // Map iteration follows insertion order, and `set` re-inserts, so the first key is the oldest write.
    while (entries.size >= maxEntries) {
      const oldest = entries.keys().next().value;
      if (oldest === undefined) break;
      entries.delete(oldest);
    }
  }

  return {
    kind: "memory",
    async get(key) {
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      if (entry.expiresAtMs <= clock()) {
        entries.delete(key);
        return undefined;
      }
      return entry.value;
    },
    async set(key, value, ttlMs) {
      entries.delete(key);
      if (!(ttlMs > 0)) return;
      const now = clock();
      makeRoom(now);
      entries.set(key, { value, expiresAtMs: now + ttlMs });
    },
    async delete(key) {
      entries.delete(key);
    },
    async addOnce(key, ttlMs) {
      const entry = entries.get(key);
      const now = clock();
      if (entry !== undefined && entry.expiresAtMs > now) return "exists";
      entries.delete(key);
      if (!(ttlMs > 0)) return "added";
      if (entries.size >= maxEntries) {
        for (const [other, held] of entries) if (held.expiresAtMs <= now) entries.delete(other);
        // Full of live entries: evicting one could let a used token through again, so say "unavailable".
        if (entries.size >= maxEntries) return "unavailable";
      }
      entries.set(key, { value: "1", expiresAtMs: now + ttlMs });
      return "added";
    },
    createCounter({ keyPrefix, points, durationSeconds }) {
      // Counts in this process only: with `store.kind: memory` every instance has its own limits.
      return new RateLimiterMemory({ keyPrefix, points, duration: durationSeconds });
    },
    createSlots({ max }) {
      // Held slots per key, in this process only. A key without held slots has no entry.
      const held = new Map<string, number>();
      return {
        async acquire(key) {
          const count = held.get(key) ?? 0;
          if (count >= max) return undefined;
          held.set(key, count + 1);
          let released = false;
          return {
            release() {
              if (released) return;
              released = true;
              const left = (held.get(key) ?? 1) - 1;
              if (left > 0) held.set(key, left);
              else held.delete(key);
            },
          };
        },
      };
    },
    async close() {
      entries.clear();
    },
  };
}
