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

/** The eight 16-bit masks of each IPv6 prefix length, 0 to 128. */
const prefixMasks: readonly (readonly number[])[] = Array.from({ length: 129 }, (_, prefix) =>
  Object.freeze(
    Array.from({ length: 8 }, (_, index) => {
      const keep = Math.max(0, Math.min(16, prefix - index * 16));
      return (0xffff << (16 - keep)) & 0xffff;
    }),
  ),
);

/** One always-denied range, with the words an operator reads in the audit detail. */
export interface DeniedRange {
  readonly family: IpFamily;
  readonly network: string;
  readonly prefix: number;
  readonly what: string;
}

/**
 * Ranges no tunnel reaches unless one of its destinations names the address or a range inside these
 * explicitly: every range of the IANA IPv4 and IPv6 special-purpose registries except the private-use
 * ones where internal services live (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) and the IPv6
 * forms that carry an IPv4 address (judged by that address, {@link ipv4Embeddings}); plus multicast, the
 * deprecated IPv6 forms, and the cloud metadata endpoints. They are where a gateway's own services and
 * the cloud's credentials live, or protocol infrastructure no operator's service is: a tunnel that reached
 * them would hand the gateway's identity to every caller. test/tunnel/fixtures/special-purpose-addresses.yaml
 * records the decision and its reason for every registry row.
 */
export const alwaysDeniedRanges: readonly DeniedRange[] = Object.freeze(
  (
    [
      ["ipv4", "0.0.0.0", 8, "this network (unspecified)"],
      ["ipv4", "0.0.0.0", 32, "unspecified (this host)"],
      ["ipv4", "127.0.0.0", 8, "loopback"],
      ["ipv4", "169.254.0.0", 16, "link-local (cloud metadata)"],
      ["ipv4", "192.0.0.0", 24, "IETF protocol assignments"],
      ["ipv4", "192.0.0.0", 29, "IPv4 service continuity (DS-Lite, 464XLAT)"],
      ["ipv4", "192.0.0.8", 32, "IPv4 dummy address"],
      ["ipv4", "192.0.0.9", 32, "PCP anycast"],
      ["ipv4", "192.0.0.10", 32, "TURN anycast"],
      ["ipv4", "192.0.0.170", 32, "NAT64/DNS64 discovery"],
      ["ipv4", "192.0.0.171", 32, "NAT64/DNS64 discovery"],
      ["ipv4", "192.0.2.0", 24, "documentation (TEST-NET-1)"],
      ["ipv4", "192.31.196.0", 24, "AS112 DNS (AS112-v4)"],
      ["ipv4", "192.52.193.0", 24, "AMT relay anycast"],
      ["ipv4", "192.88.99.0", 24, "6to4 relay anycast (deprecated)"],
      ["ipv4", "192.175.48.0", 24, "AS112 DNS (direct delegation)"],
      ["ipv4", "198.18.0.0", 15, "benchmarking"],
      ["ipv4", "198.51.100.0", 24, "documentation (TEST-NET-2)"],
      ["ipv4", "203.0.113.0", 24, "documentation (TEST-NET-3)"],
      ["ipv4", "224.0.0.0", 4, "multicast"],
      ["ipv4", "240.0.0.0", 4, "reserved"],
      ["ipv4", "255.255.255.255", 32, "limited broadcast"],
      // Metadata and platform endpoints outside link-local: Alibaba Cloud (inside the reachable shared
      // address space 100.64/10), Azure's WireServer, Oracle Cloud.
      ["ipv4", "100.100.100.200", 32, "cloud metadata (Alibaba Cloud)"],
      ["ipv4", "168.63.129.16", 32, "cloud platform endpoint (Azure WireServer)"],
      ["ipv4", "192.0.0.192", 32, "cloud metadata (Oracle Cloud)"],
      ["ipv6", "::", 128, "unspecified (this host)"],
      ["ipv6", "::1", 128, "loopback"],
      // The deprecated IPv4-compatible form (::a.b.c.d, RFC 4291 §2.5.5.1): Linux's sit device tunnels it
      // to the IPv4 address, and nothing legitimate lives there whatever address it carries.
      ["ipv6", "::", 96, "IPv4-compatible (deprecated)"],
      ["ipv6", "100::", 64, "discard-only"],
      ["ipv6", "100:0:0:1::", 64, "dummy prefix"],
      // Teredo (2001::/32) is judged by the addresses it carries: the more specific row wins.
      ["ipv6", "2001::", 23, "IETF protocol assignments"],
      ["ipv6", "2001:1::1", 128, "PCP anycast"],
      ["ipv6", "2001:1::2", 128, "TURN anycast"],
      ["ipv6", "2001:1::3", 128, "DNS-SD SRP anycast"],
      ["ipv6", "2001:2::", 48, "benchmarking"],
      ["ipv6", "2001:3::", 32, "AMT"],
      ["ipv6", "2001:4:112::", 48, "AS112 DNS (AS112-v6)"],
      ["ipv6", "2001:10::", 28, "ORCHID (deprecated)"],
      ["ipv6", "2001:20::", 28, "ORCHIDv2"],
      ["ipv6", "2001:30::", 28, "drone remote ID tags (DETs)"],
      ["ipv6", "2001:db8::", 32, "documentation"],
      ["ipv6", "2620:4f:8000::", 48, "AS112 DNS (direct delegation)"],
      ["ipv6", "3fff::", 20, "documentation"],
      ["ipv6", "5f00::", 16, "SRv6 segment identifiers"],
      ["ipv6", "fe80::", 10, "link-local"],
      ["ipv6", "fec0::", 10, "site-local (deprecated)"],
      ["ipv6", "ff00::", 8, "multicast"],
      // Credential endpoints inside the reachable unique-local range fc00::/7.
      ["ipv6", "fd00:ec2::254", 128, "cloud metadata (AWS)"],
      ["ipv6", "fd00:ec2::23", 128, "cloud credentials (AWS EKS Pod Identity)"],
      ["ipv6", "fd20:ce::254", 128, "cloud metadata (Google Cloud)"],
    ] as const
  ).map(([family, network, prefix, what]) => Object.freeze({ family, network, prefix, what })),
) as readonly DeniedRange[];

