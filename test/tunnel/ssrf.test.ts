import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTunnelFeatureFactory,
  type DialAddress,
  type LookupAll,
  systemDial,
} from "../../src/tunnel/index.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { closedPort, type EchoServer, echoRoundTrip, rawConnect, startEchoServer } from "./helpers.js";

/**
 * The negative prober: every way of writing a forbidden address, through the real gateway. The `wide`
 * tunnel admits every IPv4 and IPv6 address on one port (0.0.0.0/0 and ::/0), so each refusal below is
 * the always-denied rule at work, not a pattern that failed to match; its twin (a private address on the
 * same port) shows the same tunnel does dial. The `explicit` tunnel names 127.0.0.1 and 169.254.169.254,
 * and the same spellings reach them there.
 *
 * No test connects anywhere but 127.0.0.1: the dial function records every attempt and sends anything
 * else to a closed loopback port.
 */
const records = new Map<string, string[]>([
  ["localhost", ["127.0.0.1", "::1"]],
  ["meta.ssrf.test", ["169.254.169.254"]],
  ["mapped.ssrf.test", ["::ffff:127.0.0.1"]],
  ["zero.ssrf.test", ["0.0.0.0"]],
  ["aws6.ssrf.test", ["fd00:ec2::254"]],
  ["private.ssrf.test", ["10.9.8.7"]],
]);
const lookup: LookupAll = async (name) => {
  const answers = records.get(name);
  if (answers === undefined) throw Object.assign(new Error("no such name"), { code: "ENOTFOUND" });
  return answers.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
};
let dialled: string[] = [];
let unreachable = 0;
const dial: DialAddress = (options) => {
  dialled.push(options.host);
  if (options.host === "127.0.0.1") return systemDial(options);
  return systemDial({ ...options, host: "127.0.0.1", port: unreachable, family: 4 });
};

