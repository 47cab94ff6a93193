import type { SingleFlight } from "./types.js";

/**
 * Creates a {@link SingleFlight}: concurrent `run` calls with one key share one execution of the work.
 * The key is free again as soon as the work settles, so a failure is not remembered.
 *
 * @example
 * const flights = createSingleFlight();
 * // 100 concurrent misses for one scope → one GitHub call.
 * await Promise.all(Array.from({ length: 100 }, () => flights.run("octo-org", mintToken)));
 */
export function createSingleFlight(): SingleFlight {
  const running = new Map<string, Promise<unknown>>();
  return {
    run<T>(key: string, work: () => Promise<T>): Promise<T> {
      const current = running.get(key);
      if (current !== undefined) return current as Promise<T>;
      const started = (async () => work())().finally(() => running.delete(key));
      running.set(key, started);
      return started;
    },
    get size() {
      return running.size;
    },
  };
}
