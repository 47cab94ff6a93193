import type { ConcurrencySpec, RateLimitSpec } from "../limits/types.js";
/**
 * Contracts of the tunnel feature: `config/` compiles `tunnels[]` into {@link CompiledTunnel}s (frozen,
 * destinations parsed, policies resolved); the feature serves CONNECT and absolute-form forward proxying
 * from them.
 */
import type { AccessRule } from "../policy/types.js";
import type { DestinationPattern } from "./destination-pattern.js";
import type { NormalizedHost } from "./ip-address.js";

export type { DestinationPattern, DestinationProblem } from "./destination-pattern.js";
export type { DeniedRange, IpFamily, NormalizedHost } from "./ip-address.js";

/** One `tunnels[]` entry after compilation. */
export interface CompiledTunnel {
  readonly name: string;
  readonly destinations: readonly DestinationPattern[];
  readonly access: AccessRule;
  /** A tunnel with no byte in either direction for this long is closed (ms). */
  readonly idleTimeoutMs: number;
  /** A tunnel is closed this long after it opened, busy or not (ms). */
  readonly maxLifetimeMs: number;
  /** Budget for resolving the host name and connecting to the destination (ms); beyond it, 504. */
  readonly connectTimeoutMs: number;
  /** `rate_limit`: counts the tunnel opens (and forward-proxied requests) it admits. */
  readonly rateLimit?: RateLimitSpec;
  /** `concurrency`: how many of its tunnels (and forward-proxied requests) one key may have open at once. */
  readonly concurrency?: ConcurrencySpec;
  /** `via`: the connector pool that carries this tunnel; the edge then never dials its destinations. */
  readonly via?: string;
}

/** Defaults of the optional tunnel keys. */
export const tunnelDefaults = Object.freeze({
  idleTimeoutMs: 10 * 60_000,
  maxLifetimeMs: 6 * 3_600_000,
  connectTimeoutMs: 10_000,
});

/** A requested destination: the normalised host and the port. */
export interface TunnelTarget {
  readonly host: NormalizedHost;
  readonly port: number;
  /** `host:port` in normalised form, for audit events and messages. */
  readonly text: string;
}

/** One answer of the resolver, as `dns.lookup(host, { all: true })` gives it. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}

/**
 * Resolves a host name to every address it has. Injected so tests can prove the gateway resolves once
 * and dials exactly what it checked; the default is `dns.promises.lookup(name, { all: true })`.
 */
export type LookupAll = (hostname: string) => Promise<readonly ResolvedAddress[]>;
