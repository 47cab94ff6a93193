/**
 * Contracts of the shared-state store (DESIGN "Stateless instances"): the state that helps when several
 * instances share it (the broker's token cache; later the replay cache and rate limits) sits behind this
 * one small interface. Values are strings, so a Redis implementation stores them as they are.
 */

/** Which implementation backs a store. */
export type StateStoreKind = "memory" | "redis";

/**
 * A key-value store with a time to live per entry. Every method is asynchronous because the shared
 * implementation (Redis) is; the memory implementation answers without waiting on I/O.
 */
export interface StateStore {
  readonly kind: StateStoreKind;
  /** The value, or `undefined` when the key is unknown or its time to live is over. */
  get(key: string): Promise<string | undefined>;
  /** Stores `value` for `ttlMs` milliseconds; a `ttlMs` of 0 or less deletes the key instead. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}

/**
 * Runs at most one piece of work per key at a time in this process: callers that arrive while the work
 * for their key is running share its result (or its error) instead of starting their own.
 */
export interface SingleFlight {
  run<T>(key: string, work: () => Promise<T>): Promise<T>;
  /** How many keys have work running now. */
  readonly size: number;
}
