import type { TollgateError } from "../errors/index.js";

/**
 * Contracts of the abuse controls: what `config/` compiles `rate_limit`, `single_use` and
 * `listen.auth_failures` into (frozen), and what the route pipeline, tunnels and the broker ask of them.
 */

/** What a control does when the shared store cannot answer. */
export type OnStoreError = "allow" | "deny";

/** What a rate limit counts separately: one claim's value, or the client address. */
export type RateLimitKey =
  | { readonly kind: "claim"; readonly claim: string }
  | { readonly kind: "client_ip" };

/** One `rate_limit`, compiled. */
export interface RateLimitSpec {
  /**
   * Which limit: `route:NAME`, `tunnel:NAME` or `grant:INDEX`. It names the limit in audit lines, metrics,
   * the `RateLimit-Policy` header, and the store's keys (so a reload keeps the counts).
   */
  readonly id: string;
  readonly requests: number;
  /** The window, in whole seconds. */
  readonly perSeconds: number;
  /** Requests beyond `requests`, refilled once every ten windows; 0 for none. */
  readonly burst: number;
  readonly key: RateLimitKey;
  readonly onStoreError: OnStoreError;
}

/** One `concurrency` (a tunnel's open-at-once limit), compiled. */
export interface ConcurrencySpec {
  /** Which limit: `tunnel:NAME:concurrency` (audit lines, metrics, the store's keys). */
  readonly id: string;
  readonly max: number;
  readonly key: RateLimitKey;
  readonly onStoreError: OnStoreError;
}

/** A slot taken under a {@link ConcurrencySpec}: give it back when the tunnel closes. */
export interface HeldSlot {
  /** Gives the slot back (once; later calls do nothing). */
  release(): void;
}

/** `single_use` compiled: present only where it is on. */
export interface SingleUseSpec {
  readonly onStoreError: OnStoreError;
}

/** `listen.auth_failures` compiled. */
export interface AuthFailureSpec {
  readonly max: number;
  readonly perSeconds: number;
  readonly onStoreError: OnStoreError;
}

/**
 * The failed-authentication throttle of one gateway (`listen.auth_failures`): asked before a token is
 * checked, told after a check failed.
 */
export interface AuthFailureThrottle {
  /**
   * The 429 to answer now, without looking at the token, when this address is over its failures; else
   * `undefined`. Synchronous and cheap (a `Map` lookup): it runs before every token check.
   */
  refusal(clientIp: string): TollgateError | undefined;
  /**
   * Whether this address is blocked now, without building an answer: for refusing a new connection
   * from it before any HTTP is parsed.
   */
  blocked(clientIp: string): boolean;
  /** Counts one failed token check from this address (in the background: the answer does not wait). */
  failed(clientIp: string): void;
}
