import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  generateConnectorKey,
  parsePrivateKey,
  type RunningConnector,
  startConnector,
} from "../../src/connector/index.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";
import {
  closed,
  type EchoServer,
  echoRoundTrip,
  eventually,
  rawConnect,
  startEchoServer,
} from "../tunnel/helpers.js";
import { capturedLogger, patterns } from "./helpers.js";

/**
 * The outbound-only link on loopback, one process: an edge gateway with a connector pool and a `via`
 * tunnel, a connector that dials it, and an echo server only the connector is told to reach. (That the
 * edge has no path of its own to the service is proved in a network namespace: connector-netns.test.ts.)
 */

describe("a tunnel through a connector (via)", () => {
  const key = generateConnectorKey();
  const stranger = generateConnectorKey();
  let echo: EchoServer;
  let outside: EchoServer;
  let upstream: RecordingUpstream;
  let harness: GatewayHarness;
  let port: number;
  let connector: RunningConnector;
  const connectorLog = capturedLogger();

  beforeAll(async () => {
    echo = await startEchoServer();
    outside = await startEchoServer();
    upstream = await startRecordingUpstream((req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`private service saw ${req.method} ${req.url}`);
    });
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}policies:
  ci: { claims: { repository_owner_id: 65 } }
connectors:
  - name: dc1
    public_keys: ["${key.publicKey}"]
tunnels:
  - name: private
    destinations: ["127.0.0.1:${echo.port}", "127.0.0.1:${outside.port}", "127.0.0.1:${upstream.port}"]
    allow: [ci]
    via: dc1
routes:
  - name: inside
    path_prefix: /inside/
    upstream: ${upstream.url}/base
    strip_prefix: true
    allow: [ci]
    via: dc1
  - name: not-allowed-by-connector
    path_prefix: /elsewhere/
    upstream: http://127.0.0.1:${outside.port}
    allow: [ci]
    via: dc1
`,
    );
    port = Number(new URL(harness.url).port);
    connector = startConnector({
      edges: [new URL(harness.url)],
      pool: "dc1",
      privateKey: parsePrivateKey(key.privateKeyPem),
      // The connector permits the echo server only: the edge also lists `outside`, which it must not reach.
      allow: patterns(`127.0.0.1:${echo.port}`, `127.0.0.1:${upstream.port}`),
      logger: connectorLog.logger,
      backoff: { baseMs: 20, maxMs: 200 },
    });
    await connector.waitConnected();
  });
  afterAll(async () => {
    await connector?.close();
    await harness?.close();
    await echo?.close();
    await outside?.close();
    await upstream?.close();
  });

  it("carries a route's requests through the connector (keep-alive streams), the audit naming the pool", async () => {
    const token = await harness.mint();
    const headers = { "gateway-authorization": `Bearer ${token}` };
    for (let index = 0; index < 3; index++) {
      const response = await fetch(`${harness.url}/inside/x?n=${index}`, { headers });
      expect(response.status).toBe(200);
      expect(await response.text()).toBe(`private service saw GET /base/x?n=${index}`);
    }
    // The upstream got the gateway's headers, not the token.
    expect(upstream.seen.at(-1)?.headers["gateway-authorization"]).toBeUndefined();
    const events = await harness.auditEvents();
    expect(events.filter((event) => event.route === "inside").at(-1)).toMatchObject({
      decision: "allow",
      status: 200,
      connector_pool: "dc1",
    });
  });

  it("forward-proxies an http:// URL (absolute form) through the connector, as HTTP_PROXY clients send it", async () => {
    const token = await harness.mint();
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = httpRequest(
        {
          host: "127.0.0.1",
          port: Number(new URL(harness.url).port),
          path: `http://127.0.0.1:${upstream.port}/plain?via=proxy`,
          headers: { "proxy-authorization": `Bearer ${token}`, host: `127.0.0.1:${upstream.port}` },
        },
        (response) => {
          let body = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => (body += chunk));
          response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
        },
      );
      request.on("error", reject);
      request.end();
    });
    expect(answer).toEqual({ status: 200, body: "private service saw GET /plain?via=proxy" });
    const events = await harness.auditEvents();
    expect(events.filter((event) => event.tunnel === "private").at(-1)).toMatchObject({
      decision: "allow",
      connector_pool: "dc1",
      status: 200,
    });
  });

  it("twin: a route whose upstream the connector does not allow gets 502, and nothing reaches it", async () => {
    const token = await harness.mint();
    const before = outside.connections();
    const response = await fetch(`${harness.url}/elsewhere/x`, {
      headers: { "gateway-authorization": `Bearer ${token}` },
    });
    expect(response.status).toBe(502);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      "TG_UPSTREAM_UNAVAILABLE",
    );
    expect(outside.connections()).toBe(before);
  });

  it("carries a CONNECT through the connector; the audit names the pool and the connector's key, and the connector logs the caller", async () => {
    const token = await harness.mint();
    const answer = await rawConnect(port, `127.0.0.1:${echo.port}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(answer.status).toBe(200);
    expect(await echoRoundTrip(answer.socket, "through the connector", answer.rest)).toBe(
      "through the connector",
    );
    answer.socket.end();
    await closed(answer.socket);
    const events = await eventually(
      () => harness.auditEvents(),
      (list) => list.some((event) => event.event === "tunnel.close"),
    );
    const opened = events.find((event) => event.event === "tunnel.open" && event.decision === "allow");
    expect(opened).toMatchObject({
      tunnel: "private",
      connector_pool: "dc1",
      connector_key: expect.stringMatching(/^[0-9a-f]{12}$/),
      upstream: `127.0.0.1:${echo.port} via dc1`,
    });
    expect(events.find((event) => event.event === "tunnel.close")).toMatchObject({
      bytes_in: 21,
      bytes_out: 21,
    });
    expect(events.find((event) => event.event === "connector.connect")).toMatchObject({
      decision: "allow",
      connector_pool: "dc1",
    });
    const carried = await eventually(
      async () =>
        connectorLog
          .lines()
          .find(
            (line) =>
              line.event === "connector.stream" &&
              line.decision === "allow" &&
              line.destination === `127.0.0.1:${echo.port}`,
          ),
      (line) => line !== undefined,
    );
    expect(carried).toMatchObject({ destination: `127.0.0.1:${echo.port}` });
    expect(String(carried?.caller)).toContain("octo-org/octo-repo");
  });

  it("twin: a destination the edge allows but the connector does not is refused by the connector (403)", async () => {
    const token = await harness.mint();
    const before = outside.connections();
    const answer = await rawConnect(port, `127.0.0.1:${outside.port}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body).error.code).toBe("TG_TUNNEL_DESTINATION_FORBIDDEN");
    expect(outside.connections()).toBe(before);
  });

  it("a connector with a key the pool does not list is refused and audited, and carries nothing", async () => {
    const log = capturedLogger();
    const impostor = startConnector({
      edges: [new URL(harness.url)],
      pool: "dc1",
      privateKey: parsePrivateKey(stranger.privateKeyPem),
      allow: patterns(`127.0.0.1:${echo.port}`),
      logger: log.logger,
      backoff: { baseMs: 1_000, maxMs: 1_000 },
    });
    try {
      const events = await eventually(
        () => harness.auditEvents(),
        (list) => list.some((event) => event.event === "connector.connect" && event.decision === "deny"),
      );
      expect(
        events.find((event) => event.event === "connector.connect" && event.decision === "deny"),
      ).toMatchObject({
        connector_pool: "dc1",
        reason: "TG_POLICY_DENIED",
      });
      expect(impostor.connected()).toBe(0);
    } finally {
      await impostor.close();
    }
  });

  it("/readyz and /metrics report the connected connectors per pool", async () => {
    const body = (await fetch(`${harness.url}/readyz`).then((res) => res.json())) as {
      checks?: unknown;
    };
    expect(JSON.stringify(body)).toContain('"dc1":1');
    const metrics = await fetch(`${harness.url}/metrics`).then((res) => res.text());
    expect(metrics).toContain('tollgate_connectors{pool="dc1"} 1');
  });
});
