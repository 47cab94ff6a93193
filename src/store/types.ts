import type { RateLimiterRes } from "rate-limiter-flexible";

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
  /**
   * Stores `key` for `ttlMs` only if it is not there yet, atomically across every instance sharing the
   * store: `added` for the one call that stored it, `exists` for every other, `unavailable` when the
   * store could not answer (the caller decides what that means; single-use tokens refuse by default).
   */
  addOnce(key: string, ttlMs: number): Promise<AddOnceResult>;
  /**
   * A fixed-window counter on this store (rate-limiter-flexible: in memory, or in Redis with its atomic
   * increment script), so every instance sharing the store counts against one limit. A store failure
   * rejects the counter's promise with an `Error` (an exhausted limit rejects with a `RateLimiterRes`).
   */
  createCounter(options: CounterOptions): Counter;
  /**
   * A set of slots per key, at most `max` held at once across every instance sharing the store (open
   * tunnels per repository). A slot is held until released; with Redis it is a lease the holder renews,
   * so the slots of an instance that dies free themselves within `leaseMs`.
   */
  createSlots(options: SlotOptions): Slots;
  /** Releases connections and timers. */
  close(): Promise<void>;
}

/** What {@link StateStore.addOnce} found. */
export type AddOnceResult = "added" | "exists" | "unavailable";

/** One fixed-window counter: `points` per `durationSeconds` (whole seconds), keys under `keyPrefix`. */
export interface CounterOptions {
  readonly keyPrefix: string;
  readonly points: number;
  readonly durationSeconds: number;
}

/**
 * A fixed-window counter. `consume` resolves with the key's state when it was within its points, and
 * rejects with a `RateLimiterRes` when the key has used them up, or with an `Error` when the store failed.
 */
export interface Counter {
  consume(key: string): Promise<RateLimiterRes>;
}

/** `max` slots per key, keys under `keyPrefix`. */
export interface SlotOptions {
  readonly keyPrefix: string;
  readonly max: number;
  /** How long a slot outlives its holder's last renewal (Redis). Default 30 s; renewed every third of it. */
  readonly leaseMs?: number;
}

/** Slots per key (see {@link StateStore.createSlots}). */
export interface Slots {
  /**
   * Takes a slot for `key`: the slot, or `undefined` when all `max` are held. Rejects with an `Error`
   * when the store failed (the caller applies its `on_store_error`).
   */
  acquire(key: string): Promise<Slot | undefined>;
}

/** A held slot. */
export interface Slot {
  /** Gives the slot back (once; later calls do nothing). */
  release(): void;
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
