import type { AuditEvent } from "../audit/types.js";
import { isTollgateError, toErrorResponse } from "../errors/index.js";

/** What the client was answered: the catalogue's code and the HTTP status. */
export interface Answered {
  readonly code: string;
  readonly status: number;
}

/**
 * Step 5 of every path (route, tunnel, broker) when the request ended in an error: what its audit line
 * says. A request that was already allowed, or that failed on the gateway's side (5xx), is an `error`,
 * not a `deny`. The reason is the answer's code, unless a denial already named a more precise one (a
 * tunnel's bad token answers 407 `TG_PROXY_AUTH_INVALID` and audits `TG_TOKEN_EXPIRED`). The detail is
 * the error's operator message, never shown to the caller; a foreign error has none (the caller logs it).
 *
 * @example
 * auditFailure(event, error, answeredFor(error, requestId));
 */
export function auditFailure(event: AuditEvent, error: unknown, answered: Answered): void {
  if (event.decision === "allow" || (isTollgateError(error) && error.status >= 500)) event.decision = "error";
  if (event.reason === "" || event.decision === "error") event.reason = answered.code;
  event.status = answered.status;
  if (isTollgateError(error)) event.detail = error.message;
}

/**
 * What the server will answer for an error a feature throws (the catalogue's code and status), for
 * {@link auditFailure} to record before the feature rethrows it.
 *
 * @example
 * catch (error) { auditFailure(event, error, answeredFor(error, context.requestId)); throw error; }
 */
export function answeredFor(error: unknown, requestId: string): Answered {
  const response = toErrorResponse(error, requestId);
  return { code: response.body.error.code, status: response.status };
}