/** One position an IPv6 form carries an IPv4 address at: its 32 bit indices (0 = most significant). */
export interface Ipv4Reading {
  /** How the position reads in the audit detail (`read as /64`, `client, inverted`), or "". */
  readonly what: string;
  /** IPv6 bit indices of the IPv4 address, most significant first. */
  readonly bits: readonly number[];
  /** Teredo stores the client address with every bit inverted. */
  readonly inverted: boolean;
}

/** An IPv6 form that carries an IPv4 address: a translator or a tunnel sends to that address. */
export interface Ipv4Embedding {
  /** For the audit detail, with its article: `a NAT64 address`. */
  readonly what: string;
  /** Where it applies, for the audit detail: `64:ff9b::/96`. */
  readonly where: string;
  /** The addresses it applies to: those whose groups, masked, equal `value`. */
  readonly mask: readonly number[];
  readonly value: readonly number[];
  /**
   * A prefix form's length. A denied range around it that is less specific (2001::/23 around Teredo's
   * 2001::/32) yields to it, as the registry's more specific row does. ISATAP, an interface identifier,
   * has none.
   */
  readonly prefix?: number;
  readonly readings: readonly Ipv4Reading[];
}

function span(start: number, length: number): number[] {
  return Array.from({ length }, (_, offset) => start + offset);
}

function reading(what: string, bits: number[], inverted = false): Ipv4Reading {
  return Object.freeze({ what, bits: Object.freeze(bits), inverted });
}

function prefixEmbedding(
  what: string,
  network: string,
  prefix: number,
  readings: Ipv4Reading[],
): Ipv4Embedding {
  const mask = prefixMask(prefix);
  const value = ipv6Groups(network).map((group, index) => group & mask[index]!);
  return Object.freeze({ what, where: `${network}/${prefix}`, mask, value, prefix, readings });
}

/**
 * Every IPv6 form that carries an IPv4 address, from the IANA IPv6 special-purpose registry and the RFCs
 * it names, and where each carries it. IPv4-mapped `::ffff:0:0/96` is not here: {@link normalizeHost}
 * makes it the IPv4 address itself. IPv4-compatible `::/96` is denied whole (above).
 */
export const ipv4Embeddings: readonly Ipv4Embedding[] = Object.freeze([
  // RFC 2765 (SIIT); dropped by RFC 6145, but a stack that still maps it reaches the IPv4 address.
  prefixEmbedding("an IPv4-translated address", "::ffff:0:0:0", 96, [reading("", span(96, 32))]),
  // RFC 6052: the well-known prefix is a /96.
  prefixEmbedding("a NAT64 address", "64:ff9b::", 96, [reading("", span(96, 32))]),
  // RFC 8215: the operator carves its prefix from 64:ff9b:1::/48 at any RFC 6052 length, and tollgate
  // cannot know which; translators ignore the suffix (RFC 6052 §2.2), so every position is a real one.
  // Bits 64-71 (the u octet) never carry the address.
  prefixEmbedding("a local-use NAT64 address", "64:ff9b:1::", 48, [
    reading("read as /48", [...span(48, 16), ...span(72, 16)]),
    reading("read as /56", [...span(56, 8), ...span(72, 24)]),
    reading("read as /64", span(72, 32)),
    reading("read as /96", span(96, 32)),
  ]),
  // RFC 3056: a stack with a 6to4 interface sends to the router in bits 16-47.
  prefixEmbedding("a 6to4 address", "2002::", 16, [reading("", span(16, 32))]),
  // RFC 4380 §4: the Teredo server in bits 32-63, the client's public address inverted in bits 96-127.
  prefixEmbedding("a Teredo address", "2001::", 32, [
    reading("server", span(32, 32)),
    reading("client, inverted", span(96, 32), true),
  ]),
  // RFC 5214 §6.1: an ISATAP interface identifier (0000:5efe or, u bit set, 0200:5efe; the g bit read
  // either way) after any /64 prefix; an ISATAP interface sends to the address in bits 96-127.
  Object.freeze({
    what: "an ISATAP address",
    where: "interface identifier 0:5efe",
    mask: Object.freeze([0, 0, 0, 0, 0xfcff, 0xffff, 0, 0]),
    value: Object.freeze([0, 0, 0, 0, 0, 0x5efe, 0, 0]),
    readings: Object.freeze([reading("", span(96, 32))]),
  }),
]) as readonly Ipv4Embedding[];

