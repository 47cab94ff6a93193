import type { Logger } from "pino";
import { RateLimiterRes } from "rate-limiter-flexible";
import { TollgateError } from "../errors/index.js";
import type { Clock } from "../lib/clock.js";
import { sha256Hex } from "../lib/sha256.js";
import type { VerifiedToken } from "../oidc/types.js";
import type { Counter, Slots, StateStore } from "../store/types.js";
import { type LimitControl, type LimitOutcome, publishLimitDecision } from "./diagnostics.js";
import { rateLimitHeaders, retryAfterSeconds } from "./limit-headers.js";
import type {
  AuthFailureSpec,
  AuthFailureThrottle,
  ConcurrencySpec,
  HeldSlot,
  OnStoreError,
  RateLimitSpec,
  SingleUseSpec,
} from "./types.js";

/**
 * The fleet-wide abuse controls of one gateway: rate limits, single-use tokens and failed-authentication
 * throttling, all counted in the shared store (so N instances on one Redis enforce one limit).
 *
 * Each check returns the `TollgateError` the caller should answer with, or `undefined` to go on: the
 * caller (route pipeline, tunnel admission, broker) records which limit refused in its audit event and
 * throws. The controls live as long as their store: a reload that keeps `store` keeps them, and with
 * them the in-memory counts.
 */
export interface AbuseControls {
  /**
   * Counts one request against `spec` for its key (the claim's value in `claims`, or `clientIp`).
   * `undefined`: within the limit (or the store failed and the limit says `allow`).
   */
  rateLimit(
    spec: RateLimitSpec,
    claims: Readonly<Record<string, unknown>> | undefined,
    clientIp: string,
  ): Promise<TollgateError | undefined>;
  /**
   * Takes one of the key's `spec.max` slots (a tunnel about to open): the slot, to release when the
   * tunnel closes, or the refusal when all are held. A store failure with `allow` gives a slot that
   * holds nothing.
   */
  holdSlot(
    spec: ConcurrencySpec,
    claims: Readonly<Record<string, unknown>> | undefined,
    clientIp: string,
  ): Promise<HeldSlot | TollgateError>;
  /** Marks the verified token used (by `iss` and `jti`); the refusal if it was used before. */
  useOnce(spec: SingleUseSpec, verified: VerifiedToken): Promise<TollgateError | undefined>;
  /** The failed-authentication throttle, when `listen.auth_failures` is set. */
  readonly authFailures: AuthFailureThrottle | undefined;
}

/** What {@link createAbuseControls} builds on. */
export interface AbuseControlOptions {
  readonly store: StateStore;
  readonly logger: Logger;
  readonly clock: Clock;
  /** `listen.auth_failures`, if set. */
  readonly authFailures: AuthFailureSpec | undefined;
  /**
   * The largest clock skew any issuer tolerates: a used token is remembered until its `exp` plus this,
   * the last moment any instance could still accept it.
   */
  readonly maxClockSkewMs: number;
  /** Shortest time between two log lines about the same control's store trouble. Default 30 s. */
  readonly reportEveryMs?: number;
}

/** How many addresses the throttle remembers as blocked on this instance (expired ones go first). */
const maxBlockedAddresses = 10_000;

/**
 * @example
 * const controls = createAbuseControls({ store, logger, clock, authFailures: config.listen.authFailures, maxClockSkewMs: 30_000 });
 * const refusal = await controls.rateLimit(route.rateLimit, verified.claims, clientIp);
 * if (refusal !== undefined) throw refusal;
 */
