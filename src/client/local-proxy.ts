import { createServer, Agent as HttpAgent, type IncomingMessage, type ServerResponse } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { TollgateError } from "../errors/index.js";
import { gatewayAnswer } from "../lib/proxy-status.js";
import type { GatewayTarget } from "./gateway-target.js";
import { describeConnectionError, gatewayRequest, gatewayRequestOptions } from "./gateway-tunnel.js";
import { assertListenAllowed, formatHostPort, isLoopbackHost, type ListenAddress } from "./listen-address.js";
import {
  describeRefusal,
  localErrorAnswer,
  localRequestId,
  rawHttpAnswer,
  refusalBody,
} from "./relay-errors.js";
import type { TokenSource } from "./token-source.js";
import { createTunnelDialer, splice } from "./tunnel-dialer.js";

/** A line for the client's log (stderr by default). Never given a token. */
export type ClientLog = (line: string) => void;

/** How `tollgate proxy` runs. */
export interface LocalProxyOptions {
  readonly gateway: GatewayTarget;
  readonly tokens: TokenSource;
  /** Default `127.0.0.1:0`. */
  readonly listen?: ListenAddress;
  /** Listen on a non-loopback address (refused otherwise). */
  readonly allowRemote?: boolean;
  readonly log?: ClientLog;
  /** Also log every tunnel and request that succeeded, not only failures. */
  readonly verbose?: boolean;
  /** Until the gateway answers a CONNECT or a request's head (default 60 s). */
  readonly gatewayTimeoutMs?: number;
}

/** A running local forward proxy. */
export interface LocalProxy {
  readonly address: ListenAddress;
  /** `http://127.0.0.1:PORT`: the value for `HTTPS_PROXY` and `HTTP_PROXY`. */
  readonly url: string;
  /** Stops listening and closes every open tunnel and request. */
  close(): Promise<void>;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) and the credentials this proxy consumes or adds itself.
const notForwarded = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "proxy-authorization",
  "proxy-authenticate",
  "gateway-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

const authorityPattern = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

/**
 * Starts a local forward proxy on loopback. `CONNECT host:port` becomes a CONNECT to the gateway (over
 * TLS when the gateway URL is https) with `Proxy-Authorization: Bearer <fresh token>`; on the gateway's
 * 200 the two sockets are joined, otherwise the gateway's status and error fields are relayed.
 * Absolute-form plain HTTP (`GET http://host/path`) is sent on to the gateway as a forward-proxy request
 * with the same header. So `HTTPS_PROXY`/`HTTP_PROXY` work for curl, git, npm and pip without a token in
 * the environment. An origin-form request (`GET /artifacts/latest`) goes to the gateway's own routes with
 * `Gateway-Authorization: Bearer <fresh token>`, so `curl $PROXY_URL/artifacts/latest` calls a route.
 *
 * @example
 * const proxy = await startLocalProxy({ gateway: parseGatewayUrl(url), tokens });
 * console.log(`HTTPS_PROXY=${proxy.url}`);
 */
