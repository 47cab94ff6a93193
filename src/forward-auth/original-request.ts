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
 * ingresses in examples/ingress/:
 *
 * - `X-Original-URL` (ingress-nginx's `auth-url`): an absolute URL; host and target come from it. Its path
 *   is taken as written (not parsed by `URL`, which would resolve `..` differently from the proxy's
 *   normalisation).
 * - `X-Original-URI` (nginx `auth_request`, with `proxy_set_header X-Original-URI $request_uri`).
 * - `X-Forwarded-Uri` (Traefik `ForwardAuth`, Caddy `forward_auth`).
 * - The subrequest's own target below the endpoint's path (Envoy `ext_authz` with `path_prefix` sends
 *   `/_tollgate/auth/original/path?query`, with the original method and Host).
 *
 * The method is `X-Original-Method` or `X-Forwarded-Method`, else the subrequest's own; the host is
 * `X-Forwarded-Host`, else the subrequest's `Host` (nginx and Envoy keep the client's).
 *
 * Exactly one convention must name the target, and at most one header the method: an ingress sets its
 * own headers but passes the client's other headers on (nginx, Caddy and Traefik all do), so a client
 * could add `X-Original-URI` through Caddy, or `X-Forwarded-Method` through nginx, to have another request
 * decided than the one the ingress will carry. More than one is refused (`conflict`) rather than ranked.
 * Returns `missing` when the subrequest names no request: an ingress misconfiguration. Both are 400.
 *
 * These headers are trusted only here: they choose which route's rules a presented token is checked
 * against. docs/ingress.md says to let only the ingress reach the endpoint.
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
): OriginalRequest | "missing" | "conflict" {
  const originalMethod = single(headers["x-original-method"]);
  const forwardedMethod = single(headers["x-forwarded-method"]);
  if (originalMethod !== undefined && forwardedMethod !== undefined) return "conflict";
  const method = (originalMethod ?? forwardedMethod ?? ownMethod).toUpperCase();
  const host = single(headers["x-forwarded-host"]) ?? headers.host;

  const named: OriginalRequest[] = [];
  const originalUrl = single(headers["x-original-url"]);
  if (originalUrl !== undefined) {
    const parts = absoluteUrl.exec(originalUrl);
    // Not an absolute URL: kept whole as the target, which path normalisation then refuses.
    named.push(
      parts === null
        ? { method, host, target: originalUrl, convention: "x-original-url" }
        : { method, host: parts[1], target: parts[2] || "/", convention: "x-original-url" },
    );
  }
  const originalUri = single(headers["x-original-uri"]);
  if (originalUri !== undefined)
    named.push({ method, host, target: originalUri, convention: "x-original-uri" });
  const forwardedUri = single(headers["x-forwarded-uri"]);
  if (forwardedUri !== undefined)
    named.push({ method, host, target: forwardedUri, convention: "x-forwarded-uri" });
  if (ownTarget.startsWith(endpointPath) && ownTarget.charCodeAt(endpointPath.length) === 0x2f) {
    named.push({ method, host, target: ownTarget.slice(endpointPath.length), convention: "path" });
  }
  if (named.length > 1) return "conflict";
  return named[0] ?? "missing";
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
