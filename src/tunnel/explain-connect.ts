import {
  addressRefusal,
  candidateTunnels,
  parseAuthority,
  tunnelAdmitsAddress,
} from "./destination-check.js";
import { alwaysDeniedRange } from "./ip-address.js";
import type { CompiledTunnel, DestinationPattern, TunnelTarget } from "./types.js";

/** The destination half of a CONNECT decision, for `tollgate explain --connect`. No I/O: nothing is resolved. */
export interface ConnectExplanation {
  /** The normalised target, or undefined when the gateway would refuse it as malformed (400). */
  readonly target?: TunnelTarget;
  /** Tunnels that may carry the request, in configuration order, with the patterns that match. */
  readonly candidates: readonly { tunnel: CompiledTunnel; patterns: readonly DestinationPattern[] }[];
  /** Why no tunnel matches an IP target (the audit detail the gateway would write). */
  readonly refusal?: string;
  /** For a host name: what happens at connect time, when the name is resolved. */
  readonly resolutionNote?: string;
}

/**
 * Which tunnels a CONNECT to `authority` would consider, and why, using the very functions the gateway
 * uses. Policies are not evaluated here: the caller renders each candidate's `evaluateAccess` decision.
 *
 * @example
 * explainConnect(config.compiledTunnels, "db.internal:5432").candidates.map((c) => c.tunnel.name);
 */
export function explainConnect(tunnels: readonly CompiledTunnel[], authority: string): ConnectExplanation {
  const target = parseAuthority(authority);
  if (target === undefined) return { candidates: [] };
  const host = target.host;
  const candidates = candidateTunnels(tunnels, target).map((tunnel) => ({
    tunnel,
    patterns: tunnel.destinations.filter((pattern) =>
      host.kind === "name"
        ? pattern.kind === "address"
          ? target.port >= pattern.ports.from && target.port <= pattern.ports.to
          : pattern.matches(host, target.port)
        : pattern.matches(host, target.port) &&
          (pattern.explicit || alwaysDeniedRange(host) === undefined) &&
          tunnelAdmitsAddress(tunnel, target, host),
    ),
  }));
  if (host.kind !== "name") {
    return candidates.length > 0
      ? { target, candidates }
      : { target, candidates, refusal: addressRefusal(tunnels, target, host) };
  }
  return {
    target,
    candidates,
    resolutionNote:
      `the gateway resolves ${host.name} once when the tunnel opens and dials only the addresses it checked: ` +
      "each must be inside an address pattern above, or (for a name matched by a name pattern) outside the " +
      "always-denied ranges (loopback, link-local and metadata, unspecified, multicast, every other IANA " +
      "special-purpose range but the private-use ones, and IPv6 forms carrying such an IPv4 address)",
  };
}
