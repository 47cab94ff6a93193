import { BlockList } from "node:net";

/**
 * A host as a tunnel matches it: an IP address in one canonical text form, or a DNS name. Every way of
 * writing an address (decimal `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`, short `127.1`, IPv4-mapped
 * `::ffff:127.0.0.1`, upper-case hex, a trailing dot) ends up as the same value, so a destination check
 * cannot be side-stepped by spelling.
 */
export type NormalizedHost =
  | { readonly kind: "ipv4"; readonly address: string }
  | { readonly kind: "ipv6"; readonly address: string }
  | { readonly kind: "name"; readonly name: string };

/** Address families as `net.BlockList` names them. */
export type IpFamily = "ipv4" | "ipv6";

/** Characters a host may have outside brackets: DNS labels (underscore included, as internal names use it). */
const hostCharacters = /^[A-Za-z0-9._-]+$/;
/** Inside brackets: IPv6 hex groups, optionally ending in a dotted quad. No `%`: zone ids are refused. */
const bracketCharacters = /^\[[0-9A-Fa-f:.]+\]$/;

/**
 * Normalises a host as written by a caller (a CONNECT authority, an absolute-form URL) or by an operator
 * (a destination pattern): IPv6 in brackets, everything else bare. Returns `undefined` for anything that
 * is not a plain host: zone ids (`%eth0`), percent-encoding, user info, paths, non-ASCII, empty labels.
 *
 * The IPv4 number forms are parsed by the WHATWG URL host parser, the one HTTP clients use, so tollgate
 * reads `0x7f.1` exactly as curl or a browser would dial it.
 *
 * @example
 * normalizeHost("0177.0.0.1"); // { kind: "ipv4", address: "127.0.0.1" }
 * normalizeHost("[::FFFF:7f00:1]"); // { kind: "ipv4", address: "127.0.0.1" }
 * normalizeHost("DB.Internal."); // { kind: "name", name: "db.internal" }
 */
export function normalizeHost(text: string): NormalizedHost | undefined {
  if (text.length === 0 || text.length > 255) return undefined;
  const bracketed = text.startsWith("[");
  if (bracketed ? !bracketCharacters.test(text) : !hostCharacters.test(text)) return undefined;
  let hostname: string;
  try {
    hostname = new URL(`http://${text}/`).hostname;
  } catch {
    return undefined;
  }
  if (hostname.startsWith("[")) {
    if (!bracketed) return undefined;
    return ipv6Host(hostname.slice(1, -1));
  }
  if (bracketed) return undefined;
  if (isDottedQuad(hostname)) return { kind: "ipv4", address: hostname };
  const name = hostname.endsWith(".") ? hostname.slice(0, -1) : hostname;
  if (!isDnsName(name)) return undefined;
  return { kind: "name", name };
}

/**
 * Normalises an address returned by the resolver (or written without brackets): IPv4-mapped IPv6 becomes
 * the IPv4 address, IPv6 gets its canonical compressed lower-case form.
 */
export function normalizeAddress(address: string): NormalizedHost | undefined {
  if (address.includes("%")) return undefined;
  const host = normalizeHost(address.includes(":") ? `[${address}]` : address);
  return host === undefined || host.kind === "name" ? undefined : host;
}

/** `host:port` for messages and audit events, IPv6 in brackets. */
export function formatHostPort(host: NormalizedHost, port: number): string {
  if (host.kind === "name") return `${host.name}:${port}`;
  return host.kind === "ipv6" ? `[${host.address}]:${port}` : `${host.address}:${port}`;
}

function ipv6Host(canonical: string): NormalizedHost {
  const groups = ipv6Groups(canonical);
  // ::ffff:a.b.c.d is the same host as a.b.c.d for every dual-stack socket: match and dial it as IPv4.
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return { kind: "ipv4", address: ipv4FromGroups(groups[6]!, groups[7]!) };
  }
  return { kind: "ipv6", address: canonical };
}

