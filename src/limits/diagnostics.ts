import { channel } from "node:diagnostics_channel";

/**
 * Every decision of an abuse control is published on a diagnostics channel, so that metrics count it
 * without the request path importing a metrics library (as audit events are).
 */
export const limitChannels = Object.freeze({
  /** One {@link LimitDecision} per decision. */
  decision: "tollgate:limits:decision",
});

/** Which control decided. */
export type LimitControl = "rate_limit" | "concurrency" | "single_use" | "auth_failures";

/**
 * What it decided. Rate limits and concurrency: `allowed`, `limited`. Single use: `first_use`, `replayed`, `jti_missing`.
 * Failed-authentication throttle: `counted` (a failure within the limit), `limit_reached` (the failure
 * that blocked the address), `limited` (a request refused while blocked), `connection_refused` (a new
 * connection from a blocked address closed before any HTTP). Any: `store_error_allowed`,
 * `store_error_denied` (the store could not answer; what `on_store_error` chose).
 */
export type LimitOutcome =
  | "allowed"
  | "limited"
  | "first_use"
  | "replayed"
  | "jti_missing"
  | "counted"
  | "limit_reached"
  | "connection_refused"
  | "store_error_allowed"
  | "store_error_denied";

/** A published decision: the control, the limit's id (`route:NAME`, …) and the outcome. */
export interface LimitDecision {
  readonly control: LimitControl;
  readonly limit: string;
  readonly outcome: LimitOutcome;
}

const decisionChannel = channel(limitChannels.decision);

/** Publishes a decision when anyone listens (free otherwise). */
export function publishLimitDecision(control: LimitControl, limit: string, outcome: LimitOutcome): void {
  if (decisionChannel.hasSubscribers) decisionChannel.publish({ control, limit, outcome });
}
