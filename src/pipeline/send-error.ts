import type { ServerResponse } from "node:http";
import { toErrorResponse } from "../errors/index.js";
import { isAwaitingContinue } from "../lib/expect-continue.js";
import { gatewayErrorStatus } from "../lib/proxy-status.js";
import { sendJson } from "./send-json.js";

/**
 * Answers an error with the catalogue's status and JSON body (`{"error": {code, message, request_id}}`),
 * never cached, marked as the gateway's own with `Proxy-Status` (lib/proxy-status.ts), and returns what
 * was answered, for the audit line. When the answer had already begun (an upstream's response was
 * streaming), the connection is cut: the only honest signal left.
 *
 * @example
 * const answered = sendError(res, new TollgateError("TG_ROUTE_NOT_FOUND", "no route"), requestId);
 */
export function sendError(
  res: ServerResponse,
  error: unknown,
  requestId: string,
): { code: string; status: number } {
  const response = toErrorResponse(error, requestId);
  if (res.headersSent) {
    // The upstream answer was already streaming; the only honest signal left is to cut the connection.
    res.destroy();
  } else {
    sendJson(res, response.status, response.body, {
      ...response.headers,
      // The client still holds back the body it asked to send: the connection cannot carry another request.
      ...(isAwaitingContinue(res) ? { connection: "close" } : {}),
      "x-request-id": requestId,
      "cache-control": "no-store",
      // Marks the answer as the gateway's own, not a route's or destination's with the same status.
      "proxy-status": gatewayErrorStatus(response.body.error.code, response.status),
    });
  }
  return { code: response.body.error.code, status: response.status };
}
