/**
 * Shared state: the small {@link StateStore} interface (get/set with a time to live/delete), its memory
 * and Redis implementations, and a single-flight helper.
 */
import type { Logger } from "pino";
import type { Clock } from "../lib/clock.js";
import { createMemoryStore } from "./memory-store.js";
import { createRedisStore } from "./redis-store.js";
import type { StateStore, StateStoreKind } from "./types.js";

export { createMemoryStore, type MemoryStoreOptions } from "./memory-store.js";
export { createRedisStore, type RedisStoreOptions } from "./redis-store.js";
export { createSingleFlight } from "./single-flight.js";
export type { SingleFlight, StateStore, StateStoreKind } from "./types.js";

/**
 * The store that `store:` in the configuration asks for: in this process's memory, or Redis shared by
 * every instance (the configuration requires a `url` with `kind: redis`).
 *
 * @example
 * const store = createStateStore(config.store, { clock, logger });
 */
export function createStateStore(
  settings: { readonly kind: StateStoreKind; readonly url?: string },
  options: { clock?: Clock; logger: Logger; maxEntries?: number },
): StateStore {
  if (settings.kind === "redis") {
    if (settings.url === undefined) throw new Error("store.kind: redis needs store.url");
    return createRedisStore({ url: settings.url, logger: options.logger });
  }
  return createMemoryStore({
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.maxEntries === undefined ? {} : { maxEntries: options.maxEntries }),
  });
}

/** The password in a Redis URL (decoded), or "" when it has none: a secret every log must redact. */
export function redisUrlPassword(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return "";
  }
}
