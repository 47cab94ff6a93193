import { describe, expect, it } from "vitest";
import { parseDestinationPattern } from "../../src/tunnel/index.js";
import {
  carriedIpv4,
  ipv4Denied,
  ipv4Number,
  ipv4Rows,
  ipv4Text,
  ipv6Groups,
  ipv6Plain,
  ipv6Rows,
  judge,
  layouts,
  ownerRow,
  type SpecialRow,
  setBits,
  tunnelOf,
  wide,
} from "./special-purpose.js";

/**
 * Every row of fixtures/special-purpose-addresses.yaml (the IANA IPv4 and IPv6 special-purpose registries,
 * plus what tollgate adds) against its recorded decision. `wide` has a name pattern and 0.0.0.0/0 and
 * ::/0 on port 443: "refused" below is the always-denied rule, "admitted" means the name pattern and the
 * broad range reach it.
 */

const refused = { direct: [], byName: [] };
const admitted = { direct: ["wide"], byName: ["wide"] };

function authority(family: "ipv4" | "ipv6", address: string): string {
  return family === "ipv4" ? `${address}:443` : `[${address}]:443`;
}

/** The row's own prefix as a destination: it names the range explicitly. */
function rowDestination(row: SpecialRow): string {
  return row.family === "ipv4" ? `${row.prefix}:443` : `[${row.prefix}]:443`;
}

/** First, last, middle and next-to-edge addresses of the row that no more specific row overrides. */
function ownedSamples(row: SpecialRow): string[] {
  const texts = new Set<string>();
  if (row.family === "ipv4") {
    const size = 2 ** (32 - row.length);
    const network = row.network as number;
    for (const offset of [0, size - 1, Math.floor(size / 2), 1, size - 2]) {
      if (offset >= 0 && offset < size && ownerRow("ipv4", network + offset) === row) {
        texts.add(ipv4Text(network + offset));
      }
    }
  } else {
    const first = [...(row.network as number[])];
    const last = [...first];
    for (let index = row.length; index < 128; index += 1) setBits(last, index, 1, 1);
    const middle = [...first];
    if (row.length < 128) setBits(middle, row.length, 1, 1);
    const next = [...first];
    next[7] = (next[7]! + 1) & 0xffff;
    const before = [...last];
    before[7] = (before[7]! - 1) & 0xffff;
    for (const groups of [first, last, middle, next, before]) {
      if (ownerRow("ipv6", groups) === row) texts.add(ipv6Plain(groups));
    }
  }
  return [...texts];
}

describe.each([...ipv4Rows, ...ipv6Rows].map((row) => [row.prefix, row.name, row] as const))(
  "%s (%s)",
  (_prefix, _name, row) => {
    it("has a decision, and a reason for it", () => {
      expect(["denied", "reachable", "embeds-ipv4"]).toContain(row.decision);
      expect(row.reason.length).toBeGreaterThan(10);
      if (row.decision === "denied") expect(row.audit).toBeDefined();
      if (row.decision === "embeds-ipv4") expect(layouts[row.prefix]).toBeDefined();
      if (row.decision === "reachable") expect(row.registry).not.toBe("tollgate");
    });

    if (row.decision === "denied") {
      it(`is refused (as "${row.audit}") unless a destination names it explicitly`, () => {
        const samples = ownedSamples(row);
        expect(samples.length).toBeGreaterThan(0);
        for (const address of samples) {
          const target = authority(row.family, address);
          const alone = judge([wide], target);
          expect({ direct: alone.direct, byName: alone.byName }).toEqual(refused);
          expect(alone.refusal).toContain(
            `is ${row.audit}: always denied unless a destination names it explicitly`,
          );
          const range = judge([wide, tunnelOf("range", [rowDestination(row)])], target);
          expect({ direct: range.direct, byName: range.byName }).toEqual({
            direct: ["range"],
            byName: ["range"],
          });
          const one = judge([wide, tunnelOf("one", [authority(row.family, address)])], target);
          expect({ direct: one.direct, byName: one.byName }).toEqual({ direct: ["one"], byName: ["one"] });
        }
      });
    }

    if (row.decision === "reachable") {
      it("is reached through a host-name pattern and through an address pattern covering it", () => {
        const samples = ownedSamples(row);
        expect(samples.length).toBeGreaterThan(0);
        for (const address of samples) {
          const target = authority(row.family, address);
          const alone = judge([wide], target);
          expect({ direct: alone.direct, byName: alone.byName }).toEqual(admitted);
          expect(judge([tunnelOf("names", ["*.svc.internal:443"])], target).byName).toEqual(["names"]);
          const range = judge([tunnelOf("range", [rowDestination(row)])], target);
          expect({ direct: range.direct, byName: range.byName }).toEqual({
            direct: ["range"],
            byName: ["range"],
          });
        }
      });
    }
  },
);