export function createAbuseControls(options: AbuseControlOptions): AbuseControls {
  const { store, logger, clock } = options;
  const reportEveryMs = options.reportEveryMs ?? 30_000;
  // One line per interval for each control and choice: an outage that lets one limit through and makes
  // another refuse says both.
  const lastReport = new Map<string, number>();
  const storeTrouble = (control: LimitControl, choice: OnStoreError, error: unknown) => {
    const now = clock();
    const which = `${control}:${choice}`;
    if (now - (lastReport.get(which) ?? Number.NEGATIVE_INFINITY) < reportEveryMs) return;
    lastReport.set(which, now);
    logger.warn(
      { component: "limits", control, on_store_error: choice, error: errorCode(error) },
      `the shared store could not answer for ${control}; ${choice === "allow" ? "letting requests through uncounted" : "refusing requests"} (on_store_error: ${choice})`,
    );
  };

  // One limiter per limit and its settings, kept as long as the store: in memory the counts live in the
  // limiter object itself, so rebuilding it on every reload would forget them.
  const limiters = new Map<string, Counter>();
  // Per request the limiter is found by the compiled spec object (one lookup, no string built); the
  // signature map is asked only once per spec, so a reload's new but equal spec finds the old counts.
  const bySpec = new WeakMap<RateLimitSpec, Counter>();
  const limiterFor = (spec: RateLimitSpec): Counter => {
    const known = bySpec.get(spec);
    if (known !== undefined) return known;
    const signature = `${spec.id}|${spec.requests}|${spec.perSeconds}|${spec.burst}`;
    let limiter = limiters.get(signature);
    if (limiter === undefined) {
      const main = store.createCounter({
        keyPrefix: `rl:${spec.id}`,
        points: spec.requests,
        durationSeconds: spec.perSeconds,
      });
      limiter =
        spec.burst === 0
          ? main
          : withBurst(
              main,
              store.createCounter({
                // Its own first segment: `rl:ID:burst:VALUE` would be the main counter of the value "burst:VALUE".
                keyPrefix: `rlb:${spec.id}`,
                points: spec.burst,
                durationSeconds: spec.perSeconds * 10,
              }),
            );
      limiters.set(signature, limiter);
    }
    bySpec.set(spec, limiter);
    return limiter;
  };

  // As limiters: one slot set per limit and its settings, for as long as the store.
  const slotSets = new Map<string, Slots>();
  const slotsFor = (spec: ConcurrencySpec): Slots => {
    const signature = `${spec.id}|${spec.max}`;
    let slots = slotSets.get(signature);
    if (slots === undefined) {
      slots = store.createSlots({ keyPrefix: `cc:${spec.id}`, max: spec.max });
      slotSets.set(signature, slots);
    }
    return slots;
  };

  const authFailures = options.authFailures === undefined ? undefined : createThrottle(options.authFailures);

  function createThrottle(spec: AuthFailureSpec): AuthFailureThrottle {
    const counter = store.createCounter({
      keyPrefix: "authfail",
      points: spec.max,
      durationSeconds: spec.perSeconds,
    });
    const id = "listen.auth_failures";
    // Addresses known (on this instance) to be over the limit, until when. Checked before any token
    // work, so it is a Map lookup: a flood from a blocked address costs no store call either.
    const blockedUntil = new Map<string, number>();
    const block = (clientIp: string, untilMs: number) => {
      if (blockedUntil.size >= maxBlockedAddresses) {
        const now = clock();
        for (const [address, until] of blockedUntil) if (until <= now) blockedUntil.delete(address);
        // Still full: the oldest block goes (Map order is insertion order).
        if (blockedUntil.size >= maxBlockedAddresses) {
          const oldest = blockedUntil.keys().next().value;
          if (oldest !== undefined) blockedUntil.delete(oldest);
        }
      }
      blockedUntil.set(clientIp, untilMs);
    };
    return {
      blocked(clientIp) {
        if (blockedUntil.size === 0) return false;
        const until = blockedUntil.get(clientIp);
        if (until === undefined || until <= clock()) return false;
        publishLimitDecision("auth_failures", id, "connection_refused");
        return true;
      },
      refusal(clientIp) {
        if (blockedUntil.size === 0) return undefined;
        const until = blockedUntil.get(clientIp);
        if (until === undefined) return undefined;
        const waitMs = until - clock();
        if (waitMs <= 0) {
          blockedUntil.delete(clientIp);
          return undefined;
        }
        publishLimitDecision("auth_failures", id, "limited");
        return limited(
          `more than ${spec.max} failed token checks from this address per ${spec.perSeconds}s`,
          { id, quota: spec.max, windowSeconds: spec.perSeconds, remaining: 0, resetMs: waitMs },
          // The connection is closed after the answer: a new one from a blocked address is refused
          // before any HTTP (create-gateway.ts), where a kept-alive one would cost a request each time.
          { connection: "close" },
        );
      },
      failed(clientIp) {
        counter.consume(storeKey(clientIp)).then(
          (counted) => {
            // The failure that used up the allowance blocks the address: every request after it is refused.
            if (counted.remainingPoints > 0) publishLimitDecision("auth_failures", id, "counted");
            else {
              publishLimitDecision("auth_failures", id, "limit_reached");
              block(clientIp, clock() + Math.max(1, counted.msBeforeNext));
            }
          },
          (rejection: unknown) => {
            if (rejection instanceof RateLimiterRes) {
              // Over the allowance already (counted by another instance sharing the store).
              publishLimitDecision("auth_failures", id, "limit_reached");
              block(clientIp, clock() + Math.max(1, rejection.msBeforeNext));
              return;
            }
            publishLimitDecision("auth_failures", id, storeErrorOutcome(spec.onStoreError));
            storeTrouble("auth_failures", spec.onStoreError, rejection);
            // `deny` while the store is down: block the address for one window on this instance.
            if (spec.onStoreError === "deny") block(clientIp, clock() + spec.perSeconds * 1000);
          },
        );
      },
    };
  }

  return {
    authFailures,

    async rateLimit(spec, claims, clientIp) {
      const keyValue = spec.key.kind === "client_ip" ? clientIp : claimKey(claims?.[spec.key.claim]);
      try {
        await limiterFor(spec).consume(storeKey(keyValue));
        publishLimitDecision("rate_limit", spec.id, "allowed");
        return undefined;
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) {
          publishLimitDecision("rate_limit", spec.id, "limited");
          const keyName = spec.key.kind === "client_ip" ? "client_ip" : spec.key.claim;
          return limited(
            `${spec.id}: more than ${spec.requests} per ${spec.perSeconds}s for this ${keyName}`,
            {
              id: spec.id,
              quota: spec.requests,
              windowSeconds: spec.perSeconds,
              remaining: 0,
              resetMs: rejection.msBeforeNext,
            },
          );
        }
        publishLimitDecision("rate_limit", spec.id, storeErrorOutcome(spec.onStoreError));
        storeTrouble("rate_limit", spec.onStoreError, rejection);
        return spec.onStoreError === "allow"
          ? undefined
          : new TollgateError(
              "TG_STORE_UNAVAILABLE",
              `${spec.id}: the shared store could not count this request`,
            );
      }
    },

    async holdSlot(spec, claims, clientIp) {
      const keyValue = spec.key.kind === "client_ip" ? clientIp : claimKey(claims?.[spec.key.claim]);
      try {
        const slot = await slotsFor(spec).acquire(storeKey(keyValue));
        if (slot !== undefined) {
          publishLimitDecision("concurrency", spec.id, "allowed");
          return slot;
        }
        publishLimitDecision("concurrency", spec.id, "limited");
        const keyName = spec.key.kind === "client_ip" ? "client_ip" : spec.key.claim;
        // No Retry-After: a slot frees when a tunnel closes, which no one can tell in advance.
        return new TollgateError(
          "TG_RATE_LIMITED",
          `${spec.id}: ${spec.max} tunnels already open for this ${keyName}`,
        );
      } catch (error) {
        publishLimitDecision("concurrency", spec.id, storeErrorOutcome(spec.onStoreError));
        storeTrouble("concurrency", spec.onStoreError, error);
        return spec.onStoreError === "allow"
          ? noSlot
          : new TollgateError(
              "TG_STORE_UNAVAILABLE",
              `${spec.id}: the shared store could not count open tunnels`,
            );
      }
    },

    async useOnce(spec, verified) {
      const jti = verified.claims.jti;
      if (typeof jti !== "string" || jti === "") {
        publishLimitDecision("single_use", "single_use", "jti_missing");
        return new TollgateError("TG_TOKEN_JTI_MISSING", "single use required, and the token has no jti");
      }
      const iss = typeof verified.claims.iss === "string" ? verified.claims.iss : verified.issuer;
      const rememberMs = verified.expiresAtMs + options.maxClockSkewMs - clock();
      const result = await store.addOnce(`once:${sha256Hex(`${iss}\n${jti}`)}`, Math.max(1000, rememberMs));
      if (result === "added") {
        publishLimitDecision("single_use", "single_use", "first_use");
        return undefined;
      }
      if (result === "exists") {
        publishLimitDecision("single_use", "single_use", "replayed");
        return new TollgateError("TG_TOKEN_REPLAYED", `token jti ${jti} was already used`);
      }
      publishLimitDecision("single_use", "single_use", storeErrorOutcome(spec.onStoreError));
      storeTrouble("single_use", spec.onStoreError, new Error("unavailable"));
      return spec.onStoreError === "allow"
        ? undefined
        : new TollgateError(
            "TG_STORE_UNAVAILABLE",
            "single use: the shared store could not record this token",
          );
    },
  };
}

