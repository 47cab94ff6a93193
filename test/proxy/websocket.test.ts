import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, request } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { Pool } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import type { AuditEvent } from "../../src/audit/types.js";
import {
  generateConnectorKey,
  parsePrivateKey,
  type RunningConnector,
  startConnector,
} from "../../src/connector/index.js";
import { systemClock } from "../../src/lib/clock.js";
import { sendError } from "../../src/pipeline/send-error.js";
import { createUpstreamForwarder } from "../../src/proxy/index.js";
import { responseOnUpgradeSocket } from "../../src/server/upgrade-response.js";
import { createWebSocketCarrier } from "../../src/server/websocket-carrier.js";
import { capturedLogger, patterns } from "../connector/helpers.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { createTestCertificates, type TestCertificates } from "../helpers/tls-fixture.js";
import { testRoute } from "./harness.js";

/**
 * WebSocket upgrades on reverse-proxy routes, end to end: the real `ws` client, a real gateway on
 * loopback, and a real `ws` echo server as the upstream, which counts the TCP connections and upgrades it
 * sees so that a refused upgrade is shown never to reach it.
 */

interface WebSocketUpstream {
  url: string;
  /** Headers of every upgrade request it received. */
  upgrades: IncomingHttpHeaders[];
  /** Plain (not upgraded) requests it answered, by path. */
  plain: string[];
  /** TCP connections accepted. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * An echo upstream: `/…/refuse` answers an upgrade 403 with a body, every other upgrade is accepted and
 * echoes each message back; plain requests get 200 `plain`.
 */
async function startWebSocketUpstream(): Promise<WebSocketUpstream> {
  const upgrades: IncomingHttpHeaders[] = [];
  const plain: string[] = [];
  let connections = 0;
  const server = createServer((req, res) => {
    plain.push(req.url ?? "");
    res.writeHead(200, { "content-type": "text/plain" }).end("plain");
  });
  server.on("connection", () => {
    connections += 1;
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req: IncomingMessage, socket, head) => {
    upgrades.push(req.headers);
    if (req.url?.endsWith("/refuse")) {
      socket.end(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 21\r\n\r\nupstream-refusal-body",
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    upgrades,
    plain,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type Opened = { ws: WebSocket } | { status: number; body: string; headers: IncomingHttpHeaders };

/** Opens a WebSocket through the gateway: the open socket, or the HTTP answer that refused it. */
function openWebSocket(url: string, headers: Record<string, string> = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once("open", () => resolve({ ws }));
    ws.once("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          headers: res.headers,
        }),
      );
    });
    ws.once("error", reject);
  });
}

function opened(result: Opened): WebSocket {
  if (!("ws" in result)) throw new Error(`upgrade refused: ${result.status} ${result.body}`);
  return result.ws;
}

/** Sends `message` and resolves with the next message received. */
function echo(ws: WebSocket, message: string | Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    ws.once("message", (data) => resolve(data as Buffer));
    ws.once("error", reject);
    ws.send(message);
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve(-1);
    else ws.once("close", (code) => resolve(code));
  });
}

