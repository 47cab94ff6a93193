import { once } from "node:events";
import {
  type ClientHttp2Session,
  connect as connectHttp2,
  createServer as createHttp2Server,
  type ServerHttp2Session,
} from "node:http2";
import { connect as connectTcp, createServer, type Server, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { generateConnectorKey, parsePrivateKey, startConnector } from "../../src/connector/index.js";
import {
  connectorAuthority,
  connectorPoolHeader,
  linkConnectionWindowBytes,
  linkStreamWindowBytes,
} from "../../src/connector/protocol.js";
import { devIssuerYaml, startGatewayHarness } from "../helpers/gateway-harness.js";
import { eventually } from "../tunnel/helpers.js";
import { patterns } from "./helpers.js";

/**
 * The link's HTTP/2 flow-control windows, as each end announces them to the other. Node's defaults (64 KiB
 * per stream and per connection) made a bulk tunnel through a connector stall every 64 KiB
 * (bench/connector.mjs); each end now grants `linkStreamWindowBytes` per stream and
 * `linkConnectionWindowBytes` per link. Each side is checked from the far end of a real link, and each
 * check has a twin showing Node's defaults, so the checks can tell the two apart.
 */

/** What one end of a link granted the other: its stream window setting and its connection window. */
function granted(session: ClientHttp2Session | ServerHttp2Session) {
  return {
    stream: session.remoteSettings.initialWindowSize,
    // The far end's connection window as this end may use it (nothing sent yet, so all of it).
    connection: session.state.remoteWindowSize,
  };
}

/**
 * What the far end granted, once its SETTINGS and WINDOW_UPDATE arrived: polled until it equals `expected`
 * (or for 5 s, when the assertion then shows what it is).
 */
async function settled(
  session: ClientHttp2Session | ServerHttp2Session,
  expected: { stream: number; connection: number },
) {
  return eventually(
    async () => granted(session),
    (value) => value.stream === expected.stream && value.connection === expected.connection,
  );
}

const linkWindows = { stream: linkStreamWindowBytes, connection: linkConnectionWindowBytes };
const nodeDefaults = { stream: 65_535, connection: 65_535 };

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A stand-in edge: answers the connector's CONNECT, then is the HTTP/2 client on its socket. */
async function fakeEdge(): Promise<{ url: string; session: Promise<ClientHttp2Session> }> {
  let linked: (session: ClientHttp2Session) => void = () => undefined;
  const session = new Promise<ClientHttp2Session>((resolve) => {
    linked = resolve;
  });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.once("data", () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n", () => {
        const client = connectHttp2("http://connector.tollgate.invalid", { createConnection: () => socket });
        client.on("error", () => undefined);
        cleanups.push(() => client.destroy());
        linked(client);
      });
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, session };
}

/** A stand-in connector: CONNECTs to the edge, then is an HTTP/2 server on that socket. */
async function fakeConnector(edgeUrl: string): Promise<ServerHttp2Session> {
  const socket = connectTcp({ host: "127.0.0.1", port: Number(new URL(edgeUrl).port) });
  socket.on("error", () => undefined);
  cleanups.push(() => void socket.destroy());
  await once(socket, "connect");
  socket.write(
    `CONNECT ${connectorAuthority} HTTP/1.1\r\nhost: ${connectorAuthority}\r\n${connectorPoolHeader}: dc1\r\n\r\n`,
  );
  // The edge's HTTP/2 preface may follow its answer in the same read: give that back to the socket.
  let answer = Buffer.alloc(0);
  while (answer.indexOf("\r\n\r\n") === -1)
    answer = Buffer.concat([answer, ((await once(socket, "data")) as [Buffer])[0]]);
  socket.pause();
  const end = answer.indexOf("\r\n\r\n") + 4;
  if (end < answer.length) socket.unshift(answer.subarray(end));
  expect(answer.toString("latin1")).toMatch(/^HTTP\/1\.1 200/);
  const server = createHttp2Server();
  const session = once(server, "session") as Promise<[ServerHttp2Session]>;
  // The edge's first stream asks for a signature; unanswered here, as only the settings matter.
  server.on("stream", () => undefined);
  server.emit("connection", socket);
  return (await session)[0];
}

describe("the connector link's flow-control windows", () => {
  it("the connector grants the edge a 1 MiB window per stream and 16 MiB per link", async () => {
    const edge = await fakeEdge();
    const connector = startConnector({
      edges: [new URL(edge.url)],
      pool: "dc1",
      privateKey: parsePrivateKey(generateConnectorKey().privateKeyPem),
      allow: patterns("127.0.0.1:9"),
      logger: pino(new PassThrough()),
      backoff: { baseMs: 20, maxMs: 200 },
    });
    cleanups.push(() => connector.close());
    const session = await edge.session;
    expect(await settled(session, linkWindows)).toEqual(linkWindows);
  });

  it("the edge grants a connector a 1 MiB window per stream and 16 MiB per link", async () => {
    const key = generateConnectorKey();
    const harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}connectors:
  - name: dc1
    public_keys: ["${key.publicKey}"]
`,
    );
    cleanups.push(() => harness.close());
    const session = await fakeConnector(harness.url);
    expect(await settled(session, linkWindows)).toEqual(linkWindows);
  });

  it("twin: an HTTP/2 end left at Node's defaults grants 64 KiB of each, which the checks above tell apart", async () => {
    const edge = await fakeEdge();
    const session = fakeConnector(edge.url);
    const [client, server] = await Promise.all([edge.session, session]);
    expect(await settled(client, nodeDefaults)).toEqual(nodeDefaults);
    expect(await settled(server, nodeDefaults)).toEqual(nodeDefaults);
    expect(linkStreamWindowBytes).toBeGreaterThan(65_535);
  });
});
