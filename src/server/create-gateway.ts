import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer, type Server as TlsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { AuditLog } from "../audit/types.js";
import { createViaDispatcher } from "../connector/via-dispatcher.js";
import { TollgateError } from "../errors/index.js";
import { type Clock, systemClock } from "../lib/clock.js";
import { awaitContinue } from "../lib/expect-continue.js";
import type { Metrics } from "../metrics/metrics.js";
import type { ConnectorPools } from "../pipeline/connectors.js";
import { sendError } from "../pipeline/send-error.js";
import { sendJson } from "../pipeline/send-json.js";
import { clientAddress, createUpstreamForwarder, socketAddress } from "../proxy/index.js";
import type { GatewayLifecycle } from "./gateway-lifecycle.js";
import { listenOn } from "./listen-on.js";
import { createRoutePipeline } from "./route-pipeline.js";
import { hasDeclaredBody, responseOnUpgradeSocket } from "./upgrade-response.js";
import { createWebSocketCarrier, isWebSocketUpgrade } from "./websocket-carrier.js";

/** A client that connects and never finishes its TLS handshake is dropped after this (Node: 120 s). */
export const defaultTlsHandshakeTimeoutMs = 10_000;

/** What a gateway is built from; everything from outside is injected so tests can use real loopback parts. */
export interface GatewayOptions {
  /** Owns the configuration, verifier and features requests are served under (and their reloads). */
  lifecycle: GatewayLifecycle;
  auditLog: AuditLog;
  logger: Logger;
  clock?: Clock;
  /** Overrides `config.listen` (tests listen on port 0). */
  listen?: { host?: string; port?: number };
  /** Served at `GET /metrics` when `server.metrics` is on. */
  metrics?: Metrics;
  /** With `listen.tls`: the PEM certificate chain and key (read by `startGateway`); the server speaks HTTPS. */
  tls?: TlsMaterial;
  /** With `tls`: how long a client has to finish its handshake (default 10 s; tests shorten it). */
  tlsHandshakeTimeoutMs?: number;
  /** The connectors connected to this edge: `via` routes send their requests through them. */
  connectorPools?: ConnectorPools;
}

/** A certificate chain and its private key, PEM. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/** A running (or ready to run) gateway: one HTTP server and its request pipeline. */
export interface Gateway {
  readonly server: Server;
  /** Starts listening; resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /**
   * Graceful stop: stop accepting, let in-flight requests finish for up to `server.shutdownGraceMs`,
   * then close what is left (through the lifecycle: features and verifier) and flush the audit log.
   */
  close(): Promise<void>;
  /** The address once listening. */
  address(): AddressInfo;
  /**
   * Replaces the certificate and key of an HTTPS gateway (a renewed certificate, on SIGHUP): new
   * connections get them, open ones keep theirs. Throws when the gateway speaks plain HTTP, or when the
   * key does not fit the certificate (the old pair stays).
   */
  updateTls(material: TlsMaterial): void;
}

/**
 * Builds the gateway's HTTP server. The per-request pipeline is: normalise path → route → method →
 * token → verify (cached by token hash) → policy → forward → one audit event. Every failure is a
 * {@link TollgateError} mapped by one function to status and JSON body.
 *
 * @example
 * const gateway = createGateway({ lifecycle, auditLog, logger });
 * await gateway.listen();
 */
