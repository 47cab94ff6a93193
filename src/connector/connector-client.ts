import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import {
  createServer as createHttp2Server,
  constants as http2Constants,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
  sensitiveHeaders,
} from "node:http2";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { connect as connectTls, TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { isTollgateError } from "../errors/index.js";
import { type Clock, systemClock } from "../lib/clock.js";
import {
  type CompiledTunnel,
  candidateTunnels,
  checkAddresses,
  type DestinationPattern,
  type DialAddress,
  dialChecked,
  type LookupAll,
  parseAuthority,
  relayOf,
  resolveTarget,
  spliceSockets,
  systemDial,
  systemLookup,
  tunnelDefaults,
} from "../tunnel/index.js";
import { publicKeyOf } from "./connector-keys.js";
import { answerChallenge, channelBindingOf, http2Transport } from "./handshake.js";
import { defaultLinkPing, type LinkPing, watchLiveness } from "./liveness.js";
import {
  bindingHeader,
  callerHeader,
  carriedOnHeader,
  challengeHeader,
  connectionAuthority,
  connectionTicketHeader,
  connectorAuthority,
  connectorPoolHeader,
  helloPath,
  linkConnectionWindowBytes,
  linkStreamWindowBytes,
  sessionKeyHeader,
  signatureHeader,
  tokenHeader,
  welcomePath,
} from "./protocol.js";
import { createTunnelConnections } from "./tunnel-connections.js";

/** What `tollgate connector` runs with. */
export interface ConnectorOptions {
  /** Each edge to stay connected to (`https://edge.example.com`, or `http://` on loopback in tests). */
  readonly edges: readonly URL[];
  readonly pool: string;
  /** The connector's key (`tollgate connector keygen`); or else `tokenFile`. */
  readonly privateKey?: KeyObject;
  /**
   * Instead of a key: a file holding an OIDC token from the connector's platform (a Kubernetes projected
   * service-account token), read afresh at every challenge, so a token the platform rotated is the one sent.
   */
  readonly tokenFile?: string;
  /** The connector's own allow-list: a stream to anything else is refused, whatever the edge says. */
  readonly allow: readonly DestinationPattern[];
  /** PEM certificates to trust for the edges beside the system's. */
  readonly ca?: string;
  /**
   * The HTTP(S) proxy the connector's egress to an edge goes through (from `HTTPS_PROXY` and `NO_PROXY`;
   * user and password in the URL become Basic `Proxy-Authorization`), or `undefined` to dial it directly.
   */
  readonly proxyFor?: (edge: URL) => URL | undefined;
  readonly logger: Logger;
  /** The link's pings (default every 15 s, 10 s to answer). */
  readonly ping?: LinkPing;
  /** Backoff between reconnects: full jitter, doubling from `baseMs` to `maxMs`. */
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  readonly lookup?: LookupAll;
  readonly dial?: DialAddress;
  readonly clock?: Clock;
}

/** A running connector. */
export interface RunningConnector {
  /** Edges connected (and proven) now. */
  connected(): number;
  /** Resolves once every edge is connected (bounded by `timeoutMs`; rejects past it). */
  waitConnected(timeoutMs?: number): Promise<void>;
  /** Closes every link and stops reconnecting. */
  close(): Promise<void>;
}

/**
 * How many stream resets (RST_STREAM) from the edge the link takes: a burst of 10,000, then 1,000 a
 * second, where nghttp2's defence against rapid reset closes a session after 1,000 and 33 a second. The
 * edge resets a stream only to cancel it, when its caller went away or the answer came too late, so the
 * resets follow the callers, and the edge's own limits (a tunnel's `rate_limit`) are where callers are
 * bounded; at nghttp2's default, a thousand callers giving up at once would drop every tunnel of the
 * connector. Node 22 and 24 honour these options; Node 20 ignores them and keeps nghttp2's defaults.
 */
const linkResetTolerance = { streamResetBurst: 10_000, streamResetRate: 1_000 } as const;

/** A link that stayed up this long resets the backoff. */
const stableLinkMs = 30_000;

/**
 * Runs the connector: for each edge, an outbound connection (CONNECT to the edge's reserved authority,
 * then HTTP/2 with the edge as the client), kept up and re-dialled with jittered exponential backoff. On
 * it the connector answers the edge's challenge with its key and carries the streams the edge opens: an
 * HTTP/2 CONNECT stream per tunnel, checked against its own allow-list with the same rules as tunnels
 * (names resolved once here, every address checked, always-denied ranges unless named) and dialled to
 * exactly the checked address. A tunnel's bytes then travel on a connection of its own to the edge,
 * opened with the stream's ticket (tunnel-connections.ts), or on the stream when none can be opened.
 *
 * @example
 * const connector = startConnector({ edges: [new URL("https://edge.example.com")], pool: "dc1", privateKey, allow, logger });
 */
export function startConnector(options: ConnectorOptions): RunningConnector {
  const { logger } = options;
  if ((options.privateKey === undefined) === (options.tokenFile === undefined)) {
    throw new Error("a connector authenticates with exactly one of privateKey and tokenFile");
  }
  // With a token, the challenge is signed by a key of this process alone (never written down): the edge
  // then admits the token with this key only while the session lasts (handshake.ts).
  const signingKey = options.privateKey ?? generateKeyPairSync("ed25519").privateKey;
  const sessionKey = options.tokenFile === undefined ? undefined : publicKeyOf(signingKey);
  const clock = options.clock ?? systemClock;
  const backoff = options.backoff ?? { baseMs: 500, maxMs: 30_000 };
  // The allow-list as a tunnel, so the tunnel feature's matching, SSRF checks and dialling apply as they are.
  const allowed: CompiledTunnel = {
    name: "connector-allow-list",
    destinations: options.allow,
    access: { allow: [], deny: [] },
    idleTimeoutMs: tunnelDefaults.idleTimeoutMs,
    maxLifetimeMs: tunnelDefaults.maxLifetimeMs,
    connectTimeoutMs: tunnelDefaults.connectTimeoutMs,
  };
  const lookup = options.lookup ?? systemLookup;
  const dial = options.dial ?? systemDial;
  const links = new Set<Socket>();
  const streams = new Set<ServerHttp2Stream>();
  // Tunnels' connections of their own to an edge, and the one dialled ahead per edge.
  const connections = new Set<Socket>();
  const tunnelConnections = createTunnelConnections({
    ...(options.ca === undefined ? {} : { ca: options.ca }),
    throughProxy: (edge) => options.proxyFor?.(edge) !== undefined,
    viaProxy: (edge, headers) => connectToEdge(edge, connectionAuthority, headers),
  });
  let connectedCount = 0;
  let closed = false;
  const waiters = new Set<() => void>();
  const timers = new Set<NodeJS.Timeout>();

  for (const edge of options.edges) void keepConnected(edge);

  return {
    connected: () => connectedCount,
    waitConnected(timeoutMs = 10_000) {
      if (connectedCount === options.edges.length) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`connected to ${connectedCount} of ${options.edges.length} edges`));
        }, timeoutMs);
        const check = () => {
          if (connectedCount !== options.edges.length) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      for (const stream of streams) stream.destroy();
      tunnelConnections.close();
      for (const connection of connections) connection.destroy();
      for (const link of links) link.destroy();
    },
  };

  async function keepConnected(edge: URL): Promise<void> {
    let attempt = 0;
    while (!closed) {
      const started = clock();
      try {
        await linkOnce(edge);
      } catch (error) {
        logger.warn(
          {
            component: "connector",
            edge: edge.origin,
            error: error instanceof Error ? error.message : String(error),
          },
          "connection to the edge failed",
        );
      }
      if (closed) return;
      attempt = clock() - started >= stableLinkMs ? 0 : attempt + 1;
      const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(attempt, 20));
      // Full jitter: connectors that lost one edge at once do not come back at once.
      const delay = Math.random() * ceiling;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, delay);
        timers.add(timer);
      });
    }
  }

  /**
   * The connection to the edge when egress goes through a proxy (`HTTPS_PROXY`): a CONNECT to the edge
   * through the proxy, with TLS to the edge inside it for an `https:` edge. `undefined`: dial directly.
   */
  async function throughProxy(edge: URL, secure: boolean): Promise<Socket | undefined> {
    const proxy = options.proxyFor?.(edge);
    if (proxy === undefined) return undefined;
    const host = edge.hostname.replace(/^\[|\]$/g, "");
    const port = edge.port === "" ? (secure ? 443 : 80) : Number(edge.port);
    const authority = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    const credentials =
      proxy.username === ""
        ? {}
        : {
            "proxy-authorization": `Basic ${Buffer.from(
              `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`,
            ).toString("base64")}`,
          };
    const tunnel = await new Promise<Socket>((resolve, reject) => {
      const request = (proxy.protocol === "https:" ? httpsRequest : httpRequest)({
        host: proxy.hostname.replace(/^\[|\]$/g, ""),
        port: proxy.port === "" ? (proxy.protocol === "https:" ? 443 : 80) : Number(proxy.port),
        method: "CONNECT",
        path: authority,
        headers: { host: authority, ...credentials },
        agent: false,
      });
      request.setTimeout(10_000, () => request.destroy(new Error("the proxy did not answer in time")));
      request.on("error", reject);
      request.on("response", (response) => {
        response.resume();
        reject(new Error(`the proxy answered ${response.statusCode}`));
      });
      request.on("connect", (response, socket: Socket, head: Buffer) => {
        request.setTimeout(0);
        if (response.statusCode !== 200) {
          socket.destroy();
          reject(new Error(`the proxy answered ${response.statusCode} for ${authority}`));
          return;
        }
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      request.end();
    });
    if (!secure) return tunnel;
    return new Promise<Socket>((resolve, reject) => {
      const tls = connectTls({
        socket: tunnel,
        servername: host,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
      });
      tls.once("secureConnect", () => resolve(tls));
      tls.once("error", (error) => {
        tunnel.destroy();
        reject(error);
      });
    });
  }

  /**
   * A connection to the edge switched by CONNECT to `authority` (the link's, or a tunnel's own
   * connection's), directly or through the egress proxy; resolves with the socket once the edge said 200.
   */
  async function connectToEdge(
    edge: URL,
    authority: string,
    headers: Record<string, string>,
  ): Promise<Socket> {
    const secure = edge.protocol === "https:";
    const transport = await throughProxy(edge, secure);
    return new Promise((resolve, reject) => {
      const request =
        transport === undefined
          ? (secure ? httpsRequest : httpRequest)({
              host: edge.hostname.replace(/^\[|\]$/g, ""),
              port: edge.port === "" ? (secure ? 443 : 80) : Number(edge.port),
              method: "CONNECT",
              path: authority,
              headers: { host: authority, ...headers },
              agent: false,
              ...(secure
                ? { servername: edge.hostname, ...(options.ca === undefined ? {} : { ca: options.ca }) }
                : {}),
            })
          : httpRequest({
              method: "CONNECT",
              path: authority,
              headers: { host: authority, ...headers },
              createConnection: () => transport,
            });
      request.setTimeout(10_000, () => request.destroy(new Error("the edge did not answer in time")));
      request.on("error", reject);
      request.on("response", (response) => {
        response.resume();
        reject(new Error(`the edge answered ${response.statusCode}`));
      });
      request.on("connect", (response, socket: Socket, head: Buffer) => {
        request.setTimeout(0);
        if (response.statusCode !== 200) {
          socket.destroy();
          reject(new Error(`the edge answered ${response.statusCode}`));
          return;
        }
        if (head.length > 0) socket.unshift(head);
        // No Nagle (see connector-feature.ts): the link's small frames, a tunnel's small writes, go at once.
        socket.setNoDelay(true);
        resolve(socket);
      });
      request.end();
    });
  }

  /** One link: resolves when it closes, rejects when it could not be opened. */
  async function linkOnce(edge: URL): Promise<void> {
    const socket = await connectToEdge(edge, connectorAuthority, { [connectorPoolHeader]: options.pool });
    links.add(socket);
    let proven = false;
    const server = createHttp2Server({
      settings: { maxConcurrentStreams: 10_000, initialWindowSize: linkStreamWindowBytes },
      ...linkResetTolerance,
    });
    server.on("session", (session) => {
      session.once("connect", () => session.setLocalWindowSize(linkConnectionWindowBytes));
      // The link is its session: one that ends (the edge's GOAWAY, nghttp2's rapid-reset defence) takes the
      // socket with it, so the connector dials again. Node 20 can leave the socket open after its session
      // closed, and the connector counted itself connected on a dead link.
      session.once("close", () => socket.destroy());
      // The connector pings too: an edge that vanished, or a session Node 20 left stuck, ends the link
      // here as well, and the connector dials again instead of counting itself connected.
      watchLiveness(session, options.ping ?? defaultLinkPing, () => socket.destroy());
    });
    server.on("stream", (stream, headers) => {
      if (headers[":path"] === helloPath && headers[":method"] === "POST") {
        void answerHello(stream, headers, socket);
        return;
      }
      // The edge verified the answer and took this connector into its pool.
      if (headers[":path"] === welcomePath && headers[":method"] === "POST") {
        stream.respond({ ":status": 204 });
        stream.end();
        if (!proven) {
          proven = true;
          connectedCount += 1;
          tunnelConnections.keepSpare(edge);
          for (const waiter of [...waiters]) waiter();
          logger.info(
            { component: "connector", edge: edge.origin, pool: options.pool },
            "connected to the edge",
          );
        }
        return;
      }
      // Nothing is carried before the edge has checked the connector's key and said so.
      if (!proven) return void stream.close(http2Constants.NGHTTP2_REFUSED_STREAM);
      if (headers[":method"] === "CONNECT") return void carryTunnel(stream, headers, edge);
      stream.respond({ ":status": 501 });
      stream.end();
    });
    socket.on("error", () => undefined);
    return new Promise((resolve) => {
      socket.once("close", () => {
        links.delete(socket);
        tunnelConnections.dropSpare(edge);
        if (proven) connectedCount -= 1;
        server.close();
        logger.info({ component: "connector", edge: edge.origin }, "connection to the edge closed");
        resolve();
      });
      server.emit("connection", http2Transport(socket));
    });
  }

  /**
   * The edge's challenge (on connect, and again before a token expires): signed with the key, or with
   * the session key over the token read from the file now.
   */
  async function answerHello(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    socket: Socket,
  ): Promise<void> {
    stream.on("error", () => undefined);
    const challenge = headers[challengeHeader];
    if (typeof challenge !== "string" || headers[connectorPoolHeader] !== options.pool) {
      stream.respond({ ":status": 400 });
      stream.end();
      return;
    }
    const binding =
      headers[bindingHeader] === "tls-exporter" && socket instanceof TLSSocket
        ? channelBindingOf(socket)
        : undefined;
    if (options.tokenFile === undefined) {
      stream.respond({
        ":status": 200,
        [signatureHeader]: answerChallenge(signingKey, options.pool, challenge, binding),
      });
      stream.end();
      return;
    }
    const token = await readToken(options.tokenFile);
    if (stream.destroyed || stream.closed) return;
    if (token === undefined) {
      stream.respond({ ":status": 503 });
      stream.end();
      return;
    }
    stream.respond({
      ":status": 200,
      [signatureHeader]: answerChallenge(signingKey, options.pool, challenge, binding, token),
      [tokenHeader]: token,
      [sessionKeyHeader]: sessionKey,
      // Never into HPACK's table: the token is sent as a literal, each time.
      [sensitiveHeaders]: [tokenHeader],
    });
    stream.end();
  }

  /** The token in the file now (trimmed), or `undefined` when it cannot be read; never logged. */
  async function readToken(file: string): Promise<string | undefined> {
    try {
      const token = (await readFile(file, "utf8")).trim();
      if (token !== "") return token;
      logger.warn({ component: "connector", token_file: file }, "the token file is empty");
    } catch (error) {
      logger.warn(
        {
          component: "connector",
          token_file: file,
          error: (error as NodeJS.ErrnoException).code ?? "unreadable",
        },
        "cannot read the token file",
      );
    }
    return undefined;
  }

  /**
   * A tunnel stream: check the destination against the allow-list, dial exactly what was checked, and
   * carry the bytes. When the edge sent a ticket, on a connection of the tunnel's own to the edge, opened
   * while the destination is dialled (HTTP/2 moves bulk bytes at about half a plain hop's rate, see
   * `AwaitedConnection`); when that connection cannot be opened (an edge instance behind a load balancer
   * that sends it to another instance), on the stream itself, as for an edge that sends no ticket.
   */
  async function carryTunnel(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    edge: URL,
  ): Promise<void> {
    streams.add(stream);
    stream.once("close", () => streams.delete(stream));
    stream.on("error", () => undefined);
    const started = clock();
    const authority = headers[":authority"] ?? "";
    const caller = typeof headers[callerHeader] === "string" ? headers[callerHeader] : undefined;
    const ticket = headers[connectionTicketHeader];
    const line = { component: "connector", event: "connector.stream", destination: authority, caller };
    const target = parseAuthority(authority);
    if (target === undefined || candidateTunnels([allowed], target).length === 0) {
      logger.warn(
        { ...line, decision: "deny", reason: "outside the connector's allow-list" },
        "stream refused",
      );
      stream.respond({ ":status": 403 });
      stream.end();
      return;
    }
    const controller = new AbortController();
    stream.once("close", () => controller.abort());
    let own: Promise<Socket> | undefined;
    try {
      const deadline = clock() + allowed.connectTimeoutMs;
      const addresses = await resolveTarget(target, lookup, deadline, clock, controller.signal);
      const checked = checkAddresses([allowed], target, addresses);
      if ("refusal" in checked) {
        logger.warn({ ...line, decision: "deny", reason: checked.refusal }, "stream refused");
        stream.respond({ ":status": 403 });
        stream.end();
        return;
      }
      own = typeof ticket === "string" ? tunnelConnections.open(edge, ticket) : undefined;
      // Settled either way below: the destination's failure must not leave it unhandled.
      own?.catch(() => undefined);
      const { socket } = await dialChecked(
        checked.checked,
        target.port,
        deadline,
        clock,
        controller.signal,
        dial,
      );
      const connection = await own?.then(
        (opened) => opened,
        (error: Error) => {
          logger.warn(
            { ...line, edge: edge.origin, error: error.message },
            "could not open the tunnel's own connection to the edge: carrying it on the link",
          );
          return undefined;
        },
      );
      if (stream.destroyed || stream.closed) {
        socket.destroy();
        connection?.destroy();
        return;
      }
      const closedLine = (stats: { bytesIn: number; bytesOut: number }, carriedOn: string) =>
        logger.info(
          {
            ...line,
            decision: "allow",
            carried_on: carriedOn,
            bytes_in: stats.bytesIn,
            bytes_out: stats.bytesOut,
            duration_ms: clock() - started,
          },
          "stream closed",
        );
      if (connection !== undefined) {
        stream.respond({ ":status": 200, [carriedOnHeader]: "connection" });
        stream.end();
        connections.add(connection);
        // The edge keeps the tunnel's limits; this end follows its closes.
        spliceSockets(connection, socket, {
          idleTimeoutMs: neverMs,
          maxLifetimeMs: neverMs,
          onClose: (stats) => {
            connections.delete(connection);
            closedLine(stats, "connection");
          },
        });
        return;
      }
      stream.respond({ ":status": 200 });
      carryOnStream(stream, socket);
      socket.once("close", () =>
        closedLine({ bytesIn: socket.bytesWritten, bytesOut: socket.bytesRead }, "link"),
      );
    } catch (error) {
      void own?.then(
        (connection) => connection.destroy(),
        () => undefined,
      );
      const code = isTollgateError(error) ? error.code : "TG_TUNNEL_DESTINATION_UNREACHABLE";
      logger.warn({ ...line, decision: "error", reason: code }, "stream failed");
      if (!stream.destroyed && !stream.headersSent) {
        stream.respond({ ":status": code === "TG_TUNNEL_CONNECT_TIMEOUT" ? 504 : 502 });
        stream.end();
      }
    }
  }
}

/** The longest a timer waits (≈ 24.8 days): a connector's tunnel ends when the edge ends it. */
const neverMs = 2 ** 31 - 1;

/**
 * A tunnel's bytes on its HTTP/2 stream: the destination socket (dialled for a tunnel, so read through
 * its relay into reused buffers when it has one) to the stream, the stream piped to the socket.
 */
function carryOnStream(stream: ServerHttp2Stream, socket: Socket): void {
  const relay = relayOf(socket);
  if (relay === undefined) socket.pipe(stream);
  else {
    stream.on("drain", () => socket.resume());
    socket.on("end", () => stream.end());
    relay.start(stream, socket);
  }
  stream.pipe(socket);
  socket.on("error", () => stream.destroy());
  stream.once("close", () => socket.destroy());
  socket.once("close", () => stream.end());
}