describe("SSRF: every spelling of a forbidden address is refused", () => {
  let harness: GatewayHarness;
  let wideTarget: EchoServer;
  let explicitTarget: EchoServer;
  let token: string;
  let wide = 0;
  let metadataPort = 0;

  beforeAll(async () => {
    wideTarget = await startEchoServer();
    explicitTarget = await startEchoServer();
    unreachable = await closedPort();
    wide = wideTarget.port;
    metadataPort = await closedPort();
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  ci: { claims: { repository_owner_id: 65 } }
tunnels:
  - name: wide
    destinations: ["0.0.0.0/0:${wide}", "[::/0]:${wide}", "*.ssrf.test:${wide}"]
    allow: [ci]
  - name: explicit
    destinations: ["127.0.0.1:${explicitTarget.port}", "169.254.169.254:${metadataPort}"]
    allow: [ci]
`,
      { features: [createTunnelFeatureFactory({ lookup, dial })] },
    );
    token = await harness.mint();
  });
  afterAll(async () => {
    await harness?.close();
    await wideTarget?.close();
    await explicitTarget?.close();
  });

  const connectTo = (target: string) =>
    rawConnect(harness.running.address.port, target, { "proxy-authorization": `Bearer ${token}` });

  const forbidden: [string, string][] = [
    ["loopback", "127.0.0.1"],
    ["loopback, elsewhere in 127/8", "127.8.9.10"],
    ["short form", "127.1"],
    ["octal", "0177.0.0.1"],
    ["whole octal", "017700000001"],
    ["hex", "0x7f.0.0.1"],
    ["whole hex", "0x7f000001"],
    ["decimal", "2130706433"],
    ["trailing dot", "127.0.0.1."],
    ["IPv4-mapped IPv6", "[::ffff:127.0.0.1]"],
    ["IPv4-mapped IPv6, hex", "[::FFFF:7F00:1]"],
    ["IPv6 loopback", "[::1]"],
    ["IPv6 loopback, uncompressed", "[0:0:0:0:0:0:0:1]"],
    ["IPv4-compatible IPv6", "[::127.0.0.1]"],
    ["NAT64 of loopback", "[64:ff9b::7f00:1]"],
    ["NAT64 of metadata", "[64:ff9b::a9fe:a9fe]"],
    ["6to4 of loopback", "[2002:7f00:1::]"],
    ["unspecified", "0.0.0.0"],
    ["unspecified, decimal", "0"],
    ["IPv6 unspecified", "[::]"],
    ["cloud metadata", "169.254.169.254"],
    ["cloud metadata, decimal", "2852039166"],
    ["cloud metadata, IPv4-mapped", "[::ffff:169.254.169.254]"],
    ["link-local", "169.254.1.1"],
    ["AWS IPv6 metadata", "[fd00:ec2::254]"],
    ["IPv6 link-local", "[fe80::1]"],
    ["multicast", "224.0.0.1"],
    ["IPv6 multicast", "[ff02::1]"],
    ["broadcast", "255.255.255.255"],
    ["Alibaba metadata", "100.100.100.200"],
    ["Azure WireServer", "168.63.129.16"],
    ["localhost by name", "localhost"],
    ["localhost, upper case and trailing dot", "LocalHost."],
    ["a name resolving to metadata", "meta.ssrf.test"],
    ["a name resolving to IPv4-mapped loopback", "mapped.ssrf.test"],
    ["a name resolving to 0.0.0.0", "zero.ssrf.test"],
    ["a name resolving to AWS IPv6 metadata", "aws6.ssrf.test"],
  ];

  it.each(forbidden)("refuses %s (%s) with 403 and dials nothing", async (_what, host) => {
    dialled = [];
    const before = wideTarget.connections();
    const answer = await connectTo(`${host}:${wide}`);
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: "TG_TUNNEL_DESTINATION_FORBIDDEN" } });
    expect(dialled).toEqual([]);
    expect(wideTarget.connections()).toBe(before);
  });

  it.each([
    ["a private IPv4 address", "10.1.2.3", "10.1.2.3"],
    ["a private IPv6 address", "[fd12::5]", "fd12::5"],
    ["a name resolving to a private address", "private.ssrf.test", "10.9.8.7"],
  ])("dials %s through the same wide tunnel (the twin)", async (_what, host, address) => {
    dialled = [];
    const answer = await connectTo(`${host}:${wide}`);
    // The test's dial function sends it to a closed loopback port: the gateway reports 502.
    expect(answer.status).toBe(502);
    expect(dialled).toEqual([address]);
  });

  it.each([
    ["dotted", "127.0.0.1"],
    ["short form", "127.1"],
    ["octal", "0177.0.0.1"],
    ["hex", "0x7f.0.0.1"],
    ["decimal", "2130706433"],
    ["IPv4-mapped IPv6", "[::ffff:127.0.0.1]"],
  ])("reaches an explicitly named loopback destination written as %s (allowed twin)", async (_what, host) => {
    dialled = [];
    const answer = await connectTo(`${host}:${explicitTarget.port}`);
    expect(answer.status).toBe(200);
    expect(await echoRoundTrip(answer.socket, "twin", answer.rest)).toBe("twin");
    expect(dialled).toEqual(["127.0.0.1"]);
    answer.socket.destroy();
  });

  it("lets a destination that names the metadata address explicitly reach it (in any spelling)", async () => {
    for (const host of ["169.254.169.254", "[::ffff:a9fe:a9fe]", "2852039166"]) {
      dialled = [];
      const answer = await connectTo(`${host}:${metadataPort}`);
      expect(answer.status).toBe(502);
      expect(dialled).toEqual(["169.254.169.254"]);
    }
  });

  it("refuses IPv6 zone ids rather than guessing an interface", async () => {
    for (const host of ["[fe80::1%25eth0]", "[fe80::1%eth0]", "[fe80::1%1]"]) {
      dialled = [];
      const answer = await connectTo(`${host}:${wide}`);
      expect(answer.status).toBe(400);
      expect(dialled).toEqual([]);
    }
  });
});