export function createGateway(options: GatewayOptions): Gateway {
  const { auditLog, logger } = options;
  const { lifecycle } = options;
  // Listening address and header limits come from the first configuration; changing them needs a restart.
  const startConfig = lifecycle.active.config;
  const clock = options.clock ?? systemClock;
  const connectorPools = options.connectorPools;
  const forwarder = createUpstreamForwarder(
    connectorPools === undefined
      ? {}
      : {
          viaDispatcherFactory: (pool, origin, connections) =>
            createViaDispatcher(connectorPools, pool, origin, connections),
        },
  );
  // A count, not a Set of responses: draining only needs the number, and a Set churned once per request
  // keeps retired tables (and the responses in them) alive across scavenges (bench/README.md, "GC").
  let inFlight = 0;
  const onResponseClosed = (): void => {
    inFlight -= 1;
  };
  let draining = false;

  // X-Forwarded-Proto for upstreams: what the client spoke to tollgate.
  const proto = options.tls === undefined ? "http" : "https";
  const serveRoute = createRoutePipeline({ auditLog, logger, clock, forwarder, proto });
  // WebSocket upgrades go through the same pipeline; only its last step differs. Open WebSockets belong
  // to the gateway, not to a configuration: a reload leaves them open, a stop closes them.
  const websockets = createWebSocketCarrier({ auditLog, clock, forwarder });
  const serveUpgrade = createRoutePipeline({
    auditLog,
    logger,
    clock,
    forwarder,
    proto,
    carrier: websockets,
  });
  const onRequest = (req: IncomingMessage, res: ServerResponse, serve: RouteServer = serveRoute): void => {
    inFlight += 1;
    // `on`, not `once`: a response closes once anyway, and `once` would wrap the listener per request.
    res.on("close", onResponseClosed);
    if (draining) res.setHeader("connection", "close");
    handleRequest(req, res, serve).catch((error: unknown) => {
      // handleRequest answers its own errors; reaching here is a bug, never a reason to crash.
      logger.error({ err: error }, "request pipeline failed unexpectedly");
      if (!res.headersSent) sendError(res, new TollgateError("TG_INTERNAL", "unexpected"), "unknown");
      else res.destroy();
    });
  };
  const serverOptions = { maxHeaderSize: startConfig.server.maxHeaderBytes };
  const server: Server =
    options.tls === undefined
      ? createServer(serverOptions, onRequest)
      : createTlsServer(
          // A client that connects and never finishes the handshake is dropped after 10 s (Node: 120 s).
          {
            ...serverOptions,
            cert: options.tls.cert,
            key: options.tls.key,
            handshakeTimeout: options.tlsHandshakeTimeoutMs ?? defaultTlsHandshakeTimeoutMs,
          },
          onRequest,
        );
  // Sockets still in their TLS handshake are not HTTP connections yet, so closeAllConnections() does not
  // see them; a graceful stop destroys them itself once its grace is over. The set holds every TCP
  // connection of the TLS port until it closes (a connection, not a request: it stays small and cold).
  const tcpConnections = new Set<Socket>();
  if (options.tls !== undefined) {
    server.on("connection", (socket: Socket) => {
      tcpConnections.add(socket);
      socket.once("close", () => tcpConnections.delete(socket));
    });
  }
  // An address blocked by listen.auth_failures is refused at the connection, before any HTTP is parsed:
  // a flood's 429s would still cost the gateway a request's worth of work each (bench/README.md,
  // "Abuse controls"). Only where the socket's peer is the client: behind a load balancer
  // (trust_proxy) the peer is the balancer, and the throttle answers per request instead.
  server.on("connection", (socket: Socket) => {
    const { config, controls } = lifecycle.active;
    if (config.server.trustProxy || controls.authFailures === undefined) return;
    const address = socketAddress(socket);
    if (!controls.authFailures.blocked(address)) return;
    socket.destroy();
    // Audited like any denial: a flood's refusals fold into one counted line per address and window.
    auditLog.emit({
      event: "connection.refused",
      request_id: randomUUID(),
      decision: "deny",
      reason: "TG_RATE_LIMITED",
      client_ip: address,
      limit: "listen.auth_failures",
    });
  });
  // Expect: 100-continue is answered by the pipeline once it admits the request, not by Node up front.
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    awaitContinue(res);
    onRequest(req, res);
  });
  // A hostile client must not be able to hold a socket forever while sending headers.
  server.headersTimeout = 20_000;
  server.requestTimeout = 0; // Long uploads and downloads are legitimate; routes bound upstream time.
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    // Node answers malformed requests itself (400/431); keep its answer short and never echo input.
    // Only HTTP parse errors (HPE_*) get an answer: the others are a reset or, on the TLS port, a failed
    // or timed-out handshake, where an HTTP answer could only wait for a handshake that never comes
    // (the socket would stay open, and hold a graceful stop open, for good).
    if (!socket.writable || !error.code?.startsWith("HPE_")) return socket.destroy();
    const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? "Request Header Fields Too Large" : "Bad Request"}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
    );
  });

  // A request with `Connection: upgrade` arrives here (Node takes it off the HTTP parser), with a bare
  // socket: it gets a response object on that socket and goes through the same dispatch as any request.
  // A WebSocket upgrade that reaches the routes is carried by the upgrade pipeline. Any other protocol is
  // not switched to: a body-less request is served as a plain one (RFC 9110 §7.8 lets a server ignore
  // Upgrade; `curl --http2` on http:// sends `Upgrade: h2c`), one with a body, which has left the parser
  // unread, is refused by the upgrade pipeline.
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const client = socket as Socket;
    // Node removed its own error listener from the socket: without one, a reset would crash the process.
    client.on("error", ignoreError);
    if (head.length > 0) client.unshift(head);
    const carried = isWebSocketUpgrade(req) || hasDeclaredBody(req);
    onRequest(req, responseOnUpgradeSocket(req, client), carried ? serveUpgrade : serveRoute);
  });

  server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const { config, verifier, features } = lifecycle.active;
    const feature = features.find(
      (candidate) => candidate.handleConnect !== undefined && candidate.claimsConnect?.(req) !== false,
    );
    if (feature === undefined || draining) {
      const status = draining ? "503 Service Unavailable" : "405 Method Not Allowed";
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    feature.handleConnect!(req, socket, head, {
      requestId: randomUUID(),
      clientIp: clientAddress(req, config.server.trustProxy),
      startedMs: clock(),
      verifier,
      auditLog,
      logger,
      clock,
    });
  });

  async function handleRequest(req: IncomingMessage, res: ServerResponse, serve: RouteServer): Promise<void> {
    const started = clock();
    const active = lifecycle.active;
    const { config, verifier, features } = active;
    const requestId = randomUUID();
    const rawUrl = req.url ?? "/";

    if (req.method === "GET" || req.method === "HEAD") {
      if (rawUrl === "/healthz") return sendJson(res, 200, { status: "ok" });
      if (rawUrl === "/readyz") return sendReadiness(res);
      if (rawUrl === "/metrics" && options.metrics !== undefined && config.server.metrics) {
        const text = await options.metrics.render();
        res.writeHead(200, { "content-type": options.metrics.contentType });
        return void res.end(text);
      }
    }

    const clientIp = clientAddress(req, config.server.trustProxy);
    for (const feature of features) {
      if (feature.handleRequest === undefined || feature.claimsRequest?.(req) !== true) continue;
      try {
        if (draining) throw new TollgateError("TG_SHUTTING_DOWN", "gateway is draining");
        const context = {
          requestId,
          clientIp,
          startedMs: started,
          verifier,
          auditLog,
          logger,
          clock,
        };
        await feature.handleRequest(req, res, context);
      } catch (error) {
        sendError(res, error, requestId);
        if (!(error instanceof TollgateError)) {
          logger.error(
            { err: error, request_id: requestId, feature: feature.name },
            "feature failed unexpectedly",
          );
        }
      }
      return;
    }

    await serve(req, res, active, requestId, started, clientIp, draining);
  }

  function sendReadiness(res: ServerResponse): void {
    const active = lifecycle.active;
    const issuers = active.verifier.status();
    const features = active.features.flatMap((feature) =>
      feature.readiness === undefined ? [] : [{ feature: feature.name, ...feature.readiness() }],
    );
    const ready = !draining && active.verifier.isReady() && features.every((feature) => feature.ready);
    sendJson(res, ready ? 200 : 503, {
      status: ready ? "ready" : "not-ready",
      issuers: issuers.map(({ issuer, ready: issuerReady }) => ({ issuer, ready: issuerReady })),
      ...(features.length > 0 ? { features } : {}),
    });
  }

  return {
    server,
    listen: () =>
      listenOn(
        server,
        options.listen?.port ?? startConfig.listen.port,
        options.listen?.host ?? startConfig.listen.host,
      ),
    address: () => server.address() as AddressInfo,
    updateTls(material) {
      if (options.tls === undefined)
        throw new Error("this gateway speaks plain HTTP: listen.tls needs a restart");
      (server as unknown as TlsServer).setSecureContext({ cert: material.cert, key: material.key });
    },
    async close() {
      if (draining) return;
      draining = true;
      lifecycle.stopping();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive sockets with no request in flight would hold server.close() open until they time out.
      server.closeIdleConnections();
      const graceOver = new Promise<"timeout">((resolve) =>
        setTimeout(() => resolve("timeout"), lifecycle.active.config.server.shutdownGraceMs).unref(),
      );
      const drained = new Promise<void>((resolve) => {
        const check = () => (inFlight === 0 ? resolve() : setTimeout(check, 25).unref());
        check();
      });
      if ((await Promise.race([drained, graceOver])) === "timeout") {
        logger.warn({ in_flight: inFlight }, "shutdown grace period over; closing remaining connections");
      }
      server.closeAllConnections();
      // Open WebSockets are ended both ways (`shutdown` in their audit), as tunnels are by their feature;
      // first, because on the TLS port their sockets are among those destroyed next.
      await websockets.close();
      for (const socket of tcpConnections) socket.destroy();
      await lifecycle.close();
      await closed;
      await forwarder.close();
      await auditLog.flush();
    },
  };
}

/** The route pipeline's entry, for plain requests or for upgrades. */
type RouteServer = ReturnType<typeof createRoutePipeline>;

function ignoreError(): void {}