/** Addresses of each embedding: one per position carrying a denied address, and one carrying only allowed ones. */
function embedded(prefix: string, carried: number): string[] {
  const base = ipv6Groups(prefix.split("/")[0]!);
  const out: string[] = [];
  if (prefix === "2001::/32") {
    const server = [...base];
    setBits(server, 32, 32, carried);
    setBits(server, 96, 32, 0xffffffff - ipv4Number("10.1.2.3"));
    const client = [...base];
    setBits(client, 32, 32, ipv4Number("10.1.2.3"));
    setBits(client, 96, 32, 0xffffffff - carried);
    return [ipv6Plain(server), ipv6Plain(client)];
  }
  for (const layout of layouts[prefix] ?? []) {
    const groups = [...base];
    let rest = carried;
    let bits = 32;
    for (const [start, size] of layout.segments) {
      bits -= size;
      setBits(groups, start, size, Math.floor(rest / 2 ** bits));
      rest %= 2 ** bits;
    }
    out.push(ipv6Plain(groups));
  }
  return out;
}

const allowedTwins: Record<string, string> = {
  "::ffff:0:0/96": "::ffff:a01:203",
  "::ffff:0:0:0/96": "::ffff:0:a01:203",
  "64:ff9b::/96": "64:ff9b::a01:203",
  // Operator bits 0a0a make every RFC 6052 reading 10.x.x.x; the /96 reading is 10.1.2.3.
  "64:ff9b:1::/48": "64:ff9b:1:a0a:a0a:a0a:a01:203",
  "2001::/32": "2001:0:c0a8:101:0:0:f5fe:fdfc",
  "2002::/16": "2002:a01:203::1",
};

describe.each(
  ipv6Rows.filter((row) => row.decision === "embeds-ipv4").map((row) => [row.prefix, row] as const),
)("%s, judged by the IPv4 addresses it carries", (prefix, row) => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["169.254.169.254", "link-local (cloud metadata)"],
    ["192.0.2.1", "documentation (TEST-NET-1)"],
  ])("refuses every position carrying %s (%s) unless a destination names it", (carried, what) => {
    for (const address of embedded(prefix, ipv4Number(carried))) {
      expect(ownerRow("ipv6", ipv6Groups(address))).toBe(row);
      const alone = judge([wide], `[${address}]:443`);
      expect({ direct: alone.direct, byName: alone.byName }).toEqual(refused);
      expect(alone.refusal).toContain(carried);
      expect(alone.refusal).toContain(what);
      const host = alone.host.kind === "ipv4" ? `${alone.host.address}:443` : `[${alone.host.address}]:443`;
      const one = judge([wide, tunnelOf("one", [host])], `[${address}]:443`);
      expect({ direct: one.direct, byName: one.byName }).toEqual({ direct: ["one"], byName: ["one"] });
    }
  });

  it("admits its twin, which carries only allowed addresses", () => {
    const twin = allowedTwins[prefix]!;
    expect(carriedIpv4(ipv6Groups(twin)).some(ipv4Denied)).toBe(false);
    const alone = judge([wide], `[${twin}]:443`);
    expect({ direct: alone.direct, byName: alone.byName }).toEqual(admitted);
  });
});

