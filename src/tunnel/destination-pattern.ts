import { BlockList } from "node:net";
import {
  type IpFamily,
  insideDeniedRange,
  ipv6Groups,
  type NormalizedHost,
  normalizeHost,
} from "./ip-address.js";

/**
 * One compiled entry of a tunnel's `destinations`. Frozen data plus one pure `matches` function (the
 * compiled form of the pattern, built once when the configuration is compiled).
 */
export interface DestinationPattern {
  /** The pattern as written, for `explain` and messages. */
  readonly text: string;
  /** `name`: one host name. `glob`: `*` / `**` on host names. `address`: an IP address or CIDR range. */
  readonly kind: "name" | "glob" | "address";
  /** Inclusive port range. */
  readonly ports: { readonly from: number; readonly to: number };
  /** For `address`: the network in canonical form, its prefix length and family. */
  readonly network?: { readonly address: string; readonly prefix: number; readonly family: IpFamily };
  /**
   * For `address`: the whole range lies inside an always-denied range (`127.0.0.1`, `169.254.0.0/16`),
   * read directly or through the IPv4 addresses an IPv6 range carries (`[64:ff9b::7f00:0/104]` carries
   * 127/8 only), so it names those addresses explicitly and may reach them — each address only when the
   * pattern names every reason it is denied (`tunnelAdmitsAddress`). A wider range (`0.0.0.0/0`,
   * `[64:ff9b::/96]`) that merely contains them does not.
   */
  readonly explicit: boolean;
  /** Whether a normalised host and port fall under this pattern. Names never match address patterns. */
  matches(host: NormalizedHost, port: number): boolean;
}

/** A pattern that could not be compiled: the message and what to write instead. */
export interface DestinationProblem {
  readonly message: string;
  readonly fix?: string;
}

const maxPort = 65_535;

/**
 * Compiles a destination as written under `tunnels[].destinations`:
 *
 * - `db.internal:5432` — one host name (case-insensitive, a trailing dot ignored);
 * - `*.build.internal:443` — a glob on host names: `*` is any run of characters within one label,
 *   `**` any run across labels; the last label must be literal, so a glob never means "any host";
 * - `10.20.0.5:22`, `10.20.0.0/16:22`, `[fd00::5]:22`, `[fd00::/64]:22` — an address or CIDR range;
 * - the port is required: `5432`, or a range `8000-8099`.
 *
 * IP addresses must be written in their usual dotted or IPv6 form; numeric spellings (`2130706433`,
 * `0x7f.1`) are refused with the canonical form as the fix, so configuration reads as what it means.
 *
 * @example
 * const compiled = parseDestinationPattern("10.20.0.0/16:22");
 * if ("pattern" in compiled) compiled.pattern.matches({ kind: "ipv4", address: "10.20.1.9" }, 22); // true
 */
