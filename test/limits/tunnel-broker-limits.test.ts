import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerHarness, startBrokerHarness } from "../broker/broker-harness.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import {
  closed,
  closedPort,
  type EchoServer,
  echoRoundTrip,
  rawConnect,
  startEchoServer,
} from "../tunnel/helpers.js";

/**
 * The abuse controls on tunnels (opens counted per key, failed-authentication throttling on the proxy
 * port) and on broker grants (rate limit, single use), one gateway with the memory store.
 */

/** The last audit line written whole (folded repeats are written later, see denial-aggregator.ts). */
function lastWhole(events: Record<string, unknown>[]): Record<string, unknown> | undefined {
  return events.filter((event) => event.repeated === undefined).at(-1);
}

describe("rate limits on a tunnel (memory store)", () => {
  let echo: EchoServer;
  let otherEcho: EchoServer;
  let harness: GatewayHarness;
  let port: number;
  beforeAll(async () => {
    echo = await startEchoServer();
    otherEcho = await startEchoServer();
    harness = await startGatewayHarness(
      (issuerUrl) => `listen:
  auth_failures: { max: 2, per: 60s }
${devIssuerYaml(issuerUrl)}policies:
  ci: { claims: { repository_owner_id: 65 } }
tunnels:
  - name: limited
    destinations: ["127.0.0.1:${echo.port}"]
    allow: [ci]
    rate_limit: { requests: 2, per: 60s, key: repository_id }
  - name: open
    destinations: ["127.0.0.1:${otherEcho.port}"]
    allow: [ci]
`,
    );
    port = Number(new URL(harness.url).port);
  });
  afterAll(async () => {
    await harness?.close();
    await echo?.close();
    await otherEcho?.close();
  });

  /** Opens a tunnel, proves it carries bytes, and closes it; or returns the refusal's status. */
  async function open(target: string, token: string): Promise<number> {
    const answer = await rawConnect(port, target, { "proxy-authorization": `Bearer ${token}` });
    if (answer.status === 200) {
      expect(await echoRoundTrip(answer.socket, "ping", answer.rest)).toBe("ping");
      answer.socket.end();
      await closed(answer.socket);
    }
    return answer.status;
  }

  it("counts tunnel opens per key: past `requests`, 429 TG_RATE_LIMITED with the IETF fields, and no connection to the destination", async () => {
    const token = await harness.mint({ repository_id: "501" });
    const target = `127.0.0.1:${echo.port}`;
    const before = echo.connections();
    expect([await open(target, token), await open(target, token)]).toEqual([200, 200]);
    const refused = await rawConnect(port, target, { "proxy-authorization": `Bearer ${token}` });
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).error.code).toBe("TG_RATE_LIMITED");
    expect(refused.headers["ratelimit-policy"]).toBe('"tunnel:limited";q=2;w=60');
    expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(echo.connections() - before).toBe(2);
    const events = await harness.auditEvents();
    expect(lastWhole(events)).toMatchObject({
      event: "tunnel.open",
      decision: "deny",
      reason: "TG_RATE_LIMITED",
      tunnel: "limited",
      limit: "tunnel:limited",
    });
  });

  it("twin: another repository, and a tunnel without a limit, still open", async () => {
    const busy = await harness.mint({ repository_id: "502" });
    expect([await open(`127.0.0.1:${echo.port}`, busy), await open(`127.0.0.1:${echo.port}`, busy)]).toEqual([
      200, 200,
    ]);
    expect(await open(`127.0.0.1:${echo.port}`, busy)).toBe(429);
    const otherRepository = await harness.mint({ repository_id: "503" });
    expect(await open(`127.0.0.1:${echo.port}`, otherRepository)).toBe(200);
    for (let index = 0; index < 4; index++) expect(await open(`127.0.0.1:${otherEcho.port}`, busy)).toBe(200);
  });

  it("throttles an address whose proxy credentials keep failing: 407 until `max`, then its connections are refused, even with a valid token", async () => {
    const valid = await harness.mint({ repository_id: "504" });
    const forged = `${valid.slice(0, -8)}AAAAAAAA`;
    const target = `127.0.0.1:${otherEcho.port}`;
    expect((await rawConnect(port, target, { "proxy-authorization": `Bearer ${forged}` })).status).toBe(407);
    expect((await rawConnect(port, target, { "proxy-authorization": `Bearer ${forged}` })).status).toBe(407);
    // Each CONNECT is its own connection; from a blocked address it is closed before the CONNECT is read.
    await expect(rawConnect(port, target, { "proxy-authorization": `Bearer ${valid}` })).rejects.toThrow(
      /closed before a response/,
    );
    // (This test's client is 127.0.0.1, now blocked: the metric is read in route-limits.test.ts.)
    // The failures themselves are audited with the token's own code.
    const events = await harness.auditEvents();
    expect(events.some((event) => event.reason === "TG_TOKEN_SIGNATURE_INVALID")).toBe(true);
  });
});

