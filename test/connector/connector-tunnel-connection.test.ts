import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";
import {
  generateConnectorKey,
  parsePrivateKey,
  type RunningConnector,
  startConnector,
} from "../../src/connector/index.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import {
  closed,
  closedPort,
  type EchoServer,
  echoRoundTrip,
  eventually,
  rawConnect,
  startEchoServer,
} from "../tunnel/helpers.js";
import { capturedLogger, patterns } from "./helpers.js";

/**
 * A `via` tunnel's bytes travel on a connection of the tunnel's own, which the connector opens to the
 * edge with a one-time ticket sent on the authenticated link (HTTP/2 frames carry bulk bytes at about
 * half the rate of a plain hop: bench/README.md, issue 14). The connector reaches the edge through a
 * wiretap, a TCP forwarder on loopback that records what each connection sent and can refuse every
 * connection after the link, as a load balancer sending them to another edge instance would.
 */

/** One connection through the wiretap: what it sent towards the edge so far, and whether it is open. */
interface Tapped {
  text(): string;
  open(): boolean;
  destroy(): void;
}

interface Wiretap {
  readonly url: URL;
  /** Every connection through the wiretap, in order of arrival. */
  connections(): Tapped[];
  /** From now on, refuse every new connection, and close the idle ones (the link stays). */
  refuseNew(refuse: boolean): void;
  close(): Promise<void>;
}

