import { type ErrorCode, errorCatalogue } from "./catalogue.js";
import { isTollgateError } from "./tollgate-error.js";

/** The JSON body every error response has: `{"error": {"code", "message", "request_id"}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; request_id: string };
}

/** What an HTTP layer needs to answer an error: status, headers and the body. */
export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: ErrorBody;
}

/**
 * Maps any thrown value to the response a caller sees. Unknown errors become `TG_INTERNAL` so that
 * nothing from a foreign error (an upstream body, a stack, a key id) can reach the caller.
 */
export function toErrorResponse(error: unknown, requestId: string): ErrorResponse {
  const code: ErrorCode = isTollgateError(error) ? error.code : "TG_INTERNAL";
  const entry = errorCatalogue[code];
  const message = entry.exposeDetail && isTollgateError(error) ? error.message : entry.publicMessage;
  const headers: Record<string, string> = { ...(isTollgateError(error) ? error.headers : {}) };
  if (entry.status === 401 && headers["www-authenticate"] === undefined) {
    headers["www-authenticate"] = 'Bearer realm="tollgate"';
  }
  return { status: entry.status, headers, body: { error: { code, message, request_id: requestId } } };
}
