import type { IncomingHttpHeaders } from "node:http";

/** A token a proxy client presented, and the header it came in (stripped before anything is forwarded). */
export interface ProxyCredential {
  readonly token: string;
  readonly header: "gateway-authorization" | "proxy-authorization";
}

/** What a 407 answer offers: both schemes clients use to send the token through a proxy. */
export const proxyAuthenticateValue = 'Bearer realm="tollgate", Basic realm="tollgate"';

/**
 * Reads a proxy client's token, in the order DESIGN.md gives: `Gateway-Authorization` (bare or
 * `Bearer <jwt>`), then `Proxy-Authorization: Bearer <jwt>` or `Proxy-Authorization: Basic
 * base64(<any user>:<jwt>)` — the form `HTTPS_PROXY=http://oidc:$TOKEN@gateway:8080` makes curl, git and
 * npm send. A Basic credential with an empty password carries the token as the user name instead
 * (`http://$TOKEN@gateway:8080`).
 *
 * Returns `undefined` when no usable credential is present; an unknown scheme counts as absent.
 *
 * @example
 * proxyCredential({ "proxy-authorization": `Basic ${btoa(`oidc:${jwt}`)}` }); // { token: jwt, header: "proxy-authorization" }
 */
export function proxyCredential(headers: IncomingHttpHeaders): ProxyCredential | undefined {
  const gateway = headers["gateway-authorization"];
  if (typeof gateway === "string" && gateway.trim() !== "") {
    const token = bearerOrBare(gateway);
    return token === undefined ? undefined : { token, header: "gateway-authorization" };
  }
  const proxy = headers["proxy-authorization"];
  if (typeof proxy !== "string") return undefined;
  const value = proxy.trim();
  const space = value.indexOf(" ");
  if (space === -1) return undefined;
  // RFC 9110 §11.1: the scheme is case-insensitive; credentials follow one or more spaces.
  const scheme = value.slice(0, space).toLowerCase();
  const rest = value.slice(space + 1).trim();
  let token: string | undefined;
  if (scheme === "bearer") token = singleToken(rest);
  else if (scheme === "basic") token = basicPassword(rest);
  return token === undefined ? undefined : { token, header: "proxy-authorization" };
}

function bearerOrBare(value: string): string | undefined {
  const trimmed = value.trim();
  if (trimmed.length > 7 && trimmed.slice(0, 7).toLowerCase() === "bearer ")
    return singleToken(trimmed.slice(7));
  return singleToken(trimmed);
}

function singleToken(text: string): string | undefined {
  const token = text.trim();
  return token.length > 0 && !/\s/.test(token) ? token : undefined;
}

function basicPassword(encoded: string): string | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return undefined;
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon === -1) return undefined;
  const password = decoded.slice(colon + 1);
  return singleToken(password === "" ? decoded.slice(0, colon) : password);
}
