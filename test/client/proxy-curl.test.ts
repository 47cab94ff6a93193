import type { Server } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestCertificates, type TestCertificates } from "../helpers/tls-fixture.js";
import {
  type CliProcess,
  closeServer,
  freePort,
  jwtsIn,
  runTool,
  startCli,
  startHttpsTarget,
  startHttpTarget,
  startTlsFront,
  startTunnelSetup,
  type TunnelSetup,
} from "./client-harness.js";

// `tollgate proxy` (the built CLI) between real curl and the real gateway's tunnel feature.
const uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
let certs: TestCertificates;
let https: { port: number; server: Server };
let http: Awaited<ReturnType<typeof startHttpTarget>>;
let forbiddenHttp: Awaited<ReturnType<typeof startHttpTarget>>;
let setup: TunnelSetup;
let proxy: CliProcess;
let proxyUrl: string;

beforeAll(async () => {
  certs = await createTestCertificates();
  https = await startHttpsTarget(certs.certPem, certs.keyPem);
  http = await startHttpTarget();
  forbiddenHttp = await startHttpTarget();
  setup = await startTunnelSetup(
    [`127.0.0.1:${https.port}`, `127.0.0.1:${http.port}`],
    `routes:
  - name: artifacts
    path_prefix: /artifacts/
    upstream: http://127.0.0.1:${http.port}
    allow: [ci]
  - name: releases
    path_prefix: /releases/
    upstream: http://127.0.0.1:${http.port}
    allow: [releases-only]
`,
  );
  proxy = await startCli(
    ["proxy", "--gateway", setup.gateway.url, "--audience", "tollgate.test", "--listen", "127.0.0.1:0"],
    setup.clientEnv(),
    2,
  );
  proxyUrl = /^HTTPS_PROXY=(\S+)$/m.exec(proxy.stdout())![1]!;
});

afterAll(async () => {
  await proxy?.stop();
  await setup?.close();
  await Promise.all([https, http, forbiddenHttp].filter(Boolean).map((target) => closeServer(target.server)));
  await certs?.close();
});

/** Sends raw bytes to the proxy and returns everything it answers until it closes (bounded). */
function rawRequest(url: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(bytes));
    let answer = "";
    socket.setTimeout(10_000, () => socket.destroy(new Error("no answer")));
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("utf8");
    });
    socket.on("close", () => resolve(answer));
    socket.on("error", reject);
  });
}

/** curl with only the proxy variables given (curl reads `http_proxy` in lower case only). */
function curl(args: string[], proxyEnv: Record<string, string>) {
  return runTool("curl", ["-sS", "--max-time", "15", ...args], setup.clientEnv(proxyEnv));
}

