import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { compileConfigText } from "../../src/config/index.js";
import {
  type CompiledTunnel,
  candidateTunnels,
  checkAddresses,
  normalizeAddress,
  parseAuthority,
  parseDestinationPattern,
  type TunnelTarget,
} from "../../src/tunnel/index.js";

/**
 * The special-purpose address table (fixtures/special-purpose-addresses.yaml) and an oracle built from it
 * alone, so the tests judge src/tunnel/ip-address.ts against the registries rather than against itself.
 * IPv4 addresses are unsigned 32-bit numbers, IPv6 addresses eight 16-bit groups.
 */

export type Decision = "denied" | "reachable" | "embeds-ipv4";

export interface SpecialRow {
  readonly family: "ipv4" | "ipv6";
  /** The prefix as the registry writes it, e.g. `64:ff9b:1::/48`. */
  readonly prefix: string;
  readonly network: number | readonly number[];
  readonly length: number;
  readonly name: string;
  readonly rfc: string;
  readonly globallyReachable: boolean | "n/a";
  readonly registry: string;
  readonly decision: Decision;
  readonly audit?: string;
  readonly reason: string;
}

interface RawRow {
  prefix: string;
  name: string;
  rfc: string;
  globally_reachable: boolean | string;
  registry: string;
  decision: Decision;
  audit?: string;
  reason: string;
}

const raw = parse(
  readFileSync(new URL("./fixtures/special-purpose-addresses.yaml", import.meta.url), "utf8"),
) as {
  ipv4: RawRow[];
  ipv6: RawRow[];
};

function toRow(family: "ipv4" | "ipv6", row: RawRow): SpecialRow {
  const [address = "", length = ""] = row.prefix.split("/");
  return Object.freeze({
    family,
    prefix: row.prefix,
    network: family === "ipv4" ? ipv4Number(address) : ipv6Groups(address),
    length: Number(length),
    name: row.name,
    rfc: row.rfc,
    globallyReachable: row.globally_reachable === "n/a" ? "n/a" : row.globally_reachable === true,
    registry: row.registry,
    decision: row.decision,
    ...(row.audit === undefined ? {} : { audit: row.audit }),
    reason: row.reason,
  });
}

export const ipv4Rows: readonly SpecialRow[] = raw.ipv4.map((row) => toRow("ipv4", row));
export const ipv6Rows: readonly SpecialRow[] = raw.ipv6.map((row) => toRow("ipv6", row));

/** `a.b.c.d` as an unsigned 32-bit number. */
export function ipv4Number(text: string): number {
  return text.split(".").reduce((total, octet) => total * 256 + Number(octet), 0);
}

export function ipv4Text(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join(".");
}

