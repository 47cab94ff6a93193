import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { connect as connectTls } from "node:tls";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  generateConnectorKey,
  parsePrivateKey,
  type RunningConnector,
  startConnector,
} from "../../src/connector/index.js";
import {
  devIssuerYaml,
  type GatewayHarness,
  startGatewayHarness,
  testAudience,
} from "../helpers/gateway-harness.js";
import { createTestCertificates, type TestCertificates } from "../helpers/tls-fixture.js";
import { type EchoServer, eventually, startEchoServer } from "../tunnel/helpers.js";
import { capturedLogger, patterns } from "./helpers.js";

/**
 * The link over TLS, with the edge terminating it (`listen.tls`): the connector trusts the edge's
 * certificate through `ca`, and its signature is bound to the TLS session (RFC 5705 keying material).
 */

const silent = pino(new PassThrough());

describe("a connector linked over TLS", () => {
  const key = generateConnectorKey();
  let certs: TestCertificates;
  let echo: EchoServer;
  let harness: GatewayHarness;
  let edgeUrl: URL;
  let connector: RunningConnector | undefined;

  beforeAll(async () => {
    certs = await createTestCertificates();
    const certFile = join(certs.dir, "edge.pem");
    const keyFile = join(certs.dir, "edge.key");
    await writeFile(certFile, certs.certPem);
    await writeFile(keyFile, certs.keyPem);
    echo = await startEchoServer();
    harness = await startGatewayHarness(
      (issuerUrl) => `listen:
  tls: { cert: ${certFile}, key: ${keyFile} }
${devIssuerYaml(issuerUrl)}policies:
  ci: { claims: { repository_owner_id: 65 } }
  cluster-connector: { claims: { sub: "system:serviceaccount:tollgate:connector" } }
connectors:
  - name: dc1
    public_keys: ["${key.publicKey}"]
  - name: dc2
    allow: [cluster-connector]
tunnels:
  - name: private
    destinations: ["127.0.0.1:${echo.port}"]
    allow: [ci]
    via: dc1
`,
    );
    edgeUrl = new URL(harness.url.replace("http://", "https://"));
  });
  afterAll(async () => {
    await connector?.close();
    await harness?.close();
    await echo?.close();
    await certs?.close();
  });

  it("connects with the edge's CA, proves its key bound to the TLS session, and carries a tunnel on a TLS connection of its own", async () => {
    const log = capturedLogger();
    connector = startConnector({
      edges: [edgeUrl],
      pool: "dc1",
      privateKey: parsePrivateKey(key.privateKeyPem),
      allow: patterns(`127.0.0.1:${echo.port}`),
      ca: certs.caPem,
      logger: log.logger,
      backoff: { baseMs: 20, maxMs: 200 },
    });
    await connector.waitConnected();
    const token = await harness.mint();
    // A workflow's CONNECT over TLS to the edge, through the connector, to the echo server.
    const socket = connectTls({
      host: "127.0.0.1",
      port: Number(edgeUrl.port),
      ca: certs.caPem,
      servername: "localhost",
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", () => resolve());
      socket.once("error", reject);
    });
    socket.write(
      `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nhost: 127.0.0.1:${echo.port}\r\nproxy-authorization: Bearer ${token}\r\n\r\n`,
    );
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("utf8");
      if (received.includes("\r\n\r\n") && !received.includes("ping")) socket.write("ping");
    });
    await eventually(
      async () => received,
      (text) => text.includes("ping"),
    );
    expect(received).toMatch(/^HTTP\/1\.1 200/);
    socket.destroy();
    const events = await harness.auditEvents();
    expect(events.find((event) => event.event === "connector.connect")).toMatchObject({ decision: "allow" });
    // Its bytes went on the connection the connector opened with the ticket, verified with the same CA.
    const line = await eventually(
      async () => log.lines().find((entry) => entry.msg === "stream closed"),
      (entry) => entry !== undefined,
    );
    expect(line).toMatchObject({ carried_on: "connection", bytes_in: 4, bytes_out: 4 });
  });

  it("a connector with a token file joins over TLS, its token answer bound to the TLS session", async () => {
    const token = await harness.issuer.mint(
      { sub: "system:serviceaccount:tollgate:connector" },
      { audience: testAudience },
    );
    const tokenFile = join(certs.dir, "token");
    await writeFile(tokenFile, token);
    const tokenConnector = startConnector({
      edges: [edgeUrl],
      pool: "dc2",
      tokenFile,
      allow: patterns(`127.0.0.1:${echo.port}`),
      ca: certs.caPem,
      logger: silent,
      backoff: { baseMs: 20, maxMs: 200 },
    });
    try {
      await tokenConnector.waitConnected();
      const events = await harness.auditEvents();
      expect(
        events.find((event) => event.event === "connector.connect" && event.connector_pool === "dc2"),
      ).toMatchObject({ decision: "allow", policy: "cluster-connector" });
    } finally {
      await tokenConnector.close();
    }
  });

  it("twin: a connector that does not trust the edge's certificate never connects", async () => {
    const untrusting = startConnector({
      edges: [edgeUrl],
      pool: "dc1",
      privateKey: parsePrivateKey(key.privateKeyPem),
      allow: patterns(`127.0.0.1:${echo.port}`),
      logger: silent,
      backoff: { baseMs: 50, maxMs: 100 },
    });
    try {
      await expect(untrusting.waitConnected(1_000)).rejects.toThrow(/connected to 0 of 1/);
    } finally {
      await untrusting.close();
    }
  });
});
