import type { IncomingHttpHeaders } from "node:http";

/** Where a token was found; the server strips exactly these headers before forwarding. */
export interface ExtractedToken {
  token: string;
  /** Lower-case name of the header that carried it. */
  header: "gateway-authorization" | "authorization";
}

/**
 * Reads the caller's token. `Gateway-Authorization` (the header of actions-oidc-gateway-example) may
 * carry the JWT bare or as `Bearer <jwt>`; `Authorization` is read only where the route opts in, and only
 * as `Bearer <jwt>` (a bare value there is more likely an upstream credential than ours).
 *
 * Returns `undefined` when no usable header is present. A header with another scheme (`Basic …`) is
 * treated as absent rather than guessed at.
 */
export function extractToken(
  headers: IncomingHttpHeaders,
  acceptAuthorization: boolean,
): ExtractedToken | undefined {
  const gateway = headers["gateway-authorization"];
  if (typeof gateway === "string" && gateway.length > 0) {
    const token = stripBearer(gateway, true);
    return token === undefined ? undefined : { token, header: "gateway-authorization" };
  }
  if (acceptAuthorization) {
    const authorization = headers.authorization;
    if (typeof authorization === "string") {
      const token = stripBearer(authorization, false);
      if (token !== undefined) return { token, header: "authorization" };
    }
  }
  return undefined;
}

function stripBearer(value: string, bareAllowed: boolean): string | undefined {
  const trimmed = value.trim();
  // RFC 6750: the scheme is case-insensitive and separated by one or more spaces.
  if (trimmed.length > 7 && trimmed.slice(0, 7).toLowerCase() === "bearer ") {
    const token = trimmed.slice(7).trim();
    return token.length > 0 && !token.includes(" ") ? token : undefined;
  }
  if (!bareAllowed || trimmed.includes(" ")) return undefined;
  return trimmed.length > 0 ? trimmed : undefined;
}