describe("concurrency on a tunnel: open tunnels per key (memory store)", () => {
  let echo: EchoServer;
  let web: Server;
  let harness: GatewayHarness;
  let port: number;
  let deadPort: number;
  beforeAll(async () => {
    echo = await startEchoServer();
    deadPort = await closedPort();
    web = createServer((_req, res) => res.end("ok"));
    await new Promise<void>((resolve) => web.listen(0, "127.0.0.1", resolve));
    const webPort = (web.address() as AddressInfo).port;
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}policies:
  ci: { claims: { repository_owner_id: 65 } }
tunnels:
  - name: held
    destinations: ["127.0.0.1:${echo.port}", "127.0.0.1:${deadPort}"]
    allow: [ci]
    concurrency: { max: 2, key: repository_id }
  - name: web
    destinations: ["127.0.0.1:${webPort}"]
    allow: [ci]
    concurrency: { max: 1, key: repository_id }
`,
    );
    port = Number(new URL(harness.url).port);
  });
  afterAll(async () => {
    await harness?.close();
    await echo?.close();
    await new Promise((resolve) => web?.close(resolve));
  });

  const connect = (target: string, token: string) =>
    rawConnect(port, target, { "proxy-authorization": `Bearer ${token}` });

  it("past `max` open tunnels for a key: 429 TG_RATE_LIMITED naming the limit, and no connection to the destination; closing one frees its slot", async () => {
    const token = await harness.mint({ repository_id: "601" });
    const target = `127.0.0.1:${echo.port}`;
    const first = await connect(target, token);
    const second = await connect(target, token);
    expect([first.status, second.status]).toEqual([200, 200]);
    const before = echo.connections();
    const refused = await connect(target, token);
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).error.code).toBe("TG_RATE_LIMITED");
    expect(echo.connections()).toBe(before);
    expect(lastWhole(await harness.auditEvents())).toMatchObject({
      event: "tunnel.open",
      decision: "deny",
      reason: "TG_RATE_LIMITED",
      tunnel: "held",
      limit: "tunnel:held:concurrency",
    });
    // Twin: once one of the two closes, the key may open another.
    first.socket.end();
    await closed(first.socket);
    const third = await connect(target, token);
    expect(third.status).toBe(200);
    expect(await echoRoundTrip(third.socket, "still", third.rest)).toBe("still");
    for (const socket of [second.socket, third.socket]) {
      socket.end();
      await closed(socket);
    }
  });

  it("twin: another repository has its own slots while the first is full", async () => {
    const full = await harness.mint({ repository_id: "602" });
    const other = await harness.mint({ repository_id: "603" });
    const target = `127.0.0.1:${echo.port}`;
    const held = [await connect(target, full), await connect(target, full)];
    expect((await connect(target, full)).status).toBe(429);
    const theirs = await connect(target, other);
    expect(theirs.status).toBe(200);
    for (const socket of [...held.map((answer) => answer.socket), theirs.socket]) {
      socket.end();
      await closed(socket);
    }
  });

  it("a tunnel whose destination refuses the connection gives its slot back (three failures in a row, then an open)", async () => {
    const token = await harness.mint({ repository_id: "604" });
    for (let attempt = 0; attempt < 3; attempt++) {
      expect((await connect(`127.0.0.1:${deadPort}`, token)).status).toBe(502);
    }
    const opened = await connect(`127.0.0.1:${echo.port}`, token);
    expect(opened.status).toBe(200);
    opened.socket.end();
    await closed(opened.socket);
  });

  /** One forward-proxied GET of http://127.0.0.1:PORT/ through the gateway; its status. */
  const forwardGet = (webPort: number, token: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          path: `http://127.0.0.1:${webPort}/`,
          headers: { "proxy-authorization": `Bearer ${token}` },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.end();
    });

  it("a forward-proxied request holds its slot only while it is forwarded (max 1: three in a row succeed)", async () => {
    const token = await harness.mint({ repository_id: "605" });
    const webPort = (web.address() as AddressInfo).port;
    for (let attempt = 0; attempt < 3; attempt++) expect(await forwardGet(webPort, token)).toBe(200);
    // Twin: a CONNECT tunnel to it that stays open takes the one slot, and a forwarded request is refused.
    const tunnel = await connect(`127.0.0.1:${webPort}`, token);
    expect(tunnel.status).toBe(200);
    expect(await forwardGet(webPort, token)).toBe(429);
    tunnel.socket.end();
    await closed(tunnel.socket);
  });
});

