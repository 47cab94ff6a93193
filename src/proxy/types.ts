import type { RateLimitSpec, SingleUseSpec } from "../limits/types.js";
import type { AccessRule } from "../policy/types.js";

/**
 * Contracts of the reverse proxy: `config/` compiles `routes[]` into {@link CompiledRoute}s (frozen), and
 * the route table and forwarder serve them.
 */

/**
 * A route after compilation: methods upper-cased, policies resolved. Frozen. A `proxy` route (the default)
 * is forwarded by tollgate to its upstream; a `forward_auth` route has no upstream: an ingress in front
 * (nginx, Caddy, Envoy, Traefik) asks tollgate's forward-auth endpoint about each request and proxies it
 * itself. Narrow on `mode` before reading the upstream.
 */
export type CompiledRoute = ProxyRoute | ForwardAuthRoute;

/** What every route has, whichever way its requests travel. */
export interface RouteBase {
  readonly name: string;
  /** Always starts with `/`. Longest prefix wins. */
  readonly pathPrefix: string;
  /** Lower-case host (without port) the request's Host must equal, when set. */
  readonly host?: string;
  /** Upper-case methods; undefined means any method. */
  readonly methods?: ReadonlySet<string>;
  /** Claims sent upstream as `Tollgate-Claim-<name>` headers (by tollgate, or by the ingress). */
  readonly forwardClaims: readonly string[];
  /** Where the token is read from: `Gateway-Authorization` only, or also `Authorization`. */
  readonly authHeader: "gateway-authorization" | "authorization";
  readonly access: AccessRule;
  /** `rate_limit`, if set. */
  readonly rateLimit?: RateLimitSpec;
  /** `single_use`, if on. */
  readonly singleUse?: SingleUseSpec;
}

/** `mode: proxy`: tollgate forwards the route's requests to its upstream. */
export interface ProxyRoute extends RouteBase {
  /** Always `proxy` once compiled; optional so that hand-built routes (tests, benches) need not say it. */
  readonly mode?: "proxy";
  /** `http:` or `https:` origin plus optional base path. */
  readonly upstream: URL;
  readonly stripPrefix: boolean;
  /** Whole-exchange timeout for headers from upstream (ms). */
  readonly timeoutMs: number;
  /** `via`: the connector pool that carries this route's requests; the gateway never dials `upstream`. */
  readonly via?: string;
  /**
   * `websocket`: the limits of the WebSocket connections this route carries, or `false` when it refuses
   * upgrades. Unset (routes built by hand in tests and benches): carried, with the default limits.
   */
  readonly websocket?: RouteWebSocket | false;
}

/** The limits of a route's WebSocket connections (`websocket: {idle_timeout, max_lifetime}`). */
export interface RouteWebSocket {
  /** A connection with no byte in either direction for this long is closed (ms). */
  readonly idleTimeoutMs: number;
  /** A connection is closed this long after it opened, busy or not (ms). */
  readonly maxLifetimeMs: number;
}

/**
 * `mode: forward_auth`: only the forward-auth endpoint decides on it (src/forward-auth/); a request sent
 * to tollgate itself on its path is answered 404, as there is nothing to forward it to.
 */
export interface ForwardAuthRoute extends RouteBase {
  readonly mode: "forward_auth";
  /** Never set: the ingress, not tollgate, reaches the upstream. */
  // Declared absent, so code holding either kind can test them without narrowing first.
  readonly upstream?: undefined;
  readonly stripPrefix?: undefined;
  readonly timeoutMs?: undefined;
  readonly via?: undefined;
}
