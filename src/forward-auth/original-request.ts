import type { IncomingHttpHeaders } from "node:http";

/** The request an ingress asks about: what its client sent to the ingress. */
export interface OriginalRequest {
  /** Upper-case method. */
  readonly method: string;
  /** The Host the client addressed (may carry a port), or undefined when the ingress did not say. */
  readonly host: string | undefined;
  /** The request target as the client sent it (path and query), not yet normalised. */
  readonly target: string;
  /** Which convention named it: for the audit detail and the docs' troubleshooting. */
  readonly convention: "x-original-url" | "x-original-uri" | "x-forwarded-uri" | "path";
}

/**
 * Reads which request an ingress's forward-auth subrequest is about, from the conventions of the
 * ingresses in examples/ingress/, first match wins:
 *
 * - `X-Original-URL` (ingress-nginx's `auth-url`): an absolute URL; host and target come from it. Its path
 *   is taken as written (not parsed by `URL`, which would resolve `..` differently from the proxy's
 *   normalisation).
 * - `X-Original-URI` (nginx `auth_request`, with `proxy_set_header X-Original-URI $request_uri`).
 * - `X-Forwarded-Uri` (Traefik `ForwardAuth`, Caddy `forward_auth`).
 * - Otherwise the subrequest's own target below the endpoint's path (Envoy `ext_authz` with `path_prefix`
 *   sends `/_tollgate/auth/original/path?query`, with the original method and Host).
 *
 * The method is `X-Original-Method`, else `X-Forwarded-Method`, else the subrequest's own; the host is
 * `X-Forwarded-Host`, else the subrequest's `Host` (nginx and Envoy keep the client's). Returns
 * `undefined` when the subrequest names no request: an ingress misconfiguration, answered 400.
 *
 * These headers are trusted only here: they choose which route's rules a presented token is checked
 * against. A caller reaching the endpoint directly could only learn how its own token fares (what
 * `tollgate explain` tells an operator); the ingress never takes such an answer, so the endpoint cannot
 * be used to get past it. docs/ingress.md says to let only the ingress reach it all the same.
 *
 * @example
 * originalRequest({ "x-original-uri": "/a?x=1", "x-original-method": "PUT", host: "h" }, "/_tollgate/auth", "GET", "/_tollgate/auth");
 * // { method: "PUT", host: "h", target: "/a?x=1", convention: "x-original-uri" }
 */
export function originalRequest(
  headers: IncomingHttpHeaders,
  endpointPath: string,
  ownMethod: string,
  ownTarget: string,
): OriginalRequest | undefined {
  const method = (
    single(headers["x-original-method"]) ??
    single(headers["x-forwarded-method"]) ??
    ownMethod
  ).toUpperCase();
  const host = single(headers["x-forwarded-host"]) ?? headers.host;

  const originalUrl = single(headers["x-original-url"]);
  if (originalUrl !== undefined) {
    const parts = absoluteUrl.exec(originalUrl);
    if (parts === null) return undefined;
    return { method, host: parts[1], target: parts[2] || "/", convention: "x-original-url" };
  }
  const originalUri = single(headers["x-original-uri"]);
  if (originalUri !== undefined) return { method, host, target: originalUri, convention: "x-original-uri" };
  const forwardedUri = single(headers["x-forwarded-uri"]);
  if (forwardedUri !== undefined)
    return { method, host, target: forwardedUri, convention: "x-forwarded-uri" };
  if (ownTarget.startsWith(endpointPath) && ownTarget.charCodeAt(endpointPath.length) === 0x2f) {
    return { method, host, target: ownTarget.slice(endpointPath.length), convention: "path" };
  }
  return undefined;
}

/** `scheme://authority` then the target; an authority with user info is refused (no honest ingress sends one). */
const absoluteUrl = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#@]+)([/?].*)?$/;

/**
 * A header's value, or undefined when absent or empty. Node joins a repeated header with ", ": such a
 * target then fails path normalisation (400), as it should.
 */
function single(value: string | string[] | undefined): string | undefined {
  if (value === undefined || Array.isArray(value) || value === "") return undefined;
  return value;
}
