import { describe, expect, it } from "vitest";
import {
  assertListenAllowed,
  isLoopbackHost,
  parseForwardSpec,
  parseGatewayUrl,
  parseListenAddress,
} from "../../src/client/index.js";

describe("parseForwardSpec", () => {
  it.each([
    ["5432:db.internal:5432", { host: "127.0.0.1", port: 5432 }, "db.internal:5432"],
    ["0:10.0.0.5:22", { host: "127.0.0.1", port: 0 }, "10.0.0.5:22"],
    ["127.0.0.2:6379:cache.internal:6379", { host: "127.0.0.2", port: 6379 }, "cache.internal:6379"],
    ["[::1]:5432:[fd00::5]:5432", { host: "::1", port: 5432 }, "[fd00::5]:5432"],
    ["15432:[fd00::5]:5432", { host: "127.0.0.1", port: 15432 }, "[fd00::5]:5432"],
  ])("%s", (text, listen, destination) => {
    expect(parseForwardSpec(text)).toEqual({ listen, destination });
  });

  it.each([
    ["db.internal:5432", "wrong shape"],
    ["5432:db.internal", "wrong shape"],
    ["a:b:c:d:e", "wrong shape"],
    ["5432:db.internal:0", "destination port 0"],
    ["5432:db.internal:70000", "destination port 70000"],
    ["x:db.internal:5432", "local port x"],
    ["5432:db internal:5432", "not a host name"],
    ["5432:user@db:5432", "not a host name"],
    ["[::1:5432:db:5432", "wrong shape"],
  ])("refuses %s (%s)", (text, reason) => {
    expect(() => parseForwardSpec(text)).toThrow(reason);
  });
});

describe("parseListenAddress and the loopback rule", () => {
  it("parses host:port, [ipv6]:port and a bare port", () => {
    expect(parseListenAddress("127.0.0.1:0")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(parseListenAddress("[::1]:3128")).toEqual({ host: "::1", port: 3128 });
    expect(parseListenAddress("8080")).toEqual({ host: "127.0.0.1", port: 8080 });
  });

  it.each(["127.0.0.1:99999", "host", ":80", "[nothex]:80"])("refuses %s", (text) => {
    expect(() => parseListenAddress(text)).toThrow("expected HOST:PORT");
  });

  it.each(["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "localhost", "LOCALHOST"])(
    "%s is loopback",
    (host) => {
      expect(isLoopbackHost(host)).toBe(true);
    },
  );

  it.each(["0.0.0.0", "::", "10.0.0.1", "::ffff:10.0.0.1", "example.com", "128.0.0.1"])(
    "%s is not",
    (host) => {
      expect(isLoopbackHost(host)).toBe(false);
    },
  );

  it("allows a non-loopback address only when asked to", () => {
    expect(() => assertListenAllowed({ host: "0.0.0.0", port: 0 }, false, "the proxy")).toThrow(
      /not a loopback address.*--allow-remote/,
    );
    expect(() => assertListenAllowed({ host: "0.0.0.0", port: 0 }, true, "the proxy")).not.toThrow();
  });
});

describe("parseGatewayUrl", () => {
  it("takes an https origin with SNI for names, none for IP literals", () => {
    expect(parseGatewayUrl("https://gateway.example.com")).toMatchObject({
      tls: true,
      host: "gateway.example.com",
      port: 443,
      servername: "gateway.example.com",
    });
    expect(parseGatewayUrl("https://[fd00::1]:8443/")).toMatchObject({
      host: "fd00::1",
      port: 8443,
      servername: undefined,
    });
    expect(parseGatewayUrl("http://127.0.0.1:8080")).toMatchObject({
      tls: false,
      port: 8080,
      servername: undefined,
    });
  });

  it.each([
    ["https://oidc:token@gateway.example.com", "must not carry credentials"],
    ["https://gateway.example.com/prefix", "without a path"],
    ["https://gateway.example.com/?x=1", "without a path or query"],
    ["socks5://gateway.example.com", "http:// or https://"],
    ["gateway.example.com", "not a URL"],
  ])("refuses %s", (text, reason) => {
    expect(() => parseGatewayUrl(text)).toThrow(reason);
  });

  it("accepts --ca only for an https gateway", () => {
    expect(() => parseGatewayUrl("http://127.0.0.1:8080", { ca: "pem" })).toThrow("https:// gateway only");
    expect(parseGatewayUrl("https://gw.example", { ca: "pem" }).ca).toBe("pem");
  });
});