/**
 * Why an address is always denied: an always-denied range it falls in, or — for an IPv6 form that
 * carries an IPv4 address — one the carried address falls in.
 */
export interface Denial {
  /** The most specific always-denied range that holds the address (or the IPv4 address it carries). */
  readonly range: DeniedRange;
  /** For a carried IPv4 address: the form, the position it was read at, and the address. */
  readonly carried?: {
    readonly embedding: Ipv4Embedding;
    readonly reading: Ipv4Reading;
    readonly ipv4: string;
  };
  /** The words of the audit detail: `loopback`, `a NAT64 address (64:ff9b::/96) carrying 127.0.0.1, which is loopback`. */
  readonly what: string;
}

interface CompiledRange {
  readonly range: DeniedRange;
  /** IPv4: the network as a number. */
  readonly value: number;
  /** IPv6: the network's groups and the prefix mask. */
  readonly groups: readonly number[];
  readonly mask: readonly number[];
}

// Most specific first, so the first range that holds an address is the one that names it.
const compiledRanges: readonly CompiledRange[] = [...alwaysDeniedRanges]
  .sort((left, right) => right.prefix - left.prefix)
  .map((range) =>
    range.family === "ipv4"
      ? { range, value: ipv4Value(range.network), groups: [], mask: [] }
      : { range, value: 0, groups: ipv6Groups(range.network), mask: prefixMask(range.prefix) },
  );

/**
 * Every reason an address is always denied; empty when it is not. At most one per way of reading the
 * address: the most specific denied range that holds it, then, for each position an IPv6 form carries
 * an IPv4 address at, the most specific denied range that holds that address.
 *
 * @example
 * alwaysDenied({ kind: "ipv6", address: "64:ff9b::7f00:1" })[0]?.what;
 * // "a NAT64 address (64:ff9b::/96) carrying 127.0.0.1, which is loopback"
 */
export function alwaysDenied(host: NormalizedHost): readonly Denial[] {
  if (host.kind === "name") return [];
  if (host.kind === "ipv4") {
    const range = ipv4RangeOf(ipv4Value(host.address), 32);
    return range === undefined ? [] : [{ range, what: range.what }];
  }
  const groups = ipv6Groups(host.address);
  const embeddings = ipv4Embeddings.filter((embedding) => carries(embedding, groups, 128));
  const denials: Denial[] = [];
  const direct = ipv6RangeOf(groups, 128, yieldBelow(embeddings));
  if (direct !== undefined) denials.push({ range: direct, what: direct.what });
  for (const embedding of embeddings) {
    for (const position of embedding.readings) {
      const value = readIpv4(groups, position);
      const range = ipv4RangeOf(value, 32);
      if (range === undefined) continue;
      const ipv4 = ipv4Text(value);
      const where = position.what === "" ? embedding.where : `${embedding.where}, ${position.what}`;
      denials.push({
        range,
        carried: { embedding, reading: position, ipv4 },
        what: `${embedding.what} (${where}) carrying ${ipv4}, which is ${range.what}`,
      });
    }
  }
  return denials;
}

/** The first reason an address is always denied ({@link alwaysDenied}), or `undefined`. */
export function alwaysDeniedRange(host: NormalizedHost): DeniedRange | undefined {
  return alwaysDenied(host)[0]?.range;
}

/**
 * Whether a destination range (`network/prefix`) names a denial explicitly: read the way the denial read
 * the address, the whole range lies inside the denied range. `[64:ff9b::7f00:0/104]` names the NAT64
 * form of loopback; `[64:ff9b::/96]`, `0.0.0.0/0` and `127.0.0.1` (another host: the translator's) do not.
 */