describe("rate limits and single use on broker grants (memory store)", () => {
  let broker: BrokerHarness;
  beforeAll(async () => {
    broker = await startBrokerHarness({
      yaml: (issuer, api) => `${devIssuerYaml(issuer)}policies:
  octo-ci:
    claims:
      repository_owner_id: 65
broker:
  github:
    api_url: ${api}
  allowed_scopes: ["match:octo-org(/.*)?"]
  grants:
    - allow: [octo-ci]
      actions: [register]
      scopes: ["{repository}"]
      rate_limit: { requests: 2, per: 60s, key: repository_id }
    - allow: [octo-ci]
      actions: [jitconfig]
      scopes: ["{repository_owner}"]
      single_use: true
    - allow: [octo-ci]
      actions: [remove]
      scopes: ["{repository}"]
`,
    });
    await broker.waitReady();
  });
  afterAll(async () => {
    await broker?.close();
  });

  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

  it("a grant's rate limit: `requests` per key, then 429; another repository is not limited", async () => {
    const token = await broker.gateway.mint({ repository_id: "601" });
    const scope = { scope: "octo-org/octo-repo" };
    expect((await broker.call("/register", scope, bearer(token))).status).toBe(200);
    expect((await broker.call("/register", scope, bearer(token))).status).toBe(200);
    const refused = await broker.call("/register", scope, bearer(token));
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatchObject({ code: "TG_RATE_LIMITED" });
    expect(refused.headers.get("ratelimit-policy")).toBe('"grant:0";q=2;w=60');
    const events = await broker.gateway.auditEvents();
    expect(lastWhole(events)).toMatchObject({
      reason: "TG_RATE_LIMITED",
      limit: "grant:0",
      decision: "deny",
    });
    const other = await broker.gateway.mint({ repository_id: "602" });
    expect((await broker.call("/register", scope, bearer(other))).status).toBe(200);
    // Twin: the grant without a limit answers the limited caller.
    expect((await broker.call("/remove", scope, bearer(token))).status).toBe(200);
  });

  it("a single-use grant: a JIT config once per token; the second is 401 TG_TOKEN_REPLAYED", async () => {
    const token = await broker.gateway.mint();
    const body = { scope: "octo-org", name: "runner-1", runner_group_id: 1, labels: ["self-hosted"] };
    const first = await broker.call("/jitconfig", body, bearer(token));
    expect(first.status).toBe(201);
    const again = await broker.call("/jitconfig", { ...body, name: "runner-2" }, bearer(token));
    expect(again.status).toBe(401);
    expect(again.json.error).toMatchObject({ code: "TG_TOKEN_REPLAYED" });
    const events = await broker.gateway.auditEvents();
    expect(lastWhole(events)).toMatchObject({ reason: "TG_TOKEN_REPLAYED", limit: "single_use" });
    // Twin: a fresh token gets its JIT config.
    const fresh = await broker.gateway.mint();
    expect((await broker.call("/jitconfig", { ...body, name: "runner-3" }, bearer(fresh))).status).toBe(201);
  });
});