export async function startLocalProxy(options: LocalProxyOptions): Promise<LocalProxy> {
  const listen = options.listen ?? { host: "127.0.0.1", port: 0 };
  assertListenAllowed(listen, options.allowRemote === true, "the proxy");
  const log: ClientLog = options.log ?? ((line) => process.stderr.write(`tollgate proxy: ${line}\n`));
  const gatewayTimeoutMs = options.gatewayTimeoutMs ?? 60_000;
  const dialer = createTunnelDialer({
    gateway: options.gateway,
    tokens: options.tokens,
    timeoutMs: gatewayTimeoutMs,
  });
  const agent = options.gateway.tls
    ? new HttpsAgent({ keepAlive: true, maxSockets: 64 })
    : new HttpAgent({ keepAlive: true, maxSockets: 64 });
  const open = new Set<Duplex>();
  const closing = new AbortController();
  const track = (socket: Duplex) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  };

  const server = createServer((req, res) => {
    // A bug must cost one request, never the proxy every later step depends on.
    forwardRequest(req, res).catch((error: unknown) => {
      log(`${req.method} ${safeUrl(req.url ?? "")}: ${messageOf(error)}`);
      if (!res.headersSent) {
        const local = localErrorAnswer(error, localRequestId());
        res.writeHead(local.status, { "content-type": "application/json", connection: "close" });
        res.end(local.body);
      } else {
        res.destroy();
      }
    });
  });
  server.on("connection", track);
  server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    tunnel(req, socket, head).catch((error: unknown) => {
      log(`CONNECT ${req.url ?? ""}: ${messageOf(error)}`);
      socket.destroy();
    });
  });

  async function tunnel(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const authority = req.url ?? "";
    const requestId = localRequestId();
    client.on("error", () => client.destroy());
    const answer = (status: number, body: string) => {
      if (!client.destroyed) client.end(rawHttpAnswer(status, body));
    };
    if (!isValidAuthority(authority)) {
      answer(400, localErrorAnswer(badRequest("CONNECT needs a host:port target"), requestId).body);
      return;
    }
    try {
      const outcome = await dialer.dial(authority, closing.signal);
      if (!outcome.ok) {
        log(`CONNECT ${authority}: ${describeRefusal(outcome.refusal)}`);
        answer(outcome.refusal.status, refusalBody(outcome.refusal, requestId));
        return;
      }
      const remote = outcome.socket;
      track(remote);
      if (client.destroyed) {
        remote.destroy();
        return;
      }
      if (options.verbose) log(`CONNECT ${authority}: tunnel open`);
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (outcome.head.length > 0) client.write(outcome.head);
      if (head.length > 0) remote.write(head);
      await splice(client, remote);
    } catch (error) {
      log(`CONNECT ${authority}: ${messageOf(error)}`);
      const local = localErrorAnswer(error, requestId);
      answer(local.status, local.body);
    }
  }

  async function forwardRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = localRequestId();
    const fail = (error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const local = localErrorAnswer(error, requestId);
      res.writeHead(local.status, { "content-type": "application/json", connection: "close" });
      res.end(local.body);
    };
    const target = req.url ?? "";
    const absoluteForm = /^http:\/\//i.test(target);
    if (!absoluteForm && !target.startsWith("/")) {
      req.resume();
      fail(
        badRequest(
          /^https:\/\//i.test(target)
            ? "https:// URLs go through CONNECT: set HTTPS_PROXY, not HTTP_PROXY, for them"
            : "send absolute-form requests (HTTP_PROXY), CONNECT (HTTPS_PROXY), or /paths of the gateway's routes",
        ),
      );
      return;
    }
    const refusal = absoluteForm ? undefined : browserRefusal(req, options.allowRemote === true);
    if (refusal !== undefined) {
      log(`${req.method} ${safeUrl(target)}: refused (${refusal})`);
      req.resume();
      fail(badRequest(refusal));
      return;
    }
    let token: string;
    try {
      token = await options.tokens.token();
    } catch (error) {
      log(`${req.method} ${safeUrl(target)}: ${messageOf(error)}`);
      req.resume();
      fail(error);
      return;
    }
    const upstream = gatewayRequest(options.gateway, {
      ...gatewayRequestOptions(options.gateway),
      agent,
      method: req.method,
      path: target,
      // Absolute form: a forward-proxy request, credential for the proxy. Origin form: a request to one of
      // the gateway's own routes, credential in the header routes read, Host naming the gateway.
      headers: absoluteForm
        ? { ...forwardedHeaders(req), "proxy-authorization": `Bearer ${token}` }
        : {
            ...forwardedHeaders(req),
            host: options.gateway.authority,
            "gateway-authorization": `Bearer ${token}`,
          },
    });
    upstream.setTimeout(gatewayTimeoutMs, () =>
      upstream.destroy(new TollgateError("TG_CLIENT_GATEWAY_UNAVAILABLE", "no answer in time")),
    );
    upstream.on("error", (error: NodeJS.ErrnoException) => {
      const wrapped =
        error instanceof TollgateError
          ? new TollgateError(error.code, `gateway ${options.gateway.origin}: ${error.message}`)
          : new TollgateError(
              "TG_CLIENT_GATEWAY_UNAVAILABLE",
              `gateway ${options.gateway.origin}: ${describeConnectionError(error)}`,
              { cause: error },
            );
      log(`${req.method} ${safeUrl(target)}: ${wrapped.message}`);
      fail(wrapped);
    });
    upstream.on("response", (response) => {
      upstream.setTimeout(0);
      const status = response.statusCode ?? 502;
      if (status >= 400) log(`${req.method} ${safeUrl(target)}: ${describeAnswer(response, absoluteForm)}`);
      else if (options.verbose) log(`${req.method} ${safeUrl(target)}: ${status}`);
      res.writeHead(status, responseHeaders(response));
      response.pipe(res);
      response.on("error", () => res.destroy());
    });
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  return {
    address,
    url: `http://${formatHostPort(address.host, address.port)}`,
    async close() {
      closing.abort();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of open) socket.destroy();
      agent.destroy();
      await stopped;
    },
  };
}