/** Eight groups of an IPv6 address written with `::` and an optional dotted tail (test input only). */
export function ipv6Groups(text: string): number[] {
  let body = text;
  let tail: number[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted !== null) {
    const value = ipv4Number(dotted[2]!);
    tail = [value >>> 16, value & 0xffff];
    body = dotted[1]!.endsWith("::") ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const groupsOf = (part: string) =>
    part === "" ? [] : part.split(":").map((group) => Number.parseInt(group, 16));
  const [head = "", rest] = body.split("::");
  const left = groupsOf(head);
  if (rest === undefined) return [...left, ...tail];
  const right = [...groupsOf(rest), ...tail];
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** Plain lower-case hex groups, no compression: every tollgate parser reads it. */
export function ipv6Plain(groups: readonly number[]): string {
  return groups.map((group) => group.toString(16)).join(":");
}

function bit(groups: readonly number[], index: number): number {
  return (groups[index >> 4]! >> (15 - (index & 15))) & 1;
}

export function setBits(groups: number[], start: number, length: number, value: number): void {
  for (let offset = 0; offset < length; offset += 1) {
    const index = start + offset;
    const on = Math.floor(value / 2 ** (length - 1 - offset)) % 2;
    const mask = 1 << (15 - (index & 15));
    groups[index >> 4] = on === 1 ? groups[index >> 4]! | mask : groups[index >> 4]! & ~mask & 0xffff;
  }
}

function readBits(groups: readonly number[], segments: readonly (readonly [number, number])[]): number {
  let value = 0;
  for (const [start, length] of segments) {
    for (let index = start; index < start + length; index += 1) value = value * 2 + bit(groups, index);
  }
  return value;
}

function inRow(row: SpecialRow, address: number | readonly number[]): boolean {
  if (row.family === "ipv4") {
    const size = 2 ** (32 - row.length);
    return Math.floor((address as number) / size) === Math.floor((row.network as number) / size);
  }
  for (let index = 0; index < row.length; index += 1) {
    if (bit(address as number[], index) !== bit(row.network as number[], index)) return false;
  }
  return true;
}

/** The most specific row containing the address: as in the registries, it decides. */
export function ownerRow(
  family: "ipv4" | "ipv6",
  address: number | readonly number[],
): SpecialRow | undefined {
  let best: SpecialRow | undefined;
  for (const row of family === "ipv4" ? ipv4Rows : ipv6Rows) {
    if (inRow(row, address) && (best === undefined || row.length > best.length)) best = row;
  }
  return best;
}

export function ipv4Denied(value: number): boolean {
  return ownerRow("ipv4", value)?.decision === "denied";
}

/** One way an IPv6 address carries an IPv4 address: bit segments (RFC 6052 skips bits 64-71) and inversion. */
interface Layout {
  readonly name: string;
  readonly segments: readonly (readonly [number, number])[];
  readonly inverted?: boolean;
}

const tail: Layout = { name: "bits 96-127", segments: [[96, 32]] };

/** Where each embeds-ipv4 row carries its IPv4 address(es), from the RFCs the table names. */
export const layouts: Readonly<Record<string, readonly Layout[]>> = {
  "::ffff:0:0/96": [tail],
  "::ffff:0:0:0/96": [tail],
  "64:ff9b::/96": [tail],
  "64:ff9b:1::/48": [
    {
      name: "/48",
      segments: [
        [48, 16],
        [72, 16],
      ],
    },
    {
      name: "/56",
      segments: [
        [56, 8],
        [72, 24],
      ],
    },
    { name: "/64", segments: [[72, 32]] },
    { name: "/96", segments: [[96, 32]] },
  ],
  "2002::/16": [{ name: "6to4", segments: [[16, 32]] }],
  "2001::/32": [
    { name: "Teredo server", segments: [[32, 32]] },
    { name: "Teredo client", segments: [[96, 32]], inverted: true },
  ],
};

export function isIsatap(groups: readonly number[]): boolean {
  return (groups[4]! & 0xfcff) === 0 && groups[5] === 0x5efe;
}

/** Every IPv4 address the IPv6 address carries, in the table's terms. */
export function carriedIpv4(groups: readonly number[]): number[] {
  const owner = ownerRow("ipv6", groups);
  const found: number[] = [];
  if (owner?.decision === "embeds-ipv4") {
    for (const layout of layouts[owner.prefix] ?? []) {
      const value = readBits(groups, layout.segments);
      found.push(layout.inverted === true ? 0xffffffff - value : value);
    }
  }
  if (isIsatap(groups)) found.push(readBits(groups, tail.segments));
  return found;
}

/** Whether the table says an IPv6 address is always denied. */
export function ipv6Denied(groups: readonly number[]): boolean {
  if (ownerRow("ipv6", groups)?.decision === "denied") return true;
  return carriedIpv4(groups).some(ipv4Denied);
}

// ---- tunnels, as the gateway compiles them ----

const config = compileConfigText(`issuers:
  - name: gh
    preset: github
    audiences: [tollgate.test]
policies:
  ci: { claims: { repository_owner_id: 65 } }
tunnels:
  - name: wide
    allow: [ci]
    destinations: ["*.svc.internal:443", "0.0.0.0/0:443", "[::/0]:443"]
`);
if (config.config === undefined) throw new Error(JSON.stringify(config.problems));

/** A name pattern and every address on port 443: whatever it refuses, the always-denied rule refused. */
export const wide: CompiledTunnel = config.config.compiledTunnels[0]!;

/** A tunnel with exactly these destinations (same policy and timeouts as `wide`). */
export function tunnelOf(name: string, destinations: readonly string[]): CompiledTunnel {
  return {
    ...wide,
    name,
    destinations: destinations.map((text) => {
      const parsed = parseDestinationPattern(text);
      if (!("pattern" in parsed)) throw new Error(`${text}: ${parsed.problem.message}`);
      return parsed.pattern;
    }),
  };
}

/** The host name a caller asks for; `*.svc.internal` matches it and the (test) resolver answers. */
export const nameTarget: TunnelTarget = parseAuthority("db.svc.internal:443")!;

/** The destination that names one address explicitly, written as an operator would. */
export function explicitDestination(address: string): string {
  const host = normalizeAddress(address);
  if (host === undefined || host.kind === "name") throw new Error(`not an address: ${address}`);
  return host.kind === "ipv4" ? `${host.address}:443` : `[${host.address}]:443`;
}

/** What the gateway decides for a caller asking for `target` directly, and for a name resolving to it. */
export function judge(tunnels: readonly CompiledTunnel[], authority: string) {
  const target = parseAuthority(authority);
  if (target === undefined || target.host.kind === "name")
    throw new Error(`not an address target: ${authority}`);
  const host = target.host;
  const direct = candidateTunnels(tunnels, target).map((tunnel) => tunnel.name);
  const byName = checkAddresses(tunnels, nameTarget, [host]);
  return {
    host,
    direct,
    byName: "checked" in byName ? byName.checked.map((checked) => checked.tunnel.name) : [],
    refusal: "refusal" in byName ? byName.refusal : undefined,
  };
}