export function parseDestinationPattern(
  text: string,
): { pattern: DestinationPattern } | { problem: DestinationProblem } {
  const example = 'write "db.internal:5432", "*.build.internal:443", "10.20.0.0/16:22" or "[fd00::/64]:22"';
  const split = /^(.*):(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (split === null) {
    return {
      problem: {
        message: "must be host:port (the port, or a port range like 8000-8099, is required)",
        fix: example,
      },
    };
  }
  const from = Number(split[2]);
  const to = split[3] === undefined ? from : Number(split[3]);
  if (from < 1 || to > maxPort || from > to) {
    return {
      problem: {
        message: "the port must be from 1 to 65535, and a range must be written low-high",
        fix: `write ${JSON.stringify(`${split[1]}:${Math.min(Math.max(from, 1), maxPort)}`)}`,
      },
    };
  }
  const ports = Object.freeze({ from, to });
  const hostText = split[1]!;
  if (hostText.length === 0) return { problem: { message: "the host is missing", fix: example } };
  if (hostText.includes("/")) return cidrPattern(text, hostText, ports);
  if (hostText.includes("*")) return globPattern(text, hostText, ports);
  if (hostText.includes(":") && !hostText.startsWith("[")) {
    return {
      problem: {
        message: "an IPv6 address must be written in brackets",
        fix: `write ${JSON.stringify(`[${hostText}]:${split[2]}`)}`,
      },
    };
  }
  const host = normalizeHost(hostText);
  if (host === undefined) {
    return {
      problem: {
        message: hostText.includes("%")
          ? "IPv6 zone ids (%…) are not supported"
          : "is not a host name or IP address",
        fix: example,
      },
    };
  }
  if (host.kind === "name") {
    return { pattern: namePattern(text, host.name, ports) };
  }
  if (hostText.startsWith("[") && host.kind === "ipv4") {
    return {
      problem: {
        message: `is an IPv4-mapped address; write the IPv4 address ${host.address}`,
        fix: `write ${JSON.stringify(`${host.address}:${portText(ports)}`)}`,
      },
    };
  }
  if (host.kind === "ipv4" && hostText !== host.address) {
    return {
      problem: {
        message: `is a numeric spelling of ${host.address}; write the address in its usual form`,
        fix: `write ${JSON.stringify(`${host.address}:${portText(ports)}`)}`,
      },
    };
  }
  const prefix = host.kind === "ipv4" ? 32 : 128;
  return { pattern: addressPattern(text, host.address, prefix, host.kind, ports) };
}

function portText(ports: { from: number; to: number }): string {
  return ports.from === ports.to ? String(ports.from) : `${ports.from}-${ports.to}`;
}

function inPorts(ports: { from: number; to: number }, port: number): boolean {
  return port >= ports.from && port <= ports.to;
}

function namePattern(text: string, name: string, ports: DestinationPattern["ports"]): DestinationPattern {
  return {
    text,
    kind: "name",
    ports,
    explicit: false,
    matches: (host, port) => host.kind === "name" && host.name === name && inPorts(ports, port),
  };
}

function globPattern(
  text: string,
  hostText: string,
  ports: DestinationPattern["ports"],
): { pattern: DestinationPattern } | { problem: DestinationProblem } {
  const glob = (hostText.endsWith(".") ? hostText.slice(0, -1) : hostText).toLowerCase();
  const labels = glob.split(".");
  const fix = 'write a glob under a literal domain, e.g. "*.build.internal:443"';
  if (!/^[a-z0-9*_.-]+$/.test(glob) || labels.some((label) => label.length === 0 || label.length > 63)) {
    return { problem: { message: "a host glob may use letters, digits, '-', '_', '.' and '*'", fix } };
  }
  if (labels.length < 2 || labels[labels.length - 1]!.includes("*") || /\*{3,}/.test(glob)) {
    return {
      problem: {
        message:
          "a host glob must end in a literal domain (its last label without *), so it can never mean any host",
        fix,
      },
    };
  }
  // Built from escaped literal text plus two fixed wildcards; host names are at most 253 characters.
  const source = glob
    .split(/(\*\*|\*)/)
    .map((part) => (part === "**" ? ".*" : part === "*" ? "[^.]*" : part.replace(/[.-]/g, "\\$&")))
    .join("");
  const regex = new RegExp(`^${source}$`);
  return {
    pattern: {
      text,
      kind: "glob",
      ports,
      explicit: false,
      matches: (host, port) => host.kind === "name" && inPorts(ports, port) && regex.test(host.name),
    },
  };
}

function cidrPattern(
  text: string,
  hostText: string,
  ports: DestinationPattern["ports"],
): { pattern: DestinationPattern } | { problem: DestinationProblem } {
  const bracketed = /^\[(.+)\/(\d{1,3})\]$/.exec(hostText);
  const bare = /^([0-9.]+)\/(\d{1,2})$/.exec(hostText);
  const parts = bracketed ?? bare;
  if (parts === null) {
    return {
      problem: {
        message: "a CIDR range is a.b.c.d/len, or [ipv6/len] in brackets",
        fix: 'write "10.20.0.0/16:22" or "[fd00::/64]:22"',
      },
    };
  }
  const host = normalizeHost(bracketed === null ? parts[1]! : `[${parts[1]}]`);
  const prefix = Number(parts[2]);
  const family = host?.kind;
  if (host === undefined || family === "name" || family === undefined) {
    return { problem: { message: "the network of a CIDR range is not an IP address" } };
  }
  if (bracketed !== null && family === "ipv4") {
    return { problem: { message: "write an IPv4 range without brackets (and without ::ffff:)" } };
  }
  const address = host.address;
  if (family === "ipv4" && address !== parts[1]) {
    return {
      problem: {
        message: `the network is a numeric spelling of ${address}; write the address in its usual form`,
        fix: `write ${JSON.stringify(`${address}/${prefix}:${portText(ports)}`)}`,
      },
    };
  }
  const bits = family === "ipv4" ? 32 : 128;
  if (prefix > bits) return { problem: { message: `the prefix length must be at most ${bits}` } };
  const network = networkAddress(address, prefix, family);
  if (network !== address) {
    const written = family === "ipv4" ? `${network}/${prefix}` : `[${network}/${prefix}]`;
    return {
      problem: {
        message: `has host bits set: the network of /${prefix} is ${network}`,
        fix: `write ${JSON.stringify(`${written}:${portText(ports)}`)}`,
      },
    };
  }
  return { pattern: addressPattern(text, address, prefix, family, ports) };
}

function addressPattern(
  text: string,
  address: string,
  prefix: number,
  family: IpFamily,
  ports: DestinationPattern["ports"],
): DestinationPattern {
  const list = new BlockList();
  list.addSubnet(address, prefix, family);
  return {
    text,
    kind: "address",
    ports,
    network: Object.freeze({ address, prefix, family }),
    explicit: insideDeniedRange(address, prefix, family),
    matches: (host, port) => host.kind === family && inPorts(ports, port) && list.check(host.address, family),
  };
}

/** The network address of `address/prefix` in canonical form (host bits cleared). */
function networkAddress(address: string, prefix: number, family: IpFamily): string {
  if (family === "ipv4") {
    const value = address.split(".").reduce((total, octet) => total * 256 + Number(octet), 0);
    const size = 2 ** (32 - prefix);
    const network = Math.floor(value / size) * size;
    return [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join(".");
  }
  const groups = normalizeHost(`[${address}]`);
  if (groups === undefined || groups.kind !== "ipv6") return address;
  const expanded = ipv6Groups(groups.address);
  const cleared = expanded.map((group, index) => {
    const keep = Math.max(0, Math.min(16, prefix - index * 16));
    return keep === 0 ? 0 : group & ((0xffff << (16 - keep)) & 0xffff);
  });
  const canonical = normalizeHost(`[${cleared.map((group) => group.toString(16)).join(":")}]`);
  return canonical !== undefined && canonical.kind !== "name" ? canonical.address : address;
}
