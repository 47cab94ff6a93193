import type { RateLimitSpec, SingleUseSpec } from "../limits/types.js";
import type { AccessRule } from "../policy/types.js";

/**
 * Contracts of the reverse proxy: `config/` compiles `routes[]` into {@link CompiledRoute}s (frozen), and
 * the route table and forwarder serve them.
 */

/** A route after compilation: upstream parsed, methods upper-cased, policies resolved. Frozen. */
export interface CompiledRoute {
  readonly name: string;
  /** Always starts with `/`. Longest prefix wins. */
  readonly pathPrefix: string;
  /** Lower-case host (without port) the request's Host must equal, when set. */
  readonly host?: string;
  /** Upper-case methods; undefined means any method. */
  readonly methods?: ReadonlySet<string>;
  /** `http:` or `https:` origin plus optional base path. */
  readonly upstream: URL;
  readonly stripPrefix: boolean;
  /** Whole-exchange timeout for headers from upstream (ms). */
  readonly timeoutMs: number;
  /** Claims sent upstream as `Tollgate-Claim-<name>` headers. */
  readonly forwardClaims: readonly string[];
  /** Where the token is read from: `Gateway-Authorization` only, or also `Authorization`. */
  readonly authHeader: "gateway-authorization" | "authorization";
  readonly access: AccessRule;
  /** `rate_limit`, if set. */
  readonly rateLimit?: RateLimitSpec;
  /** `single_use`, if on. */
  readonly singleUse?: SingleUseSpec;
  /** `via`: the connector pool that carries this route's requests; the gateway never dials `upstream`. */
  readonly via?: string;
}