/** Polls the audit log (bounded: 5 s) until `match` finds an event. */
async function waitForEvent(
  harness: GatewayHarness,
  match: (event: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const found = (await harness.auditEvents()).find(match);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error("audit event not written within 5 s");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A request to `/ws/page` with `Upgrade` headers from Node's client; fails if the gateway switches protocols. */
function upgradeRequest(
  gatewayUrl: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(gatewayUrl);
    const req = request({ host: url.hostname, port: Number(url.port), method, path: "/ws/page", headers });
    req.on("upgrade", () => reject(new Error("the gateway switched protocols")));
    req.on("response", (res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => {
        text += chunk.toString();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const canary = "CANARY-5d1e0c2a-websocket-secret";

function configYaml(upstreamUrl: string) {
  return (issuerUrl: string) => `${devIssuerYaml(issuerUrl)}
policies:
  main:
    issuer: dev
    claims: { repository: octo-org/octo-repo }
routes:
  - name: ws
    path_prefix: /ws/
    upstream: ${upstreamUrl}
    allow: [main]
    forward_claims: [repository]
    websocket: { idle_timeout: 10s, max_lifetime: 1m }
  - name: idle
    path_prefix: /idle/
    upstream: ${upstreamUrl}
    allow: [main]
    websocket: { idle_timeout: 300ms }
  - name: refuses-upgrades
    path_prefix: /plain/
    upstream: ${upstreamUrl}
    allow: [main]
    websocket: false
  - name: post-only
    path_prefix: /post/
    methods: [POST]
    upstream: ${upstreamUrl}
    allow: [main]
  - name: once
    path_prefix: /once/
    upstream: ${upstreamUrl}
    allow: [main]
    single_use: true
  - name: limited
    path_prefix: /limited/
    upstream: ${upstreamUrl}
    allow: [main]
    rate_limit: { requests: 1, per: 1m, key: repository }
`;
}

describe("WebSocket upgrades on routes", () => {
  let upstream: WebSocketUpstream;
  let harness: GatewayHarness;
  let wsUrl: string;
  let token: string;
  const auth = () => ({ "gateway-authorization": `Bearer ${token}` });

  beforeAll(async () => {
    upstream = await startWebSocketUpstream();
    harness = await startGatewayHarness(configYaml(upstream.url));
    wsUrl = harness.url.replace("http://", "ws://");
    token = await harness.mint({ canary_note: canary });
  });
  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  it("carries an echo with a valid token, without the gateway credential, with claims and X-Forwarded-*", async () => {
    const before = upstream.upgrades.length;
    const ws = opened(await openWebSocket(`${wsUrl}/ws/echo`, auth()));
    expect((await echo(ws, "hello through tollgate")).toString()).toBe("hello through tollgate");
    const binary = Buffer.from([0, 1, 2, 255]);
    expect(Buffer.compare(await echo(ws, binary), binary)).toBe(0);
    ws.close();
    await closed(ws);

    expect(upstream.upgrades.length).toBe(before + 1);
    const seen = upstream.upgrades.at(-1)!;
    expect(seen["gateway-authorization"]).toBeUndefined();
    expect(JSON.stringify(seen)).not.toContain(token);
    expect(seen.upgrade).toBe("websocket");
    expect(seen.connection?.toLowerCase()).toBe("upgrade");
    expect(seen["sec-websocket-key"]).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    expect(seen["sec-websocket-version"]).toBe("13");
    expect(seen["tollgate-claim-repository"]).toBe("octo-org/octo-repo");
    expect(seen["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen["x-forwarded-proto"]).toBe("http");
    expect(seen["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("removes client-sent claim and X-Forwarded-* headers from the upgrade", async () => {
    const ws = opened(
      await openWebSocket(`${wsUrl}/ws/echo`, {
        ...auth(),
        "tollgate-claim-repository": "evil/repo",
        "x-forwarded-for": "6.6.6.6",
      }),
    );
    ws.close();
    await closed(ws);
    const seen = upstream.upgrades.at(-1)!;
    expect(seen["tollgate-claim-repository"]).toBe("octo-org/octo-repo");
    expect(seen["x-forwarded-for"]).toBe("127.0.0.1");
  });

  it("answers 401 without a token, and the upstream sees no connection", async () => {
    const upgrades = upstream.upgrades.length;
    const connections = upstream.connections();
    const result = await openWebSocket(`${wsUrl}/ws/echo`);
    expect(result).toMatchObject({ status: 401 });
    expect((result as { body: string }).body).toContain("TG_TOKEN_MISSING");
    expect((result as { headers: IncomingHttpHeaders }).headers["www-authenticate"]).toBeDefined();
    expect(upstream.upgrades.length).toBe(upgrades);
    expect(upstream.connections()).toBe(connections);
  });

  it("answers 401 for a token that fails verification, and the upstream sees no connection", async () => {
    const upgrades = upstream.upgrades.length;
    const connections = upstream.connections();
    const forged = `${token.slice(0, -4)}AAAA`;
    const result = await openWebSocket(`${wsUrl}/ws/echo`, { "gateway-authorization": `Bearer ${forged}` });
    expect(result).toMatchObject({ status: 401 });
    expect(upstream.upgrades.length).toBe(upgrades);
    expect(upstream.connections()).toBe(connections);
  });

  it("answers 403 for a token the policy refuses, and the upstream sees no connection", async () => {
    const upgrades = upstream.upgrades.length;
    const connections = upstream.connections();
    const other = await harness.mint({ repository: "octo-org/other-repo" });
    const result = await openWebSocket(`${wsUrl}/ws/echo`, { "gateway-authorization": `Bearer ${other}` });
    expect(result).toMatchObject({ status: 403 });
    expect((result as { body: string }).body).toContain("TG_POLICY_DENIED");
    expect(upstream.upgrades.length).toBe(upgrades);
    expect(upstream.connections()).toBe(connections);
  });

  it("refuses upgrades on a route with websocket: false (400), which still proxies plain requests", async () => {
    const upgrades = upstream.upgrades.length;
    const connections = upstream.connections();
    const result = await openWebSocket(`${wsUrl}/plain/echo`, auth());
    expect(result).toMatchObject({ status: 400 });
    expect((result as { body: string }).body).toContain("does not carry WebSocket upgrades");
    expect(upstream.upgrades.length).toBe(upgrades);
    expect(upstream.connections()).toBe(connections);

    const response = await fetch(`${harness.url}/plain/page`, { headers: auth() });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("plain");
  });

  it("answers 405 on a route that does not allow GET, and 404 where no route matches", async () => {
    const upgrades = upstream.upgrades.length;
    const notAllowed = await openWebSocket(`${wsUrl}/post/echo`, auth());
    expect(notAllowed).toMatchObject({ status: 405 });
    expect((notAllowed as { headers: IncomingHttpHeaders }).headers.allow).toBe("POST");
    const noRoute = await openWebSocket(`${wsUrl}/nowhere/echo`, auth());
    expect(noRoute).toMatchObject({ status: 404 });
    expect(upstream.upgrades.length).toBe(upgrades);
  });

  it("uses a single_use token up with its first upgrade: the second gets 401 and never reaches the upstream", async () => {
    const once = await harness.mint();
    const first = opened(
      await openWebSocket(`${wsUrl}/once/echo`, { "gateway-authorization": `Bearer ${once}` }),
    );
    expect((await echo(first, "first")).toString()).toBe("first");
    first.close();
    await closed(first);
    const upgrades = upstream.upgrades.length;
    const second = await openWebSocket(`${wsUrl}/once/echo`, { "gateway-authorization": `Bearer ${once}` });
    expect(second).toMatchObject({ status: 401 });
    expect((second as { body: string }).body).toContain("TG_TOKEN_REPLAYED");
    expect(upstream.upgrades.length).toBe(upgrades);
  });

  it("counts upgrades against the route's rate limit: past it, 429 and no upstream connection", async () => {
    const limited = await harness.mint();
    const headers = { "gateway-authorization": `Bearer ${limited}` };
    const first = opened(await openWebSocket(`${wsUrl}/limited/echo`, headers));
    first.close();
    await closed(first);
    const upgrades = upstream.upgrades.length;
    const second = await openWebSocket(`${wsUrl}/limited/echo`, headers);
    expect(second).toMatchObject({ status: 429 });
    expect((second as { headers: IncomingHttpHeaders }).headers["retry-after"]).toBeDefined();
    expect(upstream.upgrades.length).toBe(upgrades);
  });

  it("passes an upstream's refusal of the upgrade back as a proxied answer", async () => {
    const result = await openWebSocket(`${wsUrl}/ws/refuse`, auth());
    expect(result).toMatchObject({ status: 403, body: "upstream-refusal-body" });
    const decided = await waitForEvent(
      harness,
      (event) => event.event === "gateway.request" && event.path === "/ws/refuse",
    );
    expect(decided).toMatchObject({ decision: "allow", route: "ws", status: 403 });
  });

  it("serves a body-less upgrade to another protocol (h2c) as a plain request", async () => {
    const plain = upstream.plain.length;
    const answer = await upgradeRequest(harness.url, "GET", {
      ...auth(),
      connection: "Upgrade, HTTP2-Settings",
      upgrade: "h2c",
      "http2-settings": "",
    });
    expect(answer).toEqual({ status: 200, body: "plain" });
    expect(upstream.plain.slice(plain)).toEqual(["/ws/page"]);
  });

  it("refuses (400) an upgrade to another protocol that has a body, which never reaches the upstream", async () => {
    const plain = upstream.plain.length;
    const upgrades = upstream.upgrades.length;
    const answer = await upgradeRequest(
      harness.url,
      "POST",
      { ...auth(), connection: "Upgrade", upgrade: "h2c", "content-length": "5" },
      "hello",
    );
    expect(answer.status).toBe(400);
    expect(answer.body).toContain("only WebSocket upgrades are carried");
    expect(upstream.plain.length).toBe(plain);
    expect(upstream.upgrades.length).toBe(upgrades);
  });

  it("audits the decision (101) and the close with bytes both ways, duration and reason", async () => {
    const ws = opened(await openWebSocket(`${wsUrl}/ws/audited`, auth()));
    const message = "x".repeat(1000);
    await echo(ws, message);
    await echo(ws, message);
    ws.close();
    await closed(ws);
    const decided = await waitForEvent(
      harness,
      (event) => event.event === "gateway.request" && event.path === "/ws/audited",
    );
    expect(decided).toMatchObject({
      decision: "allow",
      reason: "allowed-by-policy",
      route: "ws",
      status: 101,
      method: "GET",
      policy: "main",
    });
    const close = await waitForEvent(
      harness,
      (event) => event.event === "websocket.close" && event.request_id === decided.request_id,
    );
    expect(close).toMatchObject({
      decision: "allow",
      reason: "closed",
      route: "ws",
      policy: "main",
      token_sha256: decided.token_sha256,
      upstream: upstream.url,
    });
    // Two 1000-byte messages each way, plus frame headers (and, client to upstream, masks) and the close.
    expect(close.bytes_in).toBeGreaterThan(2000);
    expect(close.bytes_in).toBeLessThan(2100);
    expect(close.bytes_out).toBeGreaterThan(2000);
    expect(close.bytes_out).toBeLessThan(2100);
    expect(close.duration_ms).toBeGreaterThanOrEqual(0);
    expect((close.identity as Record<string, string>).repository).toBe("octo-org/octo-repo");
  });

  it("closes a WebSocket idle past the route's idle_timeout, and audits why", async () => {
    const ws = opened(await openWebSocket(`${wsUrl}/idle/quiet`, auth()));
    const started = Date.now();
    await closed(ws);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(4_000);
    const close = await waitForEvent(
      harness,
      (event) => event.event === "websocket.close" && event.route === "idle",
    );
    expect(close.reason).toBe("idle-timeout");
  });

  it("keeps a busy WebSocket open past the idle timeout", async () => {
    const ws = opened(await openWebSocket(`${wsUrl}/idle/busy`, auth()));
    // Six round trips 100 ms apart: 600 ms in all, twice the idle limit, never 300 ms quiet.
    for (let round = 0; round < 6; round++) {
      expect((await echo(ws, `round ${round}`)).toString()).toBe(`round ${round}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
    await closed(ws);
  });

  it("keeps the token out of every log line, even when it is also sent in the query", async () => {
    const ws = opened(await openWebSocket(`${wsUrl}/ws/canary?access_token=${token}`, auth()));
    await echo(ws, "canary");
    ws.close();
    await closed(ws);
    const decided = await waitForEvent(
      harness,
      (event) => event.event === "gateway.request" && String(event.path).startsWith("/ws/canary"),
    );
    await waitForEvent(
      harness,
      (event) => event.event === "websocket.close" && event.request_id === decided.request_id,
    );
    // The line is there, and names the token by its hash alone.
    expect(decided.token_sha256).toBe(createHash("sha256").update(token).digest("hex"));
    const output = await harness.allOutput();
    expect(output).not.toContain(token);
    expect(output).not.toContain(canary);
    expect(output).not.toContain(token.split(".")[2]!);
  });
});

describe("WebSocket upgrades across a reload and a graceful stop", () => {
  it("keeps an open WebSocket through a reload, and closes it (reason shutdown) when the gateway stops", async () => {
    const upstream = await startWebSocketUpstream();
    const harness = await startGatewayHarness(
      (issuerUrl) => `${configYaml(upstream.url)(issuerUrl)}server:\n  shutdown_grace: 8s\n`,
    );
    try {
      const wsUrl = harness.url.replace("http://", "ws://");
      const token = await harness.mint();
      const ws = opened(
        await openWebSocket(`${wsUrl}/ws/long`, { "gateway-authorization": `Bearer ${token}` }),
      );
      expect((await echo(ws, "before reload")).toString()).toBe("before reload");
      await harness.running.reload(harness.config);
      expect((await echo(ws, "after reload")).toString()).toBe("after reload");
      // Refused upgrades and upstream refusals are requests that are over: the stop must not wait for them.
      expect(await openWebSocket(`${wsUrl}/ws/echo`)).toMatchObject({ status: 401 });
      const refused = await openWebSocket(`${wsUrl}/ws/refuse`, {
        "gateway-authorization": `Bearer ${token}`,
      });
      expect(refused).toMatchObject({ status: 403 });

      const wasClosed = closed(ws);
      const stopping = Date.now();
      await harness.running.close();
      await wasClosed;
      // Far below the 8 s grace: only the open WebSocket's close (FIN both ways) was waited for.
      expect(Date.now() - stopping).toBeLessThan(4_000);
      const close = (await harness.auditEvents()).find((event) => event.event === "websocket.close");
      expect(close).toMatchObject({ reason: "shutdown", route: "ws" });
    } finally {
      await harness.close().catch(() => undefined);
      await upstream.close();
    }
  });
});

describe("WebSocket upgrades on a via route, through a connector", () => {
  const key = generateConnectorKey();
  let upstream: WebSocketUpstream;
  let outside: WebSocketUpstream;
  let harness: GatewayHarness;
  let connector: RunningConnector;

  beforeAll(async () => {
    upstream = await startWebSocketUpstream();
    outside = await startWebSocketUpstream();
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}policies:
  main: { claims: { repository: octo-org/octo-repo } }
connectors:
  - name: dc1
    public_keys: ["${key.publicKey}"]
routes:
  - name: inside
    path_prefix: /inside/
    upstream: ${upstream.url}
    allow: [main]
    via: dc1
  - name: not-allowed-by-connector
    path_prefix: /elsewhere/
    upstream: ${outside.url}
    allow: [main]
    via: dc1
`,
    );
    connector = startConnector({
      edges: [new URL(harness.url)],
      pool: "dc1",
      privateKey: parsePrivateKey(key.privateKeyPem),
      // The connector permits `upstream` only: the edge also routes to `outside`, which it must not reach.
      allow: patterns(`127.0.0.1:${new URL(upstream.url).port}`),
      logger: capturedLogger().logger,
      backoff: { baseMs: 20, maxMs: 200 },
    });
    await connector.waitConnected();
  });
  afterAll(async () => {
    await connector?.close();
    await harness?.close();
    await upstream?.close();
    await outside?.close();
  });

  it("carries an echo through the connector, audited with the pool and the bytes", async () => {
    const token = await harness.mint();
    const wsUrl = harness.url.replace("http://", "ws://");
    const ws = opened(
      await openWebSocket(`${wsUrl}/inside/echo`, { "gateway-authorization": `Bearer ${token}` }),
    );
    expect((await echo(ws, "through the connector")).toString()).toBe("through the connector");
    ws.close();
    await closed(ws);
    expect(upstream.upgrades.at(-1)?.["gateway-authorization"]).toBeUndefined();
    const close = await waitForEvent(harness, (event) => event.event === "websocket.close");
    expect(close).toMatchObject({ route: "inside", connector_pool: "dc1", reason: "closed" });
    expect(close.bytes_in).toBeGreaterThan("through the connector".length);
    expect(close.bytes_out).toBeGreaterThan("through the connector".length);
  });

  it("answers 502 when the connector refuses the upstream, which sees no connection", async () => {
    const token = await harness.mint();
    const wsUrl = harness.url.replace("http://", "ws://");
    const connections = outside.connections();
    const result = await openWebSocket(`${wsUrl}/elsewhere/echo`, {
      "gateway-authorization": `Bearer ${token}`,
    });
    expect(result).toMatchObject({ status: 502 });
    expect(outside.connections()).toBe(connections);
    expect(outside.upgrades).toHaveLength(0);
  });
});

describe("a WebSocket upgrade to an HTTPS upstream", () => {
  let certs: TestCertificates;
  let upstream: { url: string; upgrades: IncomingMessage[]; close(): Promise<void> };

  beforeAll(async () => {
    certs = await createTestCertificates();
    const upgrades: IncomingMessage[] = [];
    const server = createHttpsServer({ cert: certs.certPem, key: certs.keyPem });
    const wss = new WebSocketServer({ noServer: true });
    server.on("upgrade", (req: IncomingMessage, socket, head) => {
      upgrades.push(req);
      wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (data) => ws.send(data)));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    upstream = {
      url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
      upgrades,
      close: () =>
        new Promise<void>((resolve) => {
          for (const client of wss.clients) client.terminate();
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  });
  afterAll(async () => {
    await upstream?.close();
    await certs?.close();
  });

  /**
   * The gateway's last step alone, on a loopback server: the upgrade is handed to the WebSocket carrier as
   * the route pipeline hands it over once admitted (the gateway's forwarder trusts only the system's CAs,
   * so this one is given the test CA through its dispatcher factory).
   */
  async function startCarrierServer(trustTestCa: boolean) {
    const forwarder = createUpstreamForwarder(
      trustTestCa
        ? { dispatcherFactory: (origin) => new Pool(origin.origin, { connect: { ca: certs.caPem } }) }
        : {},
    );
    const events: AuditEvent[] = [];
    const carrier = createWebSocketCarrier({
      auditLog: { emit: (event) => events.push(event), flush: async () => {} },
      clock: systemClock,
      forwarder,
    });
    const route = testRoute({ name: "tls", upstream: new URL(upstream.url) });
    const server = createServer();
    server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      if (head.length > 0) socket.unshift(head);
      const res = responseOnUpgradeSocket(req, socket);
      const event: AuditEvent = {
        event: "gateway.request",
        request_id: "req-tls",
        decision: "allow",
        reason: "",
      };
      const context = { path: req.url ?? "/", search: "", requestId: "req-tls", clientIp: "127.0.0.1" };
      carrier
        .carry(
          req,
          res,
          route,
          { ...context, proto: "http", consumedHeaders: ["gateway-authorization"] },
          event,
        )
        .then(
          (carried) => events.push({ ...event, status: carried.status }),
          (error: unknown) => sendError(res, error, "req-tls"),
        );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
      url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
      events,
      async close() {
        await carrier.close();
        await forwarder.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  it("carries an echo over TLS to the upstream, verified against the CA it trusts", async () => {
    const gateway = await startCarrierServer(true);
    try {
      const ws = opened(
        await openWebSocket(`${gateway.url}/secure`, { "gateway-authorization": "Bearer x" }),
      );
      expect((await echo(ws, "over tls")).toString()).toBe("over tls");
      ws.close();
      await closed(ws);
      const seen = upstream.upgrades.at(-1)!;
      expect((seen.socket as TLSSocket).encrypted).toBe(true);
      expect(seen.headers["gateway-authorization"]).toBeUndefined();
      const deadline = Date.now() + 5_000;
      while (!gateway.events.some((event) => event.event === "websocket.close") && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(gateway.events.find((event) => event.event === "gateway.request")?.status).toBe(101);
      expect(gateway.events.find((event) => event.event === "websocket.close")).toMatchObject({
        reason: "closed",
        bytes_in: expect.any(Number),
        bytes_out: expect.any(Number),
      });
    } finally {
      await gateway.close();
    }
  });

  it("answers 502 when the upstream's certificate is not trusted, and no upgrade reaches it", async () => {
    const gateway = await startCarrierServer(false);
    try {
      const upgrades = upstream.upgrades.length;
      const result = await openWebSocket(`${gateway.url}/secure`);
      expect(result).toMatchObject({ status: 502 });
      expect((result as { body: string }).body).toContain("TG_UPSTREAM_UNAVAILABLE");
      expect(upstream.upgrades.length).toBe(upgrades);
    } finally {
      await gateway.close();
    }
  });
});