describe("tollgate proxy with curl", () => {
  it("prints where it listens, on loopback, once the gateway said it takes the token", () => {
    expect(proxy.stdout()).toMatch(
      /^HTTPS_PROXY=http:\/\/127\.0\.0\.1:\d+\nHTTP_PROXY=http:\/\/127\.0\.0\.1:\d+\n$/,
    );
    expect(proxy.stderr()).toContain(
      "tollgate proxy: the gateway accepts this job's token of octo-org/octo-repo (issuer http://127.0.0.1:",
    );
  });

  it("carries HTTPS through a CONNECT tunnel (HTTPS_PROXY)", async () => {
    const result = await curl(
      ["--fail", "--cacert", certs.caFile, `https://127.0.0.1:${https.port}/over-tls`],
      { HTTPS_PROXY: proxyUrl },
    );
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("hello over tls /over-tls");
    const events = await setup.gateway.auditEvents();
    expect(events).toContainEqual(
      expect.objectContaining({ event: "tunnel.open", destination: `127.0.0.1:${https.port}` }),
    );
  });

  it("refuses a destination outside the tunnel's list (403 through the proxy)", async () => {
    const port = await freePort();
    const result = await curl(["--fail", "--cacert", certs.caFile, `https://127.0.0.1:${port}/`], {
      HTTPS_PROXY: proxyUrl,
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/403/);
    expect(proxy.stderr()).toMatch(
      new RegExp(
        `CONNECT 127\\.0\\.0\\.1:${port}: gateway answered 403 TG_TUNNEL_DESTINATION_FORBIDDEN \\(request_id ${uuid}\\)`,
      ),
    );
  });

  it("forwards plain HTTP as absolute-form requests (http_proxy), without the token reaching the server", async () => {
    const result = await curl(["--fail", `http://127.0.0.1:${http.port}/plain?x=1`], {
      http_proxy: proxyUrl,
    });
    expect(result.stdout).toBe("hello over http /plain?x=1");
    const headers = http.seen.at(-1)!;
    expect(headers["proxy-authorization"]).toBeUndefined();
    expect(jwtsIn(JSON.stringify(headers))).toEqual([]);
  });

  it("relays the gateway's refusal of a plain-HTTP destination outside the list", async () => {
    const result = await curl(["-i", `http://127.0.0.1:${forbiddenHttp.port}/`], { http_proxy: proxyUrl });
    expect(result.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(result.stdout).toContain('"code":"TG_TUNNEL_DESTINATION_FORBIDDEN"');
    expect(forbiddenHttp.seen).toEqual([]);
    // Logged as the CONNECT refusals are: the gateway's code and the request id its audit line has.
    const requestId = /"request_id":"([^"]+)"/.exec(result.stdout)![1]!;
    expect(proxy.stderr()).toContain(
      `GET http://127.0.0.1:${forbiddenHttp.port}/: gateway answered 403 TG_TUNNEL_DESTINATION_FORBIDDEN (request_id ${requestId})`,
    );
    const audited = (await setup.gateway.auditEvents()).find((event) => event.request_id === requestId);
    expect(audited).toMatchObject({ reason: "TG_TUNNEL_DESTINATION_FORBIDDEN" });
  });

  it("logs a destination's own 404 as the destination's (the gateway allowed it), not as a refusal", async () => {
    const result = await curl(["-i", `http://127.0.0.1:${http.port}/status/404`], { http_proxy: proxyUrl });
    expect(result.stdout).toMatch(/^HTTP\/1\.1 404/);
    expect(result.stdout).toMatch(/^proxy-status: tollgate;received-status=404\r$/im);
    expect(proxy.stderr()).toContain(
      `GET http://127.0.0.1:${http.port}/status/404: the destination answered 404`,
    );
    expect(proxy.stderr()).not.toContain("/status/404: gateway answered");
  });

  it("a destination that dresses its answer as the gateway's refusal is still the destination's", async () => {
    const result = await curl(["-i", `http://127.0.0.1:${http.port}/forged/403`], { http_proxy: proxyUrl });
    expect(result.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(proxy.stderr()).toContain(
      `GET http://127.0.0.1:${http.port}/forged/403: the destination answered 403`,
    );
    expect(proxy.stderr()).not.toContain("from-the-destination");
  });

  it("sends an origin-form request to the gateway's routes with the token (curl $PROXY_URL/path)", async () => {
    const before = http.seen.length;
    const result = await curl(["--fail", `${proxyUrl}/artifacts/latest`], {});
    expect(result.stdout).toBe("hello over http /artifacts/latest");
    expect(http.seen.length).toBe(before + 1);
    expect(jwtsIn(JSON.stringify(http.seen.at(-1)))).toEqual([]);
  });

  it("relays the gateway's refusal of a route whose policy does not admit the job (403)", async () => {
    const before = http.seen.length;
    const result = await curl(["-i", `${proxyUrl}/releases/latest`], {});
    expect(result.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(result.stdout).toContain('"code":"TG_POLICY_DENIED"');
    expect(http.seen.length).toBe(before);
    const requestId = /"request_id":"([^"]+)"/.exec(result.stdout)![1]!;
    expect(proxy.stderr()).toContain(
      `GET /releases/latest: gateway answered 403 TG_POLICY_DENIED (request_id ${requestId})`,
    );
  });

  it("logs a route's upstream 404 as the upstream's, not as the gateway's", async () => {
    const result = await curl(["-i", `${proxyUrl}/artifacts/status/404`], {});
    expect(result.stdout).toMatch(/^HTTP\/1\.1 404/);
    expect(proxy.stderr()).toContain("GET /artifacts/status/404: the route's upstream answered 404");
  });

  it("refuses route requests a browser could send: a foreign Host (DNS rebinding) or an Origin header", async () => {
    const before = http.seen.length;
    const rebound = await curl(["-i", "-H", "Host: attacker.example", `${proxyUrl}/artifacts/latest`], {});
    expect(rebound.stdout).toMatch(/^HTTP\/1\.1 400/);
    expect(rebound.stdout).toContain("loopback address");
    const fromPage = await curl(
      ["-i", "-H", "Origin: https://attacker.example", `${proxyUrl}/artifacts/latest`],
      {},
    );
    expect(fromPage.stdout).toMatch(/^HTTP\/1\.1 400/);
    expect(fromPage.stdout).toContain("from a browser");
    expect(http.seen.length).toBe(before);
  });

  it("answers an https:// request in absolute form with 400: those go through CONNECT", async () => {
    const answer = await rawRequest(proxyUrl, "GET https://127.0.0.1/ HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect(answer).toContain("go through CONNECT");
  });

  it("answers a CONNECT without a port with 400, without asking the gateway", async () => {
    const answer = await rawRequest(proxyUrl, "CONNECT db.internal HTTP/1.1\r\nhost: db.internal\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect(answer).toContain("TG_BAD_REQUEST");
  });

  it("never prints or logs the token", async () => {
    const output = proxy.stdout() + proxy.stderr() + (await setup.gateway.allOutput());
    expect(jwtsIn(output)).toEqual([]);
    expect(output).not.toContain(setup.tokenEndpoint.requestToken);
  });
});

describe("tollgate proxy refusals", () => {
  it("a token for another audience: exit 1 at start with the gateway's code and the fix, never listening", async () => {
    const result = await runTool(
      process.execPath,
      ["bin/tollgate.js", "proxy", "--gateway", setup.gateway.url, "--audience", "someone-else.example"],
      setup.clientEnv(),
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(
      new RegExp(
        `^tollgate proxy: TG_TOKEN_AUDIENCE_MISMATCH: the gateway refused this job's token for audience "someone-else\\.example" \\(request_id ${uuid}\\): "someone-else\\.example" is not an audience the gateway accepts\\.`,
      ),
    );
    expect(jwtsIn(result.stderr)).toEqual([]);
  });

  it("an unreachable gateway: exit 1 at start (TG_CLIENT_GATEWAY_UNAVAILABLE)", async () => {
    const result = await runTool(
      process.execPath,
      [
        "bin/tollgate.js",
        "proxy",
        "--gateway",
        `http://127.0.0.1:${await freePort()}`,
        "--audience",
        "tollgate.test",
      ],
      setup.clientEnv(),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("TG_CLIENT_GATEWAY_UNAVAILABLE");
    expect(result.stderr).toContain("ECONNREFUSED");
  });

  it("will not start without the runner's token endpoint, and says which permission is missing", async () => {
    const result = await runTool(
      process.execPath,
      ["bin/tollgate.js", "proxy", "--gateway", setup.gateway.url, "--audience", "tollgate.test"],
      { PATH: process.env.PATH ?? "" },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set",
    );
    expect(result.stderr).toContain("id-token: write");
  });

  it("will not listen on a non-loopback address without --allow-remote", async () => {
    const result = await runTool(
      process.execPath,
      [
        "bin/tollgate.js",
        "proxy",
        "--gateway",
        setup.gateway.url,
        "--audience",
        "tollgate.test",
        "--listen",
        "0.0.0.0:0",
      ],
      setup.clientEnv(),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("not a loopback address");
  });
});

describe("tollgate proxy to an https gateway", () => {
  let front: Awaited<ReturnType<typeof startTlsFront>>;
  beforeAll(async () => {
    front = await startTlsFront(certs.certPem, certs.keyPem, setup.gateway.running.address.port);
  });
  afterAll(async () => {
    await front?.close();
  });

  it("verifies the gateway's certificate against --ca and tunnels through TLS", async () => {
    const viaTls = await startCli(
      [
        "proxy",
        "--gateway",
        `https://localhost:${front.port}`,
        "--audience",
        "tollgate.test",
        "--ca",
        certs.caFile,
      ],
      setup.clientEnv(),
      2,
    );
    try {
      const url = /^HTTPS_PROXY=(\S+)$/m.exec(viaTls.stdout())![1]!;
      const result = await curl(
        ["--fail", "--cacert", certs.caFile, `https://127.0.0.1:${https.port}/tls-in-tls`],
        {
          HTTPS_PROXY: url,
        },
      );
      expect(result.stdout).toBe("hello over tls /tls-in-tls");
      const plain = await curl(["--fail", `http://127.0.0.1:${http.port}/via-tls-gateway`], {
        http_proxy: url,
      });
      expect(plain.stdout).toBe("hello over http /via-tls-gateway");
    } finally {
      await viaTls.stop();
    }
  });

  it("refuses a gateway whose certificate it cannot verify (no --ca): exit 1 at start, nothing sent", async () => {
    const before = (await setup.gateway.auditEvents()).length;
    const result = await runTool(
      process.execPath,
      [
        "bin/tollgate.js",
        "proxy",
        "--gateway",
        `https://localhost:${front.port}`,
        "--audience",
        "tollgate.test",
      ],
      setup.clientEnv(),
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("TG_CLIENT_GATEWAY_UNAVAILABLE");
    expect(result.stderr).toContain("TLS certificate is not trusted");
    expect((await setup.gateway.auditEvents()).length).toBe(before);
  });
});