function isValidAuthority(authority: string): boolean {
  const match = authorityPattern.exec(authority);
  if (match === null) return false;
  const port = Number(match[1]);
  return port >= 1 && port <= 65_535;
}

/**
 * A request for one of the gateway's routes gets the job's token attached, so a web page open on the
 * runner (a browser test) must not be able to send one: a `Host` that is not loopback means DNS
 * rebinding, an `Origin` or `Sec-Fetch-Site` header means a browser. Command-line clients send neither.
 */
function browserRefusal(req: IncomingMessage, allowRemote: boolean): string | undefined {
  if (req.headers.origin !== undefined || req.headers["sec-fetch-site"] !== undefined) {
    return "requests from a browser are not relayed to the gateway's routes";
  }
  if (allowRemote) return undefined;
  const host = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(req.headers.host ?? "");
  if (host === null || !isLoopbackHost(host[1] ?? host[2]!)) {
    return "requests for the gateway's routes must be addressed to the proxy's loopback address";
  }
  return undefined;
}

function badRequest(message: string): TollgateError {
  return new TollgateError("TG_BAD_REQUEST", message);
}

function forwardedHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const named = new Set(
    (req.headers.connection ?? "")
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name.length > 0),
  );
  const headers: Record<string, string | string[]> = {};
  // `req.headers` joins repeated fields the way HTTP allows (and keeps Host a single string).
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || notForwarded.has(name) || named.has(name)) continue;
    headers[name] = value;
  }
  return headers;
}

function responseHeaders(response: IncomingMessage): Record<string, string[]> {
  const headers: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(response.headersDistinct)) {
    if (values === undefined || notForwarded.has(name)) continue;
    headers[name] = values;
  }
  return headers;
}

/**
 * Whose error answer this is. The gateway marks its own with `Proxy-Status` (the code in `details`, the
 * request id in `X-Request-Id`): those are logged like refused CONNECTs, with code and request id. Any
 * other answer was the destination's (absolute form) or the route's upstream's (origin form), which the
 * gateway allowed and passed on.
 */
function describeAnswer(response: IncomingMessage, absoluteForm: boolean): string {
  const status = response.statusCode ?? 502;
  const own = gatewayAnswer(response.headers["proxy-status"]);
  if (own === false) return `${absoluteForm ? "the destination" : "the route's upstream"} answered ${status}`;
  const requestId = response.headers["x-request-id"];
  return describeRefusal({
    status,
    code: own.code,
    message: undefined,
    requestId: typeof requestId === "string" && requestId.length <= 128 ? requestId : undefined,
  });
}

/** The URL without its query (which may carry a signature) or userinfo, for log lines. */
function safeUrl(target: string): string {
  if (target.startsWith("/")) return target.split("?")[0]!;
  try {
    const url = new URL(target);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return "(unparsable URL)";
  }
}

function messageOf(error: unknown): string {
  return error instanceof TollgateError ? `${error.code}: ${error.message}` : "internal error";
}
