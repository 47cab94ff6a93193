import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normalizeAddress } from "../../src/tunnel/index.js";
import { propertySettings } from "../helpers/property.js";
import {
  carriedIpv4,
  explicitDestination,
  ipv4Denied,
  ipv4Number,
  ipv4Rows,
  ipv4Text,
  ipv6Denied,
  ipv6Plain,
  isIsatap,
  judge,
  type SpecialRow,
  setBits,
  tunnelOf,
  wide,
} from "./special-purpose.js";

/**
 * Issue 12, class 3: IPv6 forms that embed IPv4. Addresses are generated from the special-purpose table
 * (fixtures/special-purpose-addresses.yaml), embedded in every IPv6 form that carries an IPv4 address and
 * spelled every way the WHATWG URL parser accepts; the expected decision comes from the table alone.
 * The tunnel `wide` admits a name pattern (`*.svc.internal`) and every address (0.0.0.0/0, ::/0) on port
 * 443, so each refusal is the always-denied rule at work.
 */

// ---- addresses ----

function sampleOf(row: SpecialRow): fc.Arbitrary<number> {
  return fc
    .integer({ min: 0, max: 2 ** (32 - row.length) - 1 })
    .map((offset) => (row.network as number) + offset);
}

const famous = ["127.0.0.1", "169.254.169.254", "0.0.0.0", "100.100.100.200", "168.63.129.16", "192.0.0.192"];

/** An always-denied IPv4 address: a well-known target, or any address of a denied row of the table. */
const deniedIpv4 = fc
  .oneof(
    fc.constantFrom(...famous.map(ipv4Number)),
    fc.constantFrom(...ipv4Rows.filter((row) => row.decision === "denied")).chain(sampleOf),
  )
  .filter(ipv4Denied);

/** An IPv4 address a tunnel may reach: private-use (where internal services live) or public. */
const benignIpv4 = fc
  .oneof(
    fc.constantFrom(...ipv4Rows.filter((row) => row.decision === "reachable")).chain(sampleOf),
    fc.integer({ min: 0, max: 0xffffffff }),
  )
  .filter((value) => !ipv4Denied(value));

/** Bits an attacker or an operator chooses freely (prefix bits, suffix, Teredo flags and ports). */
const fill = fc.array(fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constant(0x0a0a), fc.constant(0)), {
  minLength: 8,
  maxLength: 8,
});

/** Where RFC 6052 puts the IPv4 address for each prefix length an operator may carve from 64:ff9b:1::/48. */
const rfc6052: Record<number, [number, number][]> = {
  48: [
    [48, 16],
    [72, 16],
  ],
  56: [
    [56, 8],
    [72, 24],
  ],
  64: [[72, 32]],
  96: [[96, 32]],
};

const forms = [
  "ipv4-translated",
  "nat64",
  "local-use/48",
  "local-use/56",
  "local-use/64",
  "local-use/96",
  "teredo-server",
  "teredo-client",
  "6to4",
  "isatap",
  "isatap-u",
  "ipv4-mapped",
  "ipv4-compatible",
] as const;
type Form = (typeof forms)[number];

/** The eight groups of `x` embedded in `form`, other bits from `free` (Teredo's other address: `other`). */
function embed(form: Form, x: number, free: readonly number[], other?: number): number[] {
  const high = x >>> 16;
  const low = x & 0xffff;
  const groups = [...free];
  switch (form) {
    case "ipv4-mapped":
      return [0, 0, 0, 0, 0, 0xffff, high, low];
    case "ipv4-translated":
      return [0, 0, 0, 0, 0xffff, 0, high, low];
    case "ipv4-compatible":
      return [0, 0, 0, 0, 0, 0, high, low];
    case "nat64":
      return [0x64, 0xff9b, 0, 0, 0, 0, high, low];
    case "6to4":
      groups[0] = 0x2002;
      setBits(groups, 16, 32, x);
      return groups;
    case "teredo-server":
    case "teredo-client":
      groups[0] = 0x2001;
      groups[1] = 0;
      if (form === "teredo-server") {
        setBits(groups, 32, 32, x);
        if (other !== undefined) setBits(groups, 96, 32, 0xffffffff - other);
      } else {
        setBits(groups, 96, 32, 0xffffffff - x);
        if (other !== undefined) setBits(groups, 32, 32, other);
      }
      return groups;
    case "isatap":
    case "isatap-u":
      groups[4] = form === "isatap" ? 0 : 0x200;
      groups[5] = 0x5efe;
      groups[6] = high;
      groups[7] = low;
      return groups;
    default: {
      const length = Number(form.slice("local-use/".length));
      groups[0] = 0x64;
      groups[1] = 0xff9b;
      groups[2] = 1;
      let rest = x;
      let bits = 32;
      for (const [start, size] of rfc6052[length]!) {
        bits -= size;
        setBits(groups, start, size, Math.floor(rest / 2 ** bits));
        rest %= 2 ** bits;
      }
      return groups;
    }
  }
}