/** The eight 16-bit groups of an IPv6 address in the URL parser's canonical form (hex, `::`, no dots). */
export function ipv6Groups(canonical: string): number[] {
  const [head = "", tail] = canonical.split("::");
  const parse = (part: string) =>
    part === "" ? [] : part.split(":").map((group) => Number.parseInt(group, 16));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function ipv4FromGroups(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

function isDottedQuad(text: string): boolean {
  return /^\d{1,3}(?:\.\d{1,3}){3}$/.test(text);
}

function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split(".").every((label) => label.length > 0 && label.length <= 63);
}

/** One always-denied range, with the words an operator reads in the audit detail. */
export interface DeniedRange {
  readonly family: IpFamily;
  readonly network: string;
  readonly prefix: number;
  readonly what: string;
}

/**
 * Ranges no tunnel reaches unless one of its destinations names the address or a range inside these
 * explicitly. They are where a gateway's own services and the cloud's credentials live: a tunnel that
 * reached them would hand the gateway's identity to every caller.
 */
export const alwaysDeniedRanges: readonly DeniedRange[] = Object.freeze([
  { family: "ipv4", network: "0.0.0.0", prefix: 8, what: "unspecified (this host)" },
  { family: "ipv4", network: "127.0.0.0", prefix: 8, what: "loopback" },
  { family: "ipv4", network: "169.254.0.0", prefix: 16, what: "link-local (cloud metadata)" },
  { family: "ipv4", network: "224.0.0.0", prefix: 4, what: "multicast" },
  { family: "ipv4", network: "240.0.0.0", prefix: 4, what: "reserved and broadcast" },
  // Metadata and platform endpoints outside link-local: Alibaba Cloud, Azure's WireServer, Oracle Cloud.
  { family: "ipv4", network: "100.100.100.200", prefix: 32, what: "cloud metadata" },
  { family: "ipv4", network: "168.63.129.16", prefix: 32, what: "cloud platform endpoint" },
  { family: "ipv4", network: "192.0.0.192", prefix: 32, what: "cloud metadata" },
  { family: "ipv6", network: "::", prefix: 128, what: "unspecified (this host)" },
  { family: "ipv6", network: "::1", prefix: 128, what: "loopback" },
  // The deprecated IPv4-compatible form (::a.b.c.d); nothing legitimate lives there.
  { family: "ipv6", network: "::", prefix: 96, what: "IPv4-compatible (deprecated)" },
  { family: "ipv6", network: "fe80::", prefix: 10, what: "link-local" },
  { family: "ipv6", network: "fec0::", prefix: 10, what: "site-local (deprecated)" },
  { family: "ipv6", network: "ff00::", prefix: 8, what: "multicast" },
  { family: "ipv6", network: "fd00:ec2::254", prefix: 128, what: "cloud metadata (AWS)" },
]) as readonly DeniedRange[];

const deniedLists = alwaysDeniedRanges.map((range) => {
  const list = new BlockList();
  list.addSubnet(range.network, range.prefix, range.family);
  return { range, list };
});

/**
 * The always-denied range an address falls in, or `undefined`. IPv6 forms that carry an IPv4 address a
 * translator would reach (NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by that IPv4 address too.
 */
export function alwaysDeniedRange(host: NormalizedHost): DeniedRange | undefined {
  if (host.kind === "name") return undefined;
  const direct = deniedRangeOf(host.address, host.kind);
  if (direct !== undefined || host.kind === "ipv4") return direct;
  const embedded = embeddedIpv4(host.address);
  return embedded === undefined ? undefined : deniedRangeOf(embedded, "ipv4");
}

function deniedRangeOf(address: string, family: IpFamily): DeniedRange | undefined {
  for (const { range, list } of deniedLists) {
    if (range.family === family && list.check(address, family)) return range;
  }
  return undefined;
}

/** Whether a whole range (`network/prefix`) lies inside one always-denied range. */
export function insideDeniedRange(network: string, prefix: number, family: IpFamily): boolean {
  return deniedLists.some(
    ({ range, list }) => range.family === family && prefix >= range.prefix && list.check(network, family),
  );
}

function embeddedIpv4(canonical: string): string | undefined {
  const groups = ipv6Groups(canonical);
  if (groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((group) => group === 0)) {
    return ipv4FromGroups(groups[6]!, groups[7]!);
  }
  if (groups[0] === 0x2002) return ipv4FromGroups(groups[1]!, groups[2]!);
  return undefined;
}