/** What a tunnel holds when the store could not count it and `on_store_error: allow` let it open. */
const noSlot: HeldSlot = Object.freeze({ release() {} });

/**
 * A counter with a second allowance (rate-limiter-flexible's "bursty" pattern): a request the window has
 * no room for is counted against `burst`; refused only when both are used up, with the sooner reset.
 */
function withBurst(main: Counter, burst: Counter): Counter {
  return {
    consume: (key) =>
      main.consume(key).catch(async (rejection: unknown) => {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        try {
          await burst.consume(key);
          return rejection;
        } catch (burstRejection) {
          if (!(burstRejection instanceof RateLimiterRes)) throw burstRejection;
          throw new RateLimiterRes(
            rejection.remainingPoints,
            Math.min(rejection.msBeforeNext, burstRejection.msBeforeNext),
            rejection.consumedPoints,
            rejection.isFirstInDuration,
          );
        }
      }),
  };
}

/** 429 with `Retry-After`, `RateLimit-Policy` and `RateLimit`. */
function limited(
  detail: string,
  state: { id: string; quota: number; windowSeconds: number; remaining: number; resetMs: number },
  extraHeaders: Record<string, string> = {},
): TollgateError {
  return new TollgateError("TG_RATE_LIMITED", detail, {
    headers: {
      "retry-after": String(retryAfterSeconds(state.resetMs)),
      ...rateLimitHeaders(state),
      ...extraHeaders,
    },
  });
}

function storeErrorOutcome(choice: OnStoreError): LimitOutcome {
  return choice === "allow" ? "store_error_allowed" : "store_error_denied";
}

/**
 * A claim's value as a counter key. A claim the token lacks counts under one shared key (all such
 * callers share one allowance), which `tollgate check` makes unlikely by refusing keys no policy pins.
 */
function claimKey(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return value === undefined || value === null ? "~missing" : JSON.stringify(value);
}

/** Short, plain values stay readable in the store; anything else is hashed, so a key is bounded. */
function storeKey(value: string): string {
  return value.length <= 64 && /^[A-Za-z0-9._:/@+-]*$/.test(value) ? value : `h:${sha256Hex(value)}`;
}

/** A code for the log: the error's code or class name, never its message (which may carry keys). */
function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === "string" ? name : "unknown";
}