// ---- spellings ----

const ipv6Spelling = fc.record({
  dotted: fc.boolean(),
  compress: fc.nat({ max: 40 }),
  pad: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
  upper: fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 8, maxLength: 8 }),
});
type Ipv6Spelling = typeof ipv6Spelling extends fc.Arbitrary<infer T> ? T : never;

/**
 * The address written one of the ways the URL parser accepts: `::` over any run of zero groups (or none),
 * upper or lower case per digit, leading zeros up to four digits, the last 32 bits as a dotted quad.
 */
function spellIpv6(groups: readonly number[], choice: Ipv6Spelling): string {
  const hexCount = choice.dotted ? 6 : 8;
  const runs: [number, number][] = [];
  for (let start = 0; start < hexCount; start += 1) {
    for (let end = start + 1; end <= hexCount && groups[end - 1] === 0; end += 1) runs.push([start, end]);
  }
  const longest = runs.reduce<[number, number] | undefined>(
    (best, run) => (best === undefined || run[1] - run[0] > best[1] - best[0] ? run : best),
    undefined,
  );
  const options = [longest, undefined, ...runs];
  const run = options[choice.compress % options.length];
  const group = (index: number) => {
    const hex = groups[index]!.toString(16);
    const padded = hex.padStart(Math.min(4, hex.length + choice.pad[index]!), "0");
    return [...padded]
      .map((char, at) => ((choice.upper[index]! >> at) & 1 ? char.toUpperCase() : char))
      .join("");
  };
  const span = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, offset) => group(from + offset)).join(":");
  let text = run === undefined ? span(0, hexCount) : `${span(0, run[0])}::${span(run[1], hexCount)}`;
  if (choice.dotted) {
    const quad = `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
    text = run !== undefined && run[1] === hexCount ? `${text}${quad}` : `${text}:${quad}`;
  }
  return text;
}

const ipv4Spelling = fc.record({
  parts: fc.integer({ min: 1, max: 4 }),
  radix: fc.array(fc.constantFrom("decimal", "octal", "hex"), { minLength: 4, maxLength: 4 }),
  zeros: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 }),
  upper: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
  trailingDot: fc.boolean(),
});
type Ipv4Spelling = typeof ipv4Spelling extends fc.Arbitrary<infer T> ? T : never;

/** An IPv4 address in the WHATWG forms: one to four parts, each decimal, octal (0…) or hex (0x…). */
function spellIpv4(value: number, choice: Ipv4Spelling): string {
  const parts: number[] = [];
  for (let index = 0; index < choice.parts - 1; index += 1) parts.push((value >>> (24 - 8 * index)) & 0xff);
  parts.push(value % 2 ** (32 - 8 * (choice.parts - 1)));
  const written = parts.map((part, index) => {
    const zeros = "0".repeat(choice.zeros[index]!);
    if (choice.radix[index] === "octal") return `0${zeros}${part.toString(8)}`;
    if (choice.radix[index] === "decimal") return String(part);
    const digits = part.toString(16);
    return choice.upper[index] ? `0X${zeros}${digits.toUpperCase()}` : `0x${zeros}${digits}`;
  });
  return `${written.join(".")}${choice.trailingDot ? "." : ""}`;
}

// ---- the gateway's decision ----

/** Asks the gateway about `authority` through `wide` alone, and through `wide` plus a tunnel naming it. */
function decide(authority: string, canonical: string) {
  const alone = judge([wide], authority);
  const named = judge([wide, tunnelOf("explicit", [explicitDestination(canonical)])], authority);
  return { alone, named };
}

const admitted = { direct: ["wide"], byName: ["wide"] };
const refused = { direct: [], byName: [] };
const explicitOnly = { direct: ["explicit"], byName: ["explicit"] };

describe("IPv6 forms that embed an always-denied IPv4 address", () => {
  // Every IPv6 form carrying an always-denied IPv4 address, in every spelling, is refused through a name pattern and ::/0, and reached only when a destination names it.
  it("refuses each one, in every spelling, unless a destination names it explicitly", () => {
    fc.assert(
      fc.property(fc.constantFrom(...forms), deniedIpv4, fill, ipv6Spelling, (form, x, free, spelling) => {
        const groups = embed(form, x, free);
        const written = spellIpv6(groups, spelling);
        const { alone, named } = decide(`[${written}]:443`, ipv6Plain(groups));
        expect(alone.host).toEqual(normalizeAddress(ipv6Plain(groups)));
        expect({ direct: alone.direct, byName: alone.byName }).toEqual(refused);
        expect(alone.refusal).toContain("always denied unless a destination names it explicitly");
        expect({ direct: named.direct, byName: named.byName }).toEqual(explicitOnly);
      }),
      propertySettings(3_000),
    );
  });
});

describe("IPv4 spellings", () => {
  // Every spelling the WHATWG URL parser accepts (decimal, octal, hex, one to four parts, trailing dot) of an always-denied IPv4 address is refused, and reached only when a destination names it.
  it("refuses every numeric spelling of an always-denied address unless a destination names it", () => {
    fc.assert(
      fc.property(deniedIpv4, ipv4Spelling, (x, spelling) => {
        const written = spellIpv4(x, spelling);
        const { alone, named } = decide(`${written}:443`, ipv4Text(x));
        expect(alone.host).toEqual({ kind: "ipv4", address: ipv4Text(x) });
        expect({ direct: alone.direct, byName: alone.byName }).toEqual(refused);
        expect({ direct: named.direct, byName: named.byName }).toEqual(explicitOnly);
      }),
      propertySettings(2_000),
    );
  });
});

describe("the deny twin: IPv6 forms that embed an allowed IPv4 address", () => {
  const twinForms = forms.filter((form) => form !== "ipv4-compatible" && form !== "teredo-client");
  /** A prefix for ISATAP twins that no row of the table covers (global unicast, or unique-local). */
  const isatapPrefix = fc.tuple(
    fc.oneof(fc.integer({ min: 0x2400, max: 0x2fff }), fc.integer({ min: 0xfd00, max: 0xfdff })),
    fc.integer({ min: 0, max: 0xffff }),
  );

  // An IPv6 form carrying only allowed IPv4 addresses is judged exactly as those IPv4 addresses are: admitted through the name pattern and ::/0 (for local-use NAT64, exactly when every RFC 6052 reading is allowed).
  it("admits it when every IPv4 address it carries is allowed", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...twinForms),
        benignIpv4,
        benignIpv4,
        fill,
        isatapPrefix,
        ipv6Spelling,
        (form, x, other, free, [first, second], spelling) => {
          const groups = embed(form, x, free, other);
          if (form.startsWith("isatap")) [groups[0], groups[1]] = [first, second];
          // Free bits that happen to spell an ISATAP identifier would carry a third address: keep them out.
          else if (isIsatap(groups) && !form.startsWith("local-use")) groups[5] = 0x5eff;
          const carried = carriedIpv4(groups);
          const expectAdmitted = !ipv6Denied(groups);
          // The twin is the point: outside local-use NAT64, every address carried is x (or Teredo's other).
          if (!form.startsWith("local-use")) {
            expect(carried.every((value) => value === x || value === other)).toBe(true);
            expect(expectAdmitted).toBe(true);
          }
          const written = spellIpv6(groups, spelling);
          const { alone } = decide(`[${written}]:443`, ipv6Plain(groups));
          expect({ direct: alone.direct, byName: alone.byName }).toEqual(expectAdmitted ? admitted : refused);
        },
      ),
      propertySettings(3_000),
    );
  });
});
