/**
 * Shared state: the small {@link StateStore} interface (get/set with a time to live/delete), its memory
 * implementation, and a single-flight helper. Redis implements the same interface in a later release.
 */
import { TollgateError } from "../errors/index.js";
import type { Clock } from "../lib/clock.js";
import { createMemoryStore } from "./memory-store.js";
import type { StateStore, StateStoreKind } from "./types.js";

export { createMemoryStore, type MemoryStoreOptions } from "./memory-store.js";
export { createSingleFlight } from "./single-flight.js";
export type { SingleFlight, StateStore, StateStoreKind } from "./types.js";

/**
 * The store that `store:` in the configuration asks for.
 *
 * @throws TollgateError `TG_CONFIG_INVALID` for `kind: redis`, which this release does not implement yet.
 * @example
 * const store = createStateStore(config.store, { clock });
 */
export function createStateStore(
  settings: { readonly kind: StateStoreKind; readonly url?: string },
  options: { clock?: Clock } = {},
): StateStore {
  if (settings.kind === "redis") {
    throw new TollgateError(
      "TG_CONFIG_INVALID",
      "store.kind: redis is not available in this release; use store.kind: memory (each instance then caches on its own)",
    );
  }
  return createMemoryStore(options.clock === undefined ? {} : { clock: options.clock });
}