describe("ISATAP interface identifiers (RFC 5214), under any prefix", () => {
  it.each([
    ["2400:cb00:1:2:0:5efe:7f00:1", "127.0.0.1"],
    ["2400:cb00:1:2:200:5efe:a9fe:a9fe", "169.254.169.254"],
    ["fd12:3456::5efe:a9fe:a9fe", "169.254.169.254"],
  ])("refuses %s, which carries %s", (address, carried) => {
    const alone = judge([wide], `[${address}]:443`);
    expect({ direct: alone.direct, byName: alone.byName }).toEqual(refused);
    expect(alone.refusal).toContain(carried);
    expect(alone.refusal).toContain("ISATAP");
  });

  it.each(["2400:cb00:1:2:0:5efe:a01:203", "fd12:3456::200:5efe:c0a8:101"])(
    "admits %s, which carries an allowed address (the twin)",
    (address) => {
      const alone = judge([wide], `[${address}]:443`);
      expect({ direct: alone.direct, byName: alone.byName }).toEqual(admitted);
    },
  );
});

describe("what names an embedded form explicitly", () => {
  const explicitOf = (text: string) => {
    const parsed = parseDestinationPattern(text);
    if (!("pattern" in parsed)) throw new Error(parsed.problem.message);
    return parsed.pattern.explicit;
  };

  it("a range whose every address carries addresses of one denied range, read one way", () => {
    expect(explicitOf("[64:ff9b::7f00:0/104]:443")).toBe(true);
    expect(explicitOf("[2002:a9fe::/32]:443")).toBe(true);
    expect(explicitOf("[2001::/23]:443")).toBe(true);
    expect(explicitOf("[64:ff9b::/96]:443")).toBe(false);
    expect(explicitOf("[2001::/32]:443")).toBe(false);
    expect(explicitOf("[2002::/16]:443")).toBe(false);
    expect(explicitOf("[::/0]:443")).toBe(false);
  });

  it("NAT64 of loopback: the /104 admits it, the whole /96 does not but still admits private addresses", () => {
    const loopback = "[64:ff9b::7f00:1]:443";
    expect(judge([tunnelOf("t", ["[64:ff9b::7f00:0/104]:443"])], loopback).direct).toEqual(["t"]);
    expect(judge([tunnelOf("t", ["[64:ff9b::/96]:443"])], loopback).direct).toEqual([]);
    expect(judge([tunnelOf("t", ["[64:ff9b::/96]:443"])], "[64:ff9b::a01:203]:443").direct).toEqual(["t"]);
  });

  it("an IPv4 destination does not admit an IPv6 form carrying it: that is another host, the translator's", () => {
    for (const form of ["64:ff9b::7f00:1", "::ffff:0:7f00:1", "2002:7f00:1::1"]) {
      expect(judge([tunnelOf("t", ["127.0.0.1:443"])], `[${form}]:443`).direct).toEqual([]);
    }
  });

  it("an operator's local-use NAT64 prefix admits its private IPv4 addresses, never its loopback or metadata", () => {
    const operator = tunnelOf("t", ["[64:ff9b:1:a::/96]:443"]);
    // Read as /48 or /64 this address carries 0.10.0.0 and 0.0.0.10 ("this network"), but the destination
    // lies wholly inside those readings' denied range: the operator named it.
    expect(judge([operator], "[64:ff9b:1:a::a01:203]:443").direct).toEqual(["t"]);
    expect(judge([operator], "[64:ff9b:1:a::7f00:1]:443").direct).toEqual([]);
    expect(judge([operator], "[64:ff9b:1:a::a9fe:a9fe]:443").direct).toEqual([]);
  });

  it("the cost of reading every position: a name resolving into a zero local-use prefix is refused", () => {
    // 64:ff9b:1::a01:203 read as /48 carries 0.0.0.0: an operator using that length reaches "this host".
    const alone = judge([wide], "[64:ff9b:1::a01:203]:443");
    expect({ direct: alone.direct, byName: alone.byName }).toEqual(refused);
  });

  it("a denied range with a more specific denied row inside: naming the outer range does not name the inner", () => {
    const outer = tunnelOf("t", ["192.0.0.0/24:443"]);
    expect(judge([outer], "192.0.0.255:443").direct).toEqual(["t"]);
    expect(judge([outer], "192.0.0.192:443").direct).toEqual([]);
    const ietf = tunnelOf("t", ["[2001::/23]:443"]);
    expect(judge([ietf], "[2001:5::1]:443").direct).toEqual(["t"]);
    expect(judge([ietf], "[2001:3::1]:443").direct).toEqual([]);
    expect(judge([ietf], "[2001:0:7f00:1::]:443").direct).toEqual([]);
  });
});
