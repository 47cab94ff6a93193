import { describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";
import {
  type CompiledTunnel,
  candidateTunnels,
  explainConnect,
  normalizeHost,
  parseAuthority,
  parseDestinationPattern,
  proxyCredential,
} from "../../src/tunnel/index.js";

const base = `issuers:
  - name: gh
    preset: github
    audiences: [tollgate.test]
policies:
  ci: { claims: { repository_owner_id: 65 } }
tunnels:
  - name: t
    allow: [ci]
    destinations:
`;

function compile(destinations: string[], extra = "") {
  return compileConfigText(
    `${base}${destinations.map((d) => `      - ${JSON.stringify(d)}\n`).join("")}${extra}`,
  );
}

function pattern(text: string) {
  const parsed = parseDestinationPattern(text);
  if (!("pattern" in parsed)) throw new Error(`${text}: ${parsed.problem.message}`);
  return parsed.pattern;
}

function host(text: string) {
  const parsed = normalizeHost(text);
  if (parsed === undefined) throw new Error(`not a host: ${text}`);
  return parsed;
}

describe("host normalisation", () => {
  it.each([
    ["127.0.0.1", "127.0.0.1"],
    ["0177.0.0.1", "127.0.0.1"],
    ["0x7f.0.0.1", "127.0.0.1"],
    ["0x7F000001", "127.0.0.1"],
    ["2130706433", "127.0.0.1"],
    ["127.1", "127.0.0.1"],
    ["127.0.0.1.", "127.0.0.1"],
    ["[::ffff:127.0.0.1]", "127.0.0.1"],
    ["[::FFFF:7F00:1]", "127.0.0.1"],
    ["[0:0:0:0:0:0:0:1]", "::1"],
    ["[FD00:EC2:0::254]", "fd00:ec2::254"],
  ])("reads %s as the address %s", (text, address) => {
    const parsed = host(text);
    expect(parsed.kind === "name" ? undefined : parsed.address).toBe(address);
  });

  it.each([
    ["DB.Internal.", "db.internal"],
    ["build_7.ci.internal", "build_7.ci.internal"],
  ])("reads %s as the name %s", (text, name) => {
    expect(host(text)).toEqual({ kind: "name", name });
  });

  it.each([
    "",
    "[fe80::1%eth0]",
    "[fe80::1%25eth0]",
    "fe80::1",
    "%31%32%37.0.0.1",
    "user@db.internal",
    "db.internal/x",
    "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ",
    "1.2.3.4.5",
    "a..b",
    "[1.2.3.4]",
  ])("refuses %j", (text) => {
    expect(normalizeHost(text)).toBeUndefined();
  });

  it("parses CONNECT authorities, port required (absolute-form URLs default to 80)", () => {
    expect(parseAuthority("[::1]:22")?.text).toBe("[::1]:22");
    expect(parseAuthority("0x7f.1:5432")?.text).toBe("127.0.0.1:5432");
    expect(parseAuthority("db.internal")).toBeUndefined();
    expect(parseAuthority("db.internal", 80)?.text).toBe("db.internal:80");
    expect(parseAuthority("db.internal:+80")).toBeUndefined();
    expect(parseAuthority("[::1]22")).toBeUndefined();
  });
});

describe("destination patterns", () => {
  it("matches a host name exactly, case-insensitively, on its port only", () => {
    const db = pattern("DB.internal:5432");
    expect(db.matches(host("db.internal."), 5432)).toBe(true);
    expect(db.matches(host("db.internal"), 5433)).toBe(false);
    expect(db.matches(host("db.internal.evil.test"), 5432)).toBe(false);
    expect(db.matches(host("10.0.0.1"), 5432)).toBe(false);
  });

  it("matches * within one label and ** across labels, never the bare domain", () => {
    const one = pattern("*.build.internal:443");
    expect(one.matches(host("a.build.internal"), 443)).toBe(true);
    expect(one.matches(host("a.b.build.internal"), 443)).toBe(false);
    expect(one.matches(host("build.internal"), 443)).toBe(false);
    expect(one.matches(host("a.build.internal.evil.test"), 443)).toBe(false);
    expect(one.matches(host("abuild.internal"), 443)).toBe(false);
    const deep = pattern("**.build.internal:443");
    expect(deep.matches(host("a.b.build.internal"), 443)).toBe(true);
    expect(deep.matches(host("a.b.build.internal"), 444)).toBe(false);
  });

  it("matches CIDR ranges and port ranges, IPv4 and IPv6", () => {
    const v4 = pattern("10.20.0.0/16:8000-8099");
    expect(v4.matches(host("10.20.255.1"), 8050)).toBe(true);
    expect(v4.matches(host("10.21.0.1"), 8050)).toBe(false);
    expect(v4.matches(host("10.20.0.1"), 8100)).toBe(false);
    const v6 = pattern("[fd00:1::/32]:22");
    expect(v6.matches(host("[fd00:1:ffff::5]"), 22)).toBe(true);
    expect(v6.matches(host("[fd00:2::5]"), 22)).toBe(false);
    expect(v6.matches(host("10.20.0.1"), 22)).toBe(false);
  });

  it("marks as explicit only ranges inside an always-denied range", () => {
    expect(pattern("127.0.0.1:22").explicit).toBe(true);
    expect(pattern("169.254.169.254:80").explicit).toBe(true);
    expect(pattern("[fd00:ec2::254]:80").explicit).toBe(true);
    expect(pattern("0.0.0.0/0:22").explicit).toBe(false);
    expect(pattern("[::/0]:22").explicit).toBe(false);
    expect(pattern("10.0.0.0/8:22").explicit).toBe(false);
  });
});

describe("tunnels in the configuration", () => {
  it("compiles destinations, policies and the documented timeout defaults", () => {
    const result = compile(["db.internal:5432", "10.20.0.0/16:22"]);
    expect(result.problems).toEqual([]);
    const tunnel = result.config!.compiledTunnels[0]!;
    expect(tunnel).toMatchObject({
      name: "t",
      idleTimeoutMs: 600_000,
      maxLifetimeMs: 21_600_000,
      connectTimeoutMs: 10_000,
    });
    expect(tunnel.destinations.map((d) => [d.kind, d.text])).toEqual([
      ["name", "db.internal:5432"],
      ["address", "10.20.0.0/16:22"],
    ]);
    expect(tunnel.access.allow.map((policy) => policy.name)).toEqual(["ci"]);
    expect(() => (tunnel.destinations as unknown[]).push({})).toThrow(TypeError);
  });

  it("reads idle_timeout, max_lifetime and connect_timeout", () => {
    const result = compile(
      ["db.internal:5432"],
      "    idle_timeout: 30s\n    max_lifetime: 2h\n    connect_timeout: 1500ms\n",
    );
    expect(result.problems).toEqual([]);
    expect(result.config!.compiledTunnels[0]).toMatchObject({
      idleTimeoutMs: 30_000,
      maxLifetimeMs: 7_200_000,
      connectTimeoutMs: 1_500,
    });
  });

  it.each([
    ["db.internal", "the port", undefined],
    ["db.internal:0", "from 1 to 65535", 'write "db.internal:1"'],
    ["db.internal:9000-8000", "low-high", 'write "db.internal:9000"'],
    ["10.20.1.0/16:22", "host bits", 'write "10.20.0.0/16:22"'],
    ["0177.0.0.1:22", "numeric spelling of 127.0.0.1", 'write "127.0.0.1:22"'],
    ["2130706433:22", "numeric spelling of 127.0.0.1", 'write "127.0.0.1:22"'],
    ["fe80::1:22", "brackets", 'write "[fe80::1]:22"'],
    ["[fe80::1%eth0]:22", "zone", undefined],
    ["[::ffff:10.0.0.1]:22", "IPv4-mapped", 'write "10.0.0.1:22"'],
    ["*:22", "literal domain", undefined],
    ["**:443", "literal domain", undefined],
    ["build.*:443", "literal domain", undefined],
    ["10.0.0.0/33:22", "at most 32", undefined],
  ])("reports %j with its path, line and fix", (text, words, fix) => {
    const result = compile(["db.internal:5432", text]);
    expect(result.config).toBeUndefined();
    const problem = result.problems.find((candidate) => candidate.path === "tunnels[0].destinations[1]");
    expect(problem?.message).toContain(words);
    expect(problem?.line).toBe(12);
    if (fix !== undefined) expect(problem?.fix).toContain(fix);
  });

  it("accepts what the twins above should have written", () => {
    expect(
      compile(["db.internal:1", "10.20.0.0/16:22", "127.0.0.1:22", "[fe80::1]:22", "10.0.0.1:22"]).problems,
    ).toEqual([]);
  });

  it("considers, for a host name, the tunnels with a matching name and those with an address pattern on the port", () => {
    const config = compileConfigText(`${base}      - "db.internal:5432"
  - name: cidr
    allow: [ci]
    destinations: ["10.0.0.0/8:5432"]
  - name: other-port
    allow: [ci]
    destinations: ["10.0.0.0/8:22"]
`).config!;
    const names = (tunnels: CompiledTunnel[]) => tunnels.map((tunnel) => tunnel.name);
    expect(names(candidateTunnels(config.compiledTunnels, parseAuthority("db.internal:5432")!))).toEqual([
      "t",
      "cidr",
    ]);
    expect(names(candidateTunnels(config.compiledTunnels, parseAuthority("10.1.1.1:22")!))).toEqual([
      "other-port",
    ]);
    expect(names(candidateTunnels(config.compiledTunnels, parseAuthority("127.0.0.1:22")!))).toEqual([]);
    const explained = explainConnect(config.compiledTunnels, "127.0.0.1:22");
    expect(explained.refusal).toContain("loopback");
    expect(explainConnect(config.compiledTunnels, "db.internal:5432").resolutionNote).toContain(
      "resolves db.internal once",
    );
  });
});

describe("proxy credentials", () => {
  const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
  it.each([
    [{ "proxy-authorization": `Bearer ${jwt}` }, "proxy-authorization"],
    [{ "proxy-authorization": `bearer  ${jwt}` }, "proxy-authorization"],
    [{ "proxy-authorization": `Basic ${btoa(`oidc:${jwt}`)}` }, "proxy-authorization"],
    [{ "proxy-authorization": `Basic ${btoa(`${jwt}:`)}` }, "proxy-authorization"],
    [{ "gateway-authorization": jwt }, "gateway-authorization"],
    [
      { "gateway-authorization": `Bearer ${jwt}`, "proxy-authorization": "Bearer other" },
      "gateway-authorization",
    ],
  ])("reads %j", (headers, header) => {
    expect(proxyCredential(headers)).toEqual({ token: jwt, header });
  });

  it.each([
    [{}],
    [{ "proxy-authorization": `Digest ${jwt}` }],
    [{ "proxy-authorization": "Basic !!!" }],
    [{ "proxy-authorization": `Basic ${btoa("no-colon")}` }],
    [{ "proxy-authorization": "Bearer a b" }],
    [{ authorization: `Bearer ${jwt}` }],
  ])("finds no credential in %j", (headers) => {
    expect(proxyCredential(headers)).toBeUndefined();
  });
});
