import { once } from "node:events";
import { type ClientHttp2Session, connect as connectHttp2, constants } from "node:http2";
import { createServer, type Server, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  generateConnectorKey,
  parsePrivateKey,
  type RunningConnector,
  startConnector,
} from "../../src/connector/index.js";
import { parseDestinationPattern } from "../../src/tunnel/index.js";
import { type EchoServer, eventually, startEchoServer } from "../tunnel/helpers.js";

/**
 * A compromised edge, as the connector sees it: it may open any stream it likes. The connector must refuse
 * what its allow-list does not name and survive a flood of streams opened and reset at once (the HTTP/2
 * rapid-reset pattern), still carrying legitimate streams afterwards. The "edge" here is the test's own
 * HTTP/2 client on the connector's link, so it can misbehave.
 */

interface HostileEdge {
  readonly url: string;
  /** Sessions in the order the connector linked (a new one after every reconnect). */
  readonly sessions: ClientHttp2Session[];
  close(): Promise<void>;
}

async function startHostileEdge(): Promise<HostileEdge> {
  const sessions: ClientHttp2Session[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end === -1) return;
      socket.off("data", onData);
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n", () => {
        const session = connectHttp2("http://connector.tollgate.invalid", { createConnection: () => socket });
        session.on("error", () => undefined);
        // The welcome, without asking for a key: this edge does not care who the connector is.
        const welcome = session.request(
          { ":method": "POST", ":path": "/_tollgate/welcome" },
          { endStream: true },
        );
        welcome.on("error", () => undefined);
        welcome.resume();
        sessions.push(session);
      });
    };
    socket.on("data", onData);
    socket.on("error", () => undefined);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    sessions,
    async close() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Opens a CONNECT stream on `session` and resolves with its status (0 when it closed without one). */
function connectStatus(session: ClientHttp2Session, authority: string): Promise<number> {
  return new Promise((resolve) => {
    const stream = session.request({ ":method": "CONNECT", ":authority": authority });
    stream.on("error", () => undefined);
    stream.once("response", (headers) => {
      resolve(Number(headers[":status"]));
      stream.close();
    });
    stream.once("close", () => resolve(0));
  });
}

describe("a connector under a hostile edge", () => {
  const key = generateConnectorKey();
  let echo: EchoServer;
  let secret: EchoServer;
  let edge: HostileEdge;
  let connector: RunningConnector;

  beforeAll(async () => {
    echo = await startEchoServer();
    secret = await startEchoServer();
    edge = await startHostileEdge();
    const allowed = parseDestinationPattern(`127.0.0.1:${echo.port}`);
    if (!("pattern" in allowed)) throw new Error("bad pattern");
    connector = startConnector({
      edges: [new URL(edge.url)],
      pool: "dc1",
      privateKey: parsePrivateKey(key.privateKeyPem),
      allow: [allowed.pattern],
      logger: pino(new PassThrough()),
      backoff: { baseMs: 20, maxMs: 200 },
      // Pings often, so a link the flood left dead (Node 20) is noticed within the test.
      ping: { everyMs: 250, timeoutMs: 2_000 },
    });
    await connector.waitConnected();
  });
  afterAll(async () => {
    await connector?.close();
    await edge?.close();
    await echo?.close();
    await secret?.close();
  });

  it("refuses a stream to anything its allow-list does not name (loopback ports included), reaching nothing", async () => {
    const session = edge.sessions.at(-1)!;
    const before = secret.connections();
    expect(await connectStatus(session, `127.0.0.1:${secret.port}`)).toBe(403);
    expect(await connectStatus(session, "169.254.169.254:80")).toBe(403);
    expect(await connectStatus(session, "metadata.google.internal:80")).toBe(403);
    expect(secret.connections()).toBe(before);
    // Twin: the allowed destination is carried.
    expect(await connectStatus(session, `127.0.0.1:${echo.port}`)).toBe(200);
  });

  it("survives 5,000 streams opened and reset at once, and carries a legitimate stream afterwards", async () => {
    const session = edge.sessions.at(-1)!;
    for (let index = 0; index < 5_000 && !session.destroyed; index++) {
      const stream = session.request({ ":method": "CONNECT", ":authority": `127.0.0.1:${secret.port}` });
      stream.on("error", () => undefined);
      stream.close(constants.NGHTTP2_CANCEL);
    }
    // Node may answer the flood by closing the session (its rapid-reset defence); the connector then
    // reconnects. Either way it is alive and carries the next legitimate stream.
    expect(await carriesAgain()).toBe(200);
    expect(connector.connected()).toBe(1);
  });
  /**
   * Resolves with 200 once the connector's latest link carries a stream to the echo server (after a
   * flood it may be reconnecting: a link that closes under the attempt counts as not yet).
   */
  const carriesAgain = () =>
    eventually(
      async () => {
        const latest = edge.sessions.at(-1)!;
        if (latest.destroyed || latest.closed) return 0;
        try {
          return await connectStatus(latest, `127.0.0.1:${echo.port}`);
        } catch {
          return 0;
        }
      },
      (status) => status === 200,
    );

  /** The live session of the connector's link, once there is one (after a flood it may have reconnected). */
  const liveSession = () =>
    eventually(
      async () => edge.sessions.at(-1)!,
      (latest) => !latest.destroyed && !latest.closed,
    );

  /** Opens and resets `count` streams on `session` (yielding every 100), as an edge cancelling them would. */
  async function resetStreams(session: ClientHttp2Session, count: number): Promise<void> {
    for (let index = 0; index < count && !session.destroyed && !session.closed; index++) {
      // To a destination the connector refuses: the test is about the resets, not about dialling.
      const stream = session.request({ ":method": "CONNECT", ":authority": `127.0.0.1:${secret.port}` });
      stream.on("error", () => undefined);
      stream.close(constants.NGHTTP2_CANCEL);
      // Yielding lets the connector's answer (a GOAWAY, once past its tolerance) arrive.
      if (index % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }

  const nodeMajor = Number(process.versions.node.split(".")[0]);

  it("takes a burst of 3,000 cancelled streams from its edge on the same link (Node ≥ 22; Node 20 keeps nghttp2's 1,000)", async () => {
    const session = await liveSession();
    await resetStreams(session, 3_000);
    if (nodeMajor >= 22) {
      expect(session.destroyed || session.closed).toBe(false);
      expect(await connectStatus(session, `127.0.0.1:${echo.port}`)).toBe(200);
    } else {
      expect(session.destroyed || session.closed).toBe(true);
    }
  });

  it("twin: a flood beyond the tolerance still closes the link, and the connector comes back", async () => {
    const session = await liveSession();
    await resetStreams(session, 12_000);
    expect(session.destroyed || session.closed).toBe(true);
    // The connector notices (at once on Node 24, by its ping on Node 20) and dials again; the next link
    // carries.
    expect(await carriesAgain()).toBe(200);
  }, 30_000);
});
