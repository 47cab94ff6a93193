/**
 * Exponential backoff with full jitter for GitHub retries: attempt 0 waits up to `base`, then `2·base`,
 * capped at 5 s.
 */
export function backoff(attempt: number, baseMs: number): number {
  const ceiling = Math.min(5_000, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
