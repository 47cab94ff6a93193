import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { egressProxy } from "../../src/cli/commands/connector.js";
import { generateConnectorKey, parsePrivateKey, startConnector } from "../../src/connector/index.js";
import { parseDestinationPattern } from "../../src/tunnel/index.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { closed, type EchoServer, echoRoundTrip, rawConnect, startEchoServer } from "../tunnel/helpers.js";

/** A connector whose egress goes through an HTTP proxy (HTTPS_PROXY), as in locked-down networks. */

interface EgressProxy {
  readonly url: string;
  /** The CONNECT targets it was asked for, with the Proxy-Authorization it got. */
  readonly asked: { target: string; authorization: string | undefined }[];
  close(): Promise<void>;
}

/** A CONNECT proxy requiring Basic user:secret, as corporate egress proxies do. */
async function startEgressProxy(): Promise<EgressProxy> {
  const asked: EgressProxy["asked"] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => res.writeHead(405).end());
  server.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    asked.push({ target: req.url ?? "", authorization: req.headers["proxy-authorization"] });
    sockets.add(client);
    if (req.headers["proxy-authorization"] !== `Basic ${Buffer.from("user:secret").toString("base64")}`) {
      client.end("HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    const [host, port] = (req.url ?? "").split(":");
    const upstream = connect(Number(port), host, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    asked,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("a connector behind an egress proxy", () => {
  const key = generateConnectorKey();
  let echo: EchoServer;
  let proxy: EgressProxy;
  let harness: GatewayHarness;

  beforeAll(async () => {
    echo = await startEchoServer();
    proxy = await startEgressProxy();
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}policies:
  ci: { claims: { repository_owner_id: 65 } }
connectors:
  - name: dc1
    public_keys: ["${key.publicKey}"]
tunnels:
  - name: private
    destinations: ["127.0.0.1:${echo.port}"]
    allow: [ci]
    via: dc1
`,
    );
  });
  afterAll(async () => {
    await harness?.close();
    await proxy?.close();
    await echo?.close();
  });

  function connectorThrough(proxyUrl: URL | undefined) {
    const allowed = parseDestinationPattern(`127.0.0.1:${echo.port}`);
    if (!("pattern" in allowed)) throw new Error("bad pattern");
    return startConnector({
      edges: [new URL(harness.url)],
      pool: "dc1",
      privateKey: parsePrivateKey(key.privateKeyPem),
      allow: [allowed.pattern],
      logger: pino(new PassThrough()),
      backoff: { baseMs: 50, maxMs: 100 },
      proxyFor: () => proxyUrl,
    });
  }

  it("reaches the edge through the proxy (with its credentials) and carries a tunnel", async () => {
    const edgeAuthority = new URL(harness.url).host;
    const connector = connectorThrough(new URL(`http://user:secret@${new URL(proxy.url).host}`));
    try {
      await connector.waitConnected();
      expect(proxy.asked.at(-1)).toEqual({
        target: edgeAuthority,
        authorization: `Basic ${Buffer.from("user:secret").toString("base64")}`,
      });
      const token = await harness.mint();
      const answer = await rawConnect(Number(new URL(harness.url).port), `127.0.0.1:${echo.port}`, {
        "proxy-authorization": `Bearer ${token}`,
      });
      expect(answer.status).toBe(200);
      expect(await echoRoundTrip(answer.socket, "via the egress proxy", answer.rest)).toBe(
        "via the egress proxy",
      );
      // The tunnel's connection of its own went through the proxy too, with the same credentials.
      expect(proxy.asked.slice(-2)).toEqual([
        { target: edgeAuthority, authorization: `Basic ${Buffer.from("user:secret").toString("base64")}` },
        { target: edgeAuthority, authorization: `Basic ${Buffer.from("user:secret").toString("base64")}` },
      ]);
      answer.socket.end();
      await closed(answer.socket);
    } finally {
      await connector.close();
    }
  });

  it("twin: a proxy that refuses the connector's credentials keeps it out", async () => {
    const connector = connectorThrough(new URL(`http://user:wrong@${new URL(proxy.url).host}`));
    try {
      await expect(connector.waitConnected(1_000)).rejects.toThrow(/connected to 0 of 1/);
      expect(proxy.asked.at(-1)?.authorization).toBe(`Basic ${Buffer.from("user:wrong").toString("base64")}`);
    } finally {
      await connector.close();
    }
  });
});

describe("egressProxy: which proxy the connector uses for an edge", () => {
  const https = new URL("https://edge.example.com");
  it("HTTPS_PROXY (or https_proxy) for an https edge, HTTP_PROXY for an http one", () => {
    expect(egressProxy(https, { HTTPS_PROXY: "http://proxy.corp:3128" })?.href).toBe(
      "http://proxy.corp:3128/",
    );
    expect(egressProxy(https, { https_proxy: "proxy.corp:3128" })?.href).toBe("http://proxy.corp:3128/");
    expect(egressProxy(new URL("http://edge.internal"), { HTTP_PROXY: "http://p:1" })?.href).toBe(
      "http://p:1/",
    );
    expect(egressProxy(https, { HTTP_PROXY: "http://p:1" })).toBeUndefined();
  });

  it("NO_PROXY names the edge exactly, by domain suffix, or *", () => {
    const env = { HTTPS_PROXY: "http://proxy.corp:3128" };
    for (const noProxy of [
      "edge.example.com",
      ".example.com",
      "example.com",
      "*.example.com",
      "*",
      "x, example.com:443",
    ]) {
      expect(egressProxy(https, { ...env, NO_PROXY: noProxy })).toBeUndefined();
    }
    // Twins: a name that only ends with the same letters is not excluded.
    for (const noProxy of ["ample.com", "other.com", "edge.example.com.evil"]) {
      expect(egressProxy(https, { ...env, NO_PROXY: noProxy })).toBeDefined();
    }
  });
});