async function startWiretap(edgePort: number): Promise<Wiretap> {
  const tapped: Tapped[] = [];
  const sockets = new Set<Socket>();
  let refusing = false;
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => undefined);
    if (refusing) return void client.destroy();
    const chunks: Buffer[] = [];
    let open = true;
    client.on("close", () => {
      open = false;
    });
    tapped.push({
      text: () => Buffer.concat(chunks).toString("latin1"),
      open: () => open,
      destroy: () => client.destroy(),
    });
    // Half-open, as a proxy passing tunnels on must be: one side's end is passed on, not answered.
    const edge = connect({ port: edgePort, host: "127.0.0.1", allowHalfOpen: true });
    sockets.add(edge);
    edge.on("close", () => sockets.delete(edge));
    edge.on("error", () => client.destroy());
    client.on("error", () => edge.destroy());
    client.on("data", (chunk: Buffer) => chunks.push(chunk));
    client.pipe(edge);
    edge.pipe(client);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    connections: () => [...tapped],
    refuseNew: (refuse) => {
      refusing = refuse;
      if (refuse) for (const connection of idle(tapped)) connection.destroy();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Connections open and silent so far: the connector's connection dialled ahead. */
const idle = (tapped: Tapped[]) =>
  tapped.filter((connection) => connection.open() && connection.text() === "");

const connectionRequest = /^CONNECT connection\.connector\.tollgate\.invalid:443 HTTP\/1\.1\r\n/;
/** The connections that carried a tunnel, in order of arrival. */
const tunnelConnections = (wiretap: Wiretap) =>
  wiretap.connections().filter((connection) => connectionRequest.test(connection.text()));
const ticketOf = (request: string) =>
  /\r\ntollgate-connection-ticket: ([A-Za-z0-9_-]+)\r\n/i.exec(request)?.[1];

describe("a via tunnel on a connection of its own", () => {
  const key = generateConnectorKey();
  let echo: EchoServer;
  let unreachable: number;
  let harness: GatewayHarness;
  let edgePort: number;
  let wiretap: Wiretap;
  let connector: RunningConnector;
  const connectorLog = capturedLogger();
  const configText = (issuerUrl: string, keys: string[]) => `${devIssuerYaml(issuerUrl)}policies:
  ci: { claims: { repository_owner_id: 65 } }
connectors:
  - name: dc1
    public_keys: [${keys.map((text) => `"${text}"`).join(", ")}]
tunnels:
  - name: private
    destinations: ["127.0.0.1:${echo.port}", "127.0.0.1:${unreachable}"]
    allow: [ci]
    via: dc1
`;

  beforeAll(async () => {
    echo = await startEchoServer();
    unreachable = await closedPort();
    harness = await startGatewayHarness((issuerUrl) => configText(issuerUrl, [key.publicKey]));
    edgePort = Number(new URL(harness.url).port);
    wiretap = await startWiretap(edgePort);
    connector = startConnector({
      edges: [wiretap.url],
      pool: "dc1",
      privateKey: parsePrivateKey(key.privateKeyPem),
      allow: patterns(`127.0.0.1:${echo.port}`, `127.0.0.1:${unreachable}`),
      logger: connectorLog.logger,
      backoff: { baseMs: 20, maxMs: 200 },
    });
    await connector.waitConnected();
  });
  afterEach(() => wiretap.refuseNew(false));
  afterAll(async () => {
    await connector?.close();
    await wiretap?.close();
    await harness?.close();
    await echo?.close();
  });

  /** Opens a tunnel through the edge to the echo server; resolves with the socket after one round trip. */
  async function openTunnel(text: string): Promise<Socket> {
    const answer = await rawConnect(edgePort, `127.0.0.1:${echo.port}`, {
      "proxy-authorization": `Bearer ${await harness.mint()}`,
    });
    expect(answer.status).toBe(200);
    expect(await echoRoundTrip(answer.socket, text, answer.rest)).toBe(text);
    return answer.socket;
  }

  it("is opened by the connector with the ticket the edge sent on the link; the audit counts the tunnel's bytes only", async () => {
    const before = tunnelConnections(wiretap).length;
    const socket = await openTunnel("on a connection of its own");
    const opened = tunnelConnections(wiretap).slice(before);
    expect(opened).toHaveLength(1);
    expect(ticketOf(opened[0]!.text())).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The tunnel's bytes follow the CONNECT on that connection, not the link's frames.
    expect(opened[0]!.text()).toContain("on a connection of its own");
    socket.end();
    await closed(socket);
    const events = await eventually(
      () => harness.auditEvents(),
      (list) => list.some((event) => event.event === "tunnel.close"),
    );
    expect(events.find((event) => event.event === "tunnel.close")).toMatchObject({
      tunnel: "private",
      bytes_in: 26,
      bytes_out: 26,
    });
    const line = await eventually(
      async () => connectorLog.lines().find((entry) => entry.msg === "stream closed"),
      (entry) => entry !== undefined,
    );
    expect(line).toMatchObject({ carried_on: "connection", bytes_in: 26, bytes_out: 26 });
  });

  it("keeps one connection dialled ahead while the link is up; a new tunnel's CONNECT goes on it", async () => {
    await eventually(
      async () => idle(wiretap.connections()).length,
      (count) => count === 1,
    );
    const spare = idle(wiretap.connections())[0]!;
    const socket = await openTunnel("on the connection dialled ahead");
    expect(spare.text()).toMatch(connectionRequest);
    expect(spare.text()).toContain("on the connection dialled ahead");
    // And the next one is dialled at once.
    await eventually(
      async () => idle(wiretap.connections()).length,
      (count) => count === 1,
    );
    socket.end();
    await closed(socket);
  });

  it("twin: one dialled ahead that was closed while it waited is not used; the tunnel gets a new one", async () => {
    await eventually(
      async () => idle(wiretap.connections()).length,
      (count) => count === 1,
    );
    const spare = idle(wiretap.connections())[0]!;
    spare.destroy();
    const before = tunnelConnections(wiretap).length;
    const socket = await openTunnel("on a new connection");
    expect(spare.text()).toBe("");
    expect(tunnelConnections(wiretap).slice(before)).toHaveLength(1);
    socket.end();
    await closed(socket);
  });

  /** Ends the client's side of a tunnel with its last bytes; resolves with what still came back. */
  async function lastWords(socket: Socket): Promise<string> {
    const rest: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => rest.push(chunk));
    socket.end("and last");
    await closed(socket);
    return Buffer.concat(rest).toString();
  }

  it("passes a half-close on: a client that ends its side still reads the whole answer", async () => {
    expect(await lastWords(await openTunnel("first"))).toBe("and last");
  });

  it("passes a half-close on when carried on the link too", async () => {
    wiretap.refuseNew(true);
    expect(await lastWords(await openTunnel("first"))).toBe("and last");
  });

  it("twin: its ticket, replayed, is refused and audited, and appears in no log", async () => {
    const before = tunnelConnections(wiretap).length;
    const socket = await openTunnel("ticket once");
    const ticket = ticketOf(tunnelConnections(wiretap)[before]!.text())!;
    const replayed = await rawConnect(edgePort, "connection.connector.tollgate.invalid:443", {
      "tollgate-connection-ticket": ticket,
    });
    expect(replayed.status).toBe(403);
    expect(JSON.parse(replayed.body).error.code).toBe("TG_POLICY_DENIED");
    expect(replayed.body).not.toContain(ticket);
    // The tunnel it opened is untouched by the replay.
    expect(await echoRoundTrip(socket, "still mine")).toBe("still mine");
    socket.end();
    await closed(socket);
    const events = await eventually(
      () => harness.auditEvents(),
      (list) =>
        list.some(
          (event) =>
            event.event === "connector.connect" &&
            event.decision === "deny" &&
            String(event.detail).includes("ticket"),
        ),
    );
    expect(
      events.filter((event) => event.event === "connector.connect" && event.decision === "deny"),
    ).toEqual([expect.objectContaining({ reason: "TG_POLICY_DENIED", client_ip: "127.0.0.1" })]);
    const everything = (await harness.allOutput()) + connectorLog.text();
    for (const form of [ticket, Buffer.from(ticket).toString("base64"), encodeURIComponent(ticket)]) {
      expect(everything).not.toContain(form);
    }
  });

  it("twin: a made-up ticket, and none at all, are refused", async () => {
    const attempts: Record<string, string>[] = [{ "tollgate-connection-ticket": "A".repeat(43) }, {}];
    for (const headers of attempts) {
      const answer = await rawConnect(edgePort, "connection.connector.tollgate.invalid:443", headers);
      expect(answer.status).toBe(403);
    }
  });

  it("is carried on the link instead when the connector cannot open a connection to this edge", async () => {
    wiretap.refuseNew(true);
    const before = tunnelConnections(wiretap).length;
    const socket = await openTunnel("on the link");
    expect(tunnelConnections(wiretap)).toHaveLength(before);
    socket.end();
    await closed(socket);
    // Its line: the one of 11 bytes each way carried on the link.
    await eventually(
      async () =>
        connectorLog
          .lines()
          .find(
            (entry) =>
              entry.msg === "stream closed" &&
              entry.carried_on === "link" &&
              entry.bytes_in === 11 &&
              entry.bytes_out === 11,
          ),
      (entry) => entry !== undefined,
    );
    expect(
      connectorLog
        .lines()
        .some((entry) => String(entry.msg).startsWith("could not open the tunnel's own connection")),
    ).toBe(true);
  });

  it("twin: a destination the connector cannot reach gets 502, and the connection it opened is closed", async () => {
    const answer = await rawConnect(edgePort, `127.0.0.1:${unreachable}`, {
      "proxy-authorization": `Bearer ${await harness.mint()}`,
    });
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body).error.code).toBe("TG_TUNNEL_DESTINATION_UNREACHABLE");
    // It was opened alongside the dial, and is given up with it: no tunnel's connection is left open.
    await eventually(
      async () => tunnelConnections(wiretap).filter((connection) => connection.open()).length,
      (count) => count === 0,
    );
  });

  it("keeps the link through more than a thousand tunnels opened and closed, allowed and refused (no stream resets)", async () => {
    const links = async () =>
      (await harness.auditEvents()).filter(
        (event) => event.event === "connector.connect" && event.decision === "allow",
      ).length;
    const before = await links();
    const token = await harness.mint();
    // nghttp2 closes a link after 1,000 resets in a burst: every tunnel below ends its stream cleanly.
    for (let batch = 0; batch < 24; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          rawConnect(edgePort, `127.0.0.1:${i % 5 === 0 ? unreachable : echo.port}`, {
            "proxy-authorization": `Bearer ${token}`,
          }),
        ),
      );
      expect(answers.map((answer) => answer.status)).toEqual(
        Array.from({ length: 50 }, (_, i) => (i % 5 === 0 ? 502 : 200)),
      );
      for (const answer of answers) answer.socket.destroy();
    }
    expect(connector.connected()).toBe(1);
    expect(await links()).toBe(before);
    const socket = await openTunnel("after the thousand");
    socket.end();
    await closed(socket);
  }, 60_000);

  it("ends when a reload removes the connector's key, with the link", async () => {
    const socket = await openTunnel("before the reload");
    const other = generateConnectorKey();
    const narrowed = compileConfigText(configText(harness.issuer.issuerUrl, [other.publicKey]), {
      env: {},
      sourceName: "reload.yaml",
    });
    await harness.running.reload(narrowed.config!);
    try {
      await closed(socket);
      expect(socket.destroyed).toBe(true);
      // Without its link, the connector keeps no connection dialled ahead.
      await eventually(
        async () => idle(wiretap.connections()).length,
        (count) => count === 0,
      );
    } finally {
      await harness.running.reload(harness.config);
      await eventually(
        async () => connector.connected(),
        (count) => count === 1,
      );
    }
  });
});
