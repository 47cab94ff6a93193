import { describe, expect, it } from "vitest";
import {
  checkIssuerUrl,
  checkKeySetUrl,
  expandIssuerPreset,
  isLoopbackHostname,
  validateAlgorithms,
} from "../../src/oidc/index.js";

describe("expandIssuerPreset", () => {
  it.each([
    ["github", "https://token.actions.githubusercontent.com"],
    ["github-enterprise:octocat-inc", "https://token.actions.githubusercontent.com/octocat-inc"],
    ["github-enterprise:a", "https://token.actions.githubusercontent.com/a"],
    ["ghes:ghes.example.com", "https://ghes.example.com/_services/token"],
    ["ghes:ghe.corp.example:8443", "https://ghe.corp.example:8443/_services/token"],
    ["ghes:ghe", "https://ghe/_services/token"],
  ])("expands %s", (preset, issuer) => {
    expect(expandIssuerPreset(preset)).toBe(issuer);
  });

  it.each([
    "GitHub",
    "github ",
    "gitlab",
    "github-enterprise",
    "github-enterprise:",
    "github-enterprise:Octocat-Inc",
    "github-enterprise:octocat/inc",
    "github-enterprise:-octocat",
    "github-enterprise:octocat-",
    "github-enterprise:octo_cat",
    "github-enterprise:../evil",
    "github-enterprise:octocat?x=1",
    "ghes:",
    "ghes:evil.example/path",
    "ghes:user@ghes.example.com",
    "ghes:ghes.example.com:0",
    "ghes:ghes.example.com:65536",
    "ghes:ghes.example.com:",
    "ghes:GHES.example.com",
    "ghes:ghes..example.com",
    "ghes:-ghes.example.com",
    "ghes:ghes.example.com#x",
    "ghes:[::1]",
    "ghes:ghes example.com",
  ])("refuses %j", (preset) => {
    expect(expandIssuerPreset(preset)).toBeUndefined();
  });
});

describe("checkIssuerUrl", () => {
  it.each([
    "https://token.actions.githubusercontent.com",
    "https://token.actions.githubusercontent.com/octocat-inc",
    "https://ghes.example.com/_services/token",
    "https://issuer.example.com/",
    "https://issuer.example.com:8443/tenant",
    "http://127.0.0.1:8080",
    "http://127.8.9.10",
    "http://localhost:3000",
    "http://[::1]:9000",
  ])("accepts %s", (url) => {
    expect(checkIssuerUrl(url)).toBeUndefined();
  });

  it.each([
    ["http://token.actions.githubusercontent.com", /https/],
    ["http://10.0.0.1", /https/],
    ["http://127.0.0.1.evil.example", /https/],
    ["http://localhost.evil.example", /https/],
    ["ftp://issuer.example.com", /https/],
    ["https://user:pass@issuer.example.com", /credentials/],
    ["https://issuer.example.com?tenant=1", /query/],
    ["https://issuer.example.com/#x", /fragment/],
    ["https://Issuer.Example.com", /canonical/],
    ["HTTPS://issuer.example.com", /canonical/],
    ["https://issuer.example.com:443", /canonical/],
    [" https://issuer.example.com", /whitespace/],
    ["issuer.example.com", /not an absolute URL/],
    ["", /non-empty/],
  ])("refuses %s", (url, problem) => {
    expect(checkIssuerUrl(url)).toMatch(problem);
  });

  it("allows a query string in a jwks_uri but not in an issuer", () => {
    expect(checkKeySetUrl("https://keys.example.com/jwks?tenant=1")).toBeUndefined();
    expect(checkIssuerUrl("https://keys.example.com/jwks?tenant=1")).toMatch(/query/);
    expect(checkKeySetUrl("http://keys.example.com/jwks")).toMatch(/https/);
  });
});

describe("isLoopbackHostname", () => {
  it.each(["localhost", "127.0.0.1", "127.255.255.254", "[::1]", "::1"])("%s is loopback", (host) => {
    expect(isLoopbackHostname(host)).toBe(true);
  });
  it.each(["128.0.0.1", "127.0.0.256", "localhost.example", "0.0.0.0", "[::]", "10.0.0.1", "127.0.0"])(
    "%s is not loopback",
    (host) => {
      expect(isLoopbackHostname(host)).toBe(false);
    },
  );
});

describe("validateAlgorithms", () => {
  it.each([[["RS256"]], [["RS256", "ES256", "PS512", "EdDSA"]]])("accepts %j", (list) => {
    expect(validateAlgorithms(list)).toBeUndefined();
  });
  it.each([
    [["none"], /forbidden/],
    [["None"], /forbidden/],
    [["HS256"], /forbidden/],
    [["RS256", "HS512"], /forbidden/],
    [["hs384"], /forbidden/],
    [["RS257"], /not supported/],
    [["RS256", "RS256"], /twice/],
    [[], /at least one/],
  ])("refuses %j", (list, problem) => {
    expect(validateAlgorithms(list)).toMatch(problem);
  });
});
