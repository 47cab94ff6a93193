import {
  alwaysDenied,
  formatHostPort,
  type NormalizedHost,
  normalizeHost,
  rangeNamesDenial,
} from "./ip-address.js";
import type { CompiledTunnel, TunnelTarget } from "./types.js";

/**
 * Parses a request's authority (`host:port`, `[v6]:port`) into a normalised {@link TunnelTarget}.
 * CONNECT requires the port; an absolute-form `http://` URL may leave it out (`defaultPort`).
 * Returns `undefined` for anything else: an IPv6 address without brackets, a zone id, user info, an
 * out-of-range port, characters a host cannot have.
 *
 * @example
 * parseAuthority("0x7f.1:5432"); // { host: { kind: "ipv4", address: "127.0.0.1" }, port: 5432, text: "127.0.0.1:5432" }
 */
export function parseAuthority(authority: string, defaultPort?: number): TunnelTarget | undefined {
  let hostText: string;
  let portText: string | undefined;
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    if (close === -1) return undefined;
    hostText = authority.slice(0, close + 1);
    const rest = authority.slice(close + 1);
    if (rest !== "" && !rest.startsWith(":")) return undefined;
    portText = rest === "" ? undefined : rest.slice(1);
  } else {
    const colon = authority.indexOf(":");
    if (colon !== authority.lastIndexOf(":")) return undefined;
    hostText = colon === -1 ? authority : authority.slice(0, colon);
    portText = colon === -1 ? undefined : authority.slice(colon + 1);
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) return undefined;
    port = defaultPort;
  } else {
    if (!/^\d{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
  }
  if (port < 1 || port > 65_535) return undefined;
  const host = normalizeHost(hostText);
  if (host === undefined) return undefined;
  return { host, port, text: formatHostPort(host, port) };
}

/**
 * Whether `tunnel` lets a caller reach `address` (an IP) when it asked for `target`. An address pattern
 * covering it admits it, but an always-denied address (loopback, link-local, metadata, an IPv6 form
 * carrying one of them …) only when the pattern names every reason it is denied explicitly: read the way
 * that reason reads the address, the pattern's whole range lies inside the denied range. Otherwise, when
 * the caller asked for a host name that one of the tunnel's name patterns matches, any address that is not
 * always-denied is admitted: the operator trusts their own DNS for names they listed.
 */
export function tunnelAdmitsAddress(
  tunnel: CompiledTunnel,
  target: TunnelTarget,
  address: NormalizedHost,
): boolean {
  const denials = alwaysDenied(address);
  for (const pattern of tunnel.destinations) {
    if (
      pattern.kind === "address" &&
      pattern.matches(address, target.port) &&
      denials.every((denial) => pattern.network !== undefined && rangeNamesDenial(pattern.network, denial))
    )
      return true;
  }
  if (denials.length > 0 || target.host.kind !== "name") return false;
  return tunnelAdmitsName(tunnel, target);
}

/** Whether one of the tunnel's name or glob patterns matches the requested host name and port. */
export function tunnelAdmitsName(tunnel: CompiledTunnel, target: TunnelTarget): boolean {
  return tunnel.destinations.some(
    (pattern) => pattern.kind !== "address" && pattern.matches(target.host, target.port),
  );
}

/**
 * The tunnels that may carry a request for `target`, in configuration order, before any policy or DNS:
 * for an IP target, those that admit the address; for a host name, those whose name patterns match it,
 * and those with an address pattern on that port (the name may resolve into their range — decided once
 * it is resolved).
 */
export function candidateTunnels(tunnels: readonly CompiledTunnel[], target: TunnelTarget): CompiledTunnel[] {
  const host = target.host;
  if (host.kind !== "name") return tunnels.filter((tunnel) => tunnelAdmitsAddress(tunnel, target, host));
  return tunnels.filter(
    (tunnel) =>
      tunnelAdmitsName(tunnel, target) ||
      tunnel.destinations.some(
        (pattern) =>
          pattern.kind === "address" && target.port >= pattern.ports.from && target.port <= pattern.ports.to,
      ),
  );
}

/** An address the gateway checked and may dial, with the tunnel that admitted it. */
export interface CheckedAddress {
  readonly address: NormalizedHost & { kind: "ipv4" | "ipv6" };
  readonly tunnel: CompiledTunnel;
}

/**
 * Checks every resolved address of `target` against the allowed tunnels: each one must be admitted by one
 * of them, else the whole request is refused (a name that resolves to one private and one metadata address
 * is an attack or a mistake, never something to half-serve). Returns the addresses in resolver order, each
 * with its admitting tunnel, or the refusal for the audit detail.
 */
export function checkAddresses(
  allowed: readonly CompiledTunnel[],
  target: TunnelTarget,
  addresses: readonly (NormalizedHost & { kind: "ipv4" | "ipv6" })[],
): { checked: CheckedAddress[] } | { refusal: string } {
  if (addresses.length === 0) return { refusal: `${target.text} resolved to no address` };
  const checked: CheckedAddress[] = [];
  for (const address of addresses) {
    const tunnel = allowed.find((candidate) => tunnelAdmitsAddress(candidate, target, address));
    if (tunnel === undefined) return { refusal: addressRefusal(allowed, target, address) };
    checked.push({ address, tunnel });
  }
  return { checked };
}

/** Why an address was refused, for the audit detail and `explain`. */
export function addressRefusal(
  tunnels: readonly CompiledTunnel[],
  target: TunnelTarget,
  address: NormalizedHost,
): string {
  const shown = formatHostPort(address, target.port);
  const via = target.host.kind === "name" ? `${target.text} resolved to ${shown}, which ` : `${shown} `;
  const denials = alwaysDenied(address);
  if (denials.length > 0) {
    const what = denials.map((denial) => denial.what).join("; and ");
    return `${via}is ${what}: always denied unless a destination names it explicitly`;
  }
  const names = tunnels.map((tunnel) => tunnel.name).join(", ");
  return `${via}is outside the destinations of ${names === "" ? "every tunnel" : `tunnel ${names}`}`;
}