export function rangeNamesDenial(
  network: { readonly address: string; readonly prefix: number; readonly family: IpFamily },
  denial: Denial,
): boolean {
  const { range, carried } = denial;
  if (carried === undefined) {
    if (network.family !== range.family || network.prefix < range.prefix) return false;
    return range.family === "ipv4"
      ? ipv4Inside(ipv4Value(network.address), ipv4Value(range.network), range.prefix)
      : ipv6Inside(ipv6Groups(network.address), ipv6Groups(range.network), prefixMask(range.prefix));
  }
  if (network.family !== "ipv6") return false;
  const groups = ipv6Groups(network.address);
  if (!carries(carried.embedding, groups, network.prefix)) return false;
  const image = imageOf(groups, network.prefix, carried.reading);
  return image.prefix >= range.prefix && ipv4Inside(image.value, ipv4Value(range.network), range.prefix);
}

/**
 * Whether a whole range (`network/prefix`) lies inside one always-denied range, read some way: directly,
 * or — for an IPv6 range inside a form that carries IPv4 — through the addresses it carries
 * (`[64:ff9b::7f00:0/104]` carries 127.0.0.0/8 only). Such a destination names those addresses explicitly.
 */
export function insideDeniedRange(network: string, prefix: number, family: IpFamily): boolean {
  if (family === "ipv4") return ipv4RangeOf(ipv4Value(network), prefix) !== undefined;
  const groups = ipv6Groups(network);
  const embeddings = ipv4Embeddings.filter((embedding) => carries(embedding, groups, prefix));
  if (ipv6RangeOf(groups, prefix, yieldBelow(embeddings)) !== undefined) return true;
  return embeddings.some((embedding) =>
    embedding.readings.some((position) => {
      const image = imageOf(groups, prefix, position);
      return ipv4RangeOf(image.value, image.prefix) !== undefined;
    }),
  );
}

/** The most specific denied IPv4 range holding the whole range `value/prefix`. */
function ipv4RangeOf(value: number, prefix: number): DeniedRange | undefined {
  for (const compiled of compiledRanges) {
    const { range } = compiled;
    if (
      range.family === "ipv4" &&
      prefix >= range.prefix &&
      ipv4Inside(value, compiled.value, range.prefix)
    ) {
      return range;
    }
  }
  return undefined;
}

/** The most specific denied IPv6 range holding the whole range `groups/prefix`, no shorter than `shortest`. */
function ipv6RangeOf(groups: readonly number[], prefix: number, shortest: number): DeniedRange | undefined {
  for (const compiled of compiledRanges) {
    const { range } = compiled;
    if (
      range.family === "ipv6" &&
      range.prefix >= shortest &&
      prefix >= range.prefix &&
      ipv6Inside(groups, compiled.groups, compiled.mask)
    ) {
      return range;
    }
  }
  return undefined;
}

/** Denied ranges less specific than a prefix form holding the address yield to it. */
function yieldBelow(embeddings: readonly Ipv4Embedding[]): number {
  return Math.max(0, ...embeddings.map((embedding) => embedding.prefix ?? 0));
}

/** Whether every address of `groups/prefix` is of this form: the bits it tests lie in the prefix and match. */
function carries(embedding: Ipv4Embedding, groups: readonly number[], prefix: number): boolean {
  const within = prefixMask(prefix);
  return embedding.mask.every(
    (mask, index) => (mask & ~within[index]!) === 0 && (groups[index]! & mask) === embedding.value[index],
  );
}

function readIpv4(groups: readonly number[], position: Ipv4Reading): number {
  let value = 0;
  for (const index of position.bits) value = value * 2 + ((groups[index >> 4]! >> (15 - (index & 15))) & 1);
  return position.inverted ? 0xffffffff - value : value;
}

/** The IPv4 range an IPv6 range carries at one position: the bits inside its prefix are fixed, the rest free. */
function imageOf(
  groups: readonly number[],
  prefix: number,
  position: Ipv4Reading,
): { value: number; prefix: number } {
  const fixed = position.bits.filter((index) => index < prefix).length;
  const size = 2 ** (32 - fixed);
  return { value: Math.floor(readIpv4(groups, position) / size) * size, prefix: fixed };
}

function ipv4Value(address: string): number {
  return address.split(".").reduce((total, octet) => total * 256 + Number(octet), 0);
}

function ipv4Text(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

function ipv4Inside(value: number, network: number, prefix: number): boolean {
  const size = 2 ** (32 - prefix);
  return Math.floor(value / size) === Math.floor(network / size);
}

function ipv6Inside(groups: readonly number[], network: readonly number[], mask: readonly number[]): boolean {
  return mask.every((bits, index) => (groups[index]! & bits) === (network[index]! & bits));
}

function prefixMask(prefix: number): readonly number[] {
  return prefixMasks[prefix]!;
}
