import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { tunnelFeature } from "../../src/tunnel/index.js";
import { freePort, jwtsIn, startCli, startTunnelSetup, type TunnelSetup } from "./client-harness.js";

// `tollgate whoami` in-process against a real gateway, and what the client does with a gateway that is
// older than GET /_tollgate/whoami (the built-in tunnel feature alone, as before it existed).
let setup: TunnelSetup;
let older: TunnelSetup;

beforeAll(async () => {
  setup = await startTunnelSetup(["127.0.0.1:9"]);
  older = await startTunnelSetup(["127.0.0.1:9"], "", { features: [tunnelFeature] });
});

afterAll(async () => {
  await setup?.close();
  await older?.close();
});

async function whoami(args: string[], env: Record<string, string>) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on("data", (chunk: Buffer) => out.push(chunk.toString()));
  stderr.on("data", (chunk: Buffer) => err.push(chunk.toString()));
  const code = await main(["whoami", ...args], { stdout, stderr, env });
  return { code, stdout: out.join(""), stderr: err.join("") };
}

describe("tollgate whoami", () => {
  it("prints the identity the gateway verified, as JSON, and exits 0", async () => {
    const result = await whoami(
      ["--gateway", setup.gateway.url, "--audience", "tollgate.test"],
      setup.clientEnv(),
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const answer = JSON.parse(result.stdout) as Record<string, string>;
    expect(answer).toEqual({
      issuer: setup.gateway.issuer.issuerUrl,
      subject: "repo:octo-org/octo-repo:ref:refs/heads/main",
      repository: "octo-org/octo-repo",
      expires_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(setup.tokenEndpoint.audiences.at(-1)).toBe("tollgate.test");
  });

  it("a wrong audience: exit 1, the gateway's code, the audience asked for and the fix on stderr", async () => {
    const result = await whoami(
      ["--gateway", setup.gateway.url, "--audience", "gw.example"],
      setup.clientEnv(),
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(
      /^tollgate whoami: TG_TOKEN_AUDIENCE_MISMATCH: the gateway refused this job's token for audience "gw\.example" \(request_id [0-9a-f-]{36}\): "gw\.example" is not an audience the gateway accepts\. Set audience to one of the audiences of the gateway's issuer/,
    );
    expect(jwtsIn(result.stderr)).toEqual([]);
    const requestId = /request_id ([0-9a-f-]{36})/.exec(result.stderr)![1];
    const audited = (await setup.gateway.auditEvents()).find((event) => event.request_id === requestId);
    expect(audited).toMatchObject({ event: "auth.denied", reason: "TG_TOKEN_AUDIENCE_MISMATCH" });
  });

  it("reads the gateway and audience from TOLLGATE_GATEWAY and TOLLGATE_AUDIENCE", async () => {
    const result = await whoami(
      [],
      setup.clientEnv({ TOLLGATE_GATEWAY: setup.gateway.url, TOLLGATE_AUDIENCE: "tollgate.test" }),
    );
    expect(result.code).toBe(0);
  });

  it("an unreachable gateway: exit 1 with TG_CLIENT_GATEWAY_UNAVAILABLE; a malformed URL: exit 2", async () => {
    const down = await whoami(
      ["--gateway", `http://127.0.0.1:${await freePort()}`, "--audience", "tollgate.test"],
      setup.clientEnv(),
    );
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("TG_CLIENT_GATEWAY_UNAVAILABLE");
    const malformed = await whoami(["--gateway", "gw.example.com", "--audience", "a"], setup.clientEnv());
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain("not a URL");
  });

  it("a gateway older than /_tollgate/whoami: exit 1, saying it could not tell", async () => {
    const result = await whoami(
      ["--gateway", older.gateway.url, "--audience", "tollgate.test"],
      older.clientEnv(),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("/_tollgate/whoami answered 404 TG_ROUTE_NOT_FOUND");
  });
});

describe("tollgate proxy against a gateway older than /_tollgate/whoami", () => {
  it("starts anyway, with a warning that the token was not checked in advance", async () => {
    const proxy = await startCli(
      ["proxy", "--gateway", older.gateway.url, "--audience", "tollgate.test"],
      older.clientEnv(),
      2,
    );
    try {
      expect(proxy.stdout()).toMatch(/^HTTPS_PROXY=/);
      expect(proxy.stderr()).toContain("tollgate proxy: warning: the token was not checked in advance:");
    } finally {
      await proxy.stop();
    }
  });
});
