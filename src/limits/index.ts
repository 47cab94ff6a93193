/**
 * Abuse controls: rate limits, single-use tokens and failed-authentication throttling, counted in the
 * shared store, with their configuration fields, compiler, headers and metrics channel.
 */
export { type AbuseControlOptions, type AbuseControls, createAbuseControls } from "./abuse-controls.js";
export {
  clientIpKey,
  compileAuthFailures,
  compileConcurrency,
  compileRateLimit,
  compileSingleUse,
  knownClaimNames,
} from "./compile-limits.js";
export { describeAuthFailures, describeLimits } from "./describe-limits.js";
export { type LimitControl, type LimitDecision, type LimitOutcome, limitChannels } from "./diagnostics.js";
export { rateLimitHeaders, retryAfterSeconds } from "./limit-headers.js";
export {
  authFailuresSchema,
  concurrencySchema,
  type RawAuthFailures,
  type RawConcurrency,
  type RawRateLimit,
  type RawSingleUse,
  rateLimitSchema,
  singleUseSchema,
} from "./limits-schema.js";
export type {
  AuthFailureSpec,
  AuthFailureThrottle,
  ConcurrencySpec,
  HeldSlot,
  OnStoreError,
  RateLimitKey,
  RateLimitSpec,
  SingleUseSpec,
} from "./types.js";
