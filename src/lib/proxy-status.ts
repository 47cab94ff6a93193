import { type List, parseList, serializeList, Token } from "structured-headers";

/**
 * `Proxy-Status` (RFC 9209): how the gateway marks what it answered itself, so a client can tell the
 * gateway's refusal from the destination's own answer with the same status (a 404 of the destination is
 * not the gateway's 404). Each intermediary appends one member, named after itself; the last member is
 * the one nearest the client. The gateway's own error answers carry
 * `tollgate; error=http_request_denied; details="TG_POLICY_DENIED"`; an answer it passed on from a
 * forward-proxied destination gets `tollgate; received-status=404` appended after whatever the
 * destination (perhaps another tollgate) said, so that member can never pass for the gateway's.
 */
export const proxyStatusName = "tollgate";

/** RFC 9209 §2.3 error types, by the status of the gateway's own answer; `details` carries the exact code. */
function errorTypeOf(status: number): string {
  if (status === 502) return "destination_unavailable";
  if (status === 504) return "connection_timeout";
  if (status === 500) return "proxy_internal_error";
  if (status === 401 || status === 403 || status === 407 || status === 429) return "http_request_denied";
  if (status >= 400 && status < 500) return "http_request_error";
  return "proxy_internal_response";
}

/**
 * The member for an error the gateway answered itself.
 *
 * @example
 * gatewayErrorStatus("TG_POLICY_DENIED", 403); // 'tollgate;error=http_request_denied;details="TG_POLICY_DENIED"'
 */
export function gatewayErrorStatus(code: string, status: number): string {
  return serializeList([
    [
      new Token(proxyStatusName),
      new Map<string, Token | string>([
        ["error", new Token(errorTypeOf(status))],
        ["details", code],
      ]),
    ],
  ]);
}

/**
 * The member for an answer the gateway passed on from a destination.
 *
 * @example
 * receivedStatus(404); // "tollgate;received-status=404"
 */
export function receivedStatus(status: number): string {
  return serializeList([[new Token(proxyStatusName), new Map([["received-status", status]])]]);
}

/**
 * Whether an answer is the gateway's own: its `Proxy-Status` field (every field line, joined) ends with
 * the gateway's member carrying `error`. Returns the code from `details` (`undefined` when absent or not
 * a `TG_…` code), or `false` when the answer is not the gateway's (no such field, the last member is
 * another intermediary's, or it says `received-status`). A field that does not parse is not the gateway's.
 *
 * @example
 * gatewayAnswer('tollgate;error=http_request_denied;details="TG_POLICY_DENIED"'); // { code: "TG_POLICY_DENIED" }
 * gatewayAnswer("tollgate;received-status=404"); // false
 */
export function gatewayAnswer(
  field: string | readonly string[] | undefined,
): { code: string | undefined } | false {
  if (field === undefined) return false;
  let members: List;
  try {
    members = parseList(typeof field === "string" ? field : field.join(", "));
  } catch {
    return false;
  }
  const last = members.at(-1);
  if (last === undefined || Array.isArray(last[0])) return false;
  const [name, parameters] = last;
  const named = name instanceof Token ? name.toString() : name;
  if (named !== proxyStatusName || !parameters.has("error")) return false;
  const details = parameters.get("details");
  return { code: typeof details === "string" && /^TG_[A-Z0-9_]{1,60}$/.test(details) ? details : undefined };
}
