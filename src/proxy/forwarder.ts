import type { IncomingMessage, ServerResponse } from "node:http";
import { type Duplex, Transform, type TransformCallback } from "node:stream";
import { type Dispatcher, Pool } from "undici";
import { isTollgateError, TollgateError } from "../errors/index.js";
import { peerAddress } from "./client-address.js";
import {
  claimHeaderName,
  claimHeaders,
  clientResponseHeadersFromRaw,
  upgradeResponseHeadersFromRaw,
  upstreamRequestHeaders,
} from "./headers.js";
import type { ProxyRoute } from "./types.js";

/** Per-request facts the server hands to {@link UpstreamForwarder.forward}. */
export interface ForwardContext {
  /** Normalised path, without the route prefix when the route strips it (see `upstreamPathFor`). */
  path: string;
  /** The query as received, with its `?`, or `""`. */
  search: string;
  requestId: string;
  /** The caller's address; becomes (the end of) `X-Forwarded-For`. */
  clientIp: string;
  proto: "http" | "https";
  /** Verified claims; only those the route's `forwardClaims` names are sent. */
  claims?: Readonly<Record<string, unknown>>;
  /** Lower-case credential header names tollgate consumed, e.g. `gateway-authorization`. */
  consumedHeaders: readonly string[];
  /**
   * The `X-Forwarded-For` received from a trusted proxy in front of tollgate (pass
   * `req.headers["x-forwarded-for"]` when `server.trust_proxy` is on). When set, the address of the
   * socket's peer (that proxy) is appended, as every hop appends the address it received the connection
   * from; `clientIp`, taken from that same header, is already in it. Otherwise the client's header is
   * discarded and `clientIp` alone is sent.
   */
  trustedForwardedFor?: string;
  /**
   * Cancels the exchange (for example on shutdown). Before the response headers, `forward` rejects with
   * the signal's reason when it is a `TollgateError` (say `TG_SHUTTING_DOWN`), else with
   * `TG_UPSTREAM_UNAVAILABLE`; after them, the client connection is cut.
   */
  signal?: AbortSignal;
}

/** The outcome of one forwarded exchange, for the audit event. */
export interface ForwardResult {
  /**
   * The upstream's status as sent to the client, or 499 when the client went away before the upstream
   * answered (the nginx convention; nothing was sent).
   */
  status: number;
  /** Request body bytes sent upstream. */
  bytesIn: number;
  /** Response body bytes sent to the client. */
  bytesOut: number;
}

/** What {@link UpstreamForwarder.upgrade} resolves with when the upstream switched protocols (101). */
export interface UpgradedExchange {
  /**
   * The client's headers of the 101: the upstream's, hop-by-hop ones removed but `Upgrade` (and the
   * `Sec-WebSocket-*` it sent), with `Connection: upgrade`.
   */
  readonly headers: readonly string[];
  /**
   * The upstream connection, now carrying the new protocol: a socket, or a stream through a connector.
   * It has no listeners yet: the caller owns it, its errors included.
   */
  readonly socket: Duplex;
}

/** Options of {@link createUpstreamForwarder}. */
export interface UpstreamForwarderOptions {
  /** Keep-alive connections per upstream origin (default 128); more requests queue. */
  connectionsPerUpstream?: number;
  /** Builds the dispatcher of one upstream origin (tests, custom TLS). Default: an undici `Pool`. */
  dispatcherFactory?: (origin: URL) => Dispatcher;
  /**
   * Builds the dispatcher of an origin reached through a connector pool (`via`): its connections are
   * streams through a connector, never sockets this process dials. Without it, a `via` route fails.
   */
  viaDispatcherFactory?: (pool: string, origin: URL, connections: number) => Dispatcher;
}

/** Streams requests to upstreams and their answers back. One per gateway; closed on shutdown. */
export interface UpstreamForwarder {
  /**
   * Forwards `req` to the route's upstream and streams the answer into `res`.
   *
   * Resolves once the answer is fully handed to `res`, or when the exchange ended after the response
   * headers were sent (the client socket is then destroyed: the only honest signal left). Rejects, with
   * nothing written to `res`, with `TG_UPSTREAM_TIMEOUT` or `TG_UPSTREAM_UNAVAILABLE` when the upstream
   * failed before answering; the error's message names the route and upstream for the operator and never
   * contains anything the upstream sent.
   */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    route: ProxyRoute,
    context: ForwardContext,
  ): Promise<ForwardResult>;
  /**
   * Sends a WebSocket upgrade (`req`, a GET with `Upgrade: websocket`) to the route's upstream, with the
   * headers `forward` sends plus `Connection: upgrade` and `Upgrade: websocket` (undici's `upgrade`). On a
   * 101 resolves with the upstream's connection, which no longer belongs to the pool; any other answer is
   * streamed into `res` as `forward` streams it, and resolves as `forward` does. Rejects as `forward`.
   */
  upgrade(
    req: IncomingMessage,
    res: ServerResponse,
    route: ProxyRoute,
    context: ForwardContext,
  ): Promise<ForwardResult | UpgradedExchange>;
  /** Closes every upstream connection pool, letting in-flight exchanges finish. */
  close(): Promise<void>;
}

/** What is precomputed once per route so the per-request work is header filtering and one dispatch. */
interface RoutePlan {
  readonly dispatcher: Dispatcher;
  /** `scheme://host:port` without user info, for dispatch and messages. */
  readonly origin: string;
  /** The upstream URL's path without its trailing `/` (`""` for `/`). */
  readonly basePath: string;
  readonly claimHeaderNames: readonly (readonly [claim: string, header: string])[];
}

/**
 * Creates the streaming reverse-proxy forwarder: one keep-alive undici `Pool` per upstream origin,
 * created on first use and shared by every route that points at that origin.
 *
 * It uses undici's lowest-level API, `dispatch` with a handler that writes straight into `res`: no
 * intermediate response stream or promise per chunk, one pass over the headers each way, and
 * backpressure by pausing the upstream socket while `res` drains. Request bodies are streamed, never
 * buffered. The handler speaks undici 7's native handler API (see {@link Exchange} for why).
 *
 * Headers sent upstream: the client's, minus hop-by-hop headers and those `Connection` names, minus the
 * consumed credential headers, minus every client-sent `Tollgate-Claim-*`, `X-Forwarded-*`, `Forwarded`,
 * `X-Real-IP`, `X-Request-Id` and `Expect`; plus `tollgate-claim-<name>` for each forwarded claim,
 * `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` (the client's Host) and `X-Request-Id`.
 * `Host` is the upstream's own, so name-based virtual hosting and TLS SNI on the upstream keep working.
 * User info in an upstream URL is never sent. Trailers are not forwarded.
 *
 * `route.timeoutMs` bounds both the wait for response headers and every pause between body chunks.
 *
 * @example
 * const forwarder = createUpstreamForwarder({});
 * const result = await forwarder.forward(req, res, route, { path, search, requestId, clientIp, proto: "http", consumedHeaders: ["gateway-authorization"] });
 */
export function createUpstreamForwarder(options: UpstreamForwarderOptions = {}): UpstreamForwarder {
  const connections = options.connectionsPerUpstream ?? 128;
  const createDispatcher =
    options.dispatcherFactory ??
    ((origin: URL): Dispatcher => new Pool(origin.origin, { connections, pipelining: 1 }));
  const createViaDispatcher = (pool: string, origin: URL): Dispatcher => {
    if (options.viaDispatcherFactory === undefined) {
      throw new TollgateError("TG_CONNECTOR_UNAVAILABLE", `no connector pools on this gateway (via ${pool})`);
    }
    return options.viaDispatcherFactory(pool, origin, connections);
  };
  const dispatchers = new Map<string, Dispatcher>();
  // Keyed by the frozen route object: a reloaded configuration gets fresh plans, old ones are collected.
  const plans = new WeakMap<ProxyRoute, RoutePlan>();
  let closed = false;

  function planFor(route: ProxyRoute): RoutePlan {
    let plan = plans.get(route);
    if (plan !== undefined) return plan;
    const origin = route.upstream.origin;
    // An origin reached through a connector is another destination than the same origin dialled from here.
    const via = route.via;
    const key = via === undefined ? origin : `${via}\u0000${origin}`;
    let dispatcher = dispatchers.get(key);
    if (dispatcher === undefined) {
      dispatcher =
        via === undefined ? createDispatcher(new URL(origin)) : createViaDispatcher(via, new URL(origin));
      dispatchers.set(key, dispatcher);
    }
    const pathname = route.upstream.pathname;
    const claimHeaderNames: [string, string][] = [];
    for (const claim of route.forwardClaims) {
      const header = claimHeaderName(claim);
      if (header !== undefined) claimHeaderNames.push([claim, header]);
    }
    plan = {
      dispatcher,
      origin,
      basePath: pathname.endsWith("/") ? pathname.slice(0, -1) : pathname,
      claimHeaderNames,
    };
    plans.set(route, plan);
    return plan;
  }

  /** Sends `req` upstream with the proxy's headers; `exchange` writes the answer into the client's response. */
  function dispatch(
    req: IncomingMessage,
    route: ProxyRoute,
    context: ForwardContext,
    plan: RoutePlan,
    exchange: Exchange,
    upgrade: "websocket" | undefined,
  ): void {
    const headers = upstreamRequestHeaders(req.rawHeaders, {
      consumedHeaders: context.consumedHeaders,
      claimHeaders:
        plan.claimHeaderNames.length === 0 ? noHeaders : claimHeaders(plan.claimHeaderNames, context.claims),
      forwardedFor:
        context.trustedForwardedFor === undefined || context.trustedForwardedFor === ""
          ? context.clientIp
          : `${context.trustedForwardedFor}, ${peerAddress(req)}`,
      forwardedProto: context.proto,
      requestId: context.requestId,
    });
    const path = context.path.charCodeAt(0) === 0x2f ? context.path : `/${context.path}`;
    plan.dispatcher.dispatch(
      {
        origin: plan.origin,
        method: req.method ?? "GET",
        path: plan.basePath + path + context.search,
        headers,
        body: upgrade === undefined && hasBody(req) ? exchange.countBody(req) : null,
        headersTimeout: route.timeoutMs,
        bodyTimeout: route.timeoutMs,
        upgrade,
      },
      exchange,
    );
  }

  function closedError(route: ProxyRoute): Promise<never> {
    return Promise.reject(
      new TollgateError("TG_UPSTREAM_UNAVAILABLE", `route "${route.name}": forwarder closed`),
    );
  }

  return {
    forward(req, res, route, context) {
      if (closed) return closedError(route);
      const plan = planFor(route);
      return new Promise<ForwardResult>((resolve, reject) => {
        dispatch(
          req,
          route,
          context,
          plan,
          new Exchange(res, route, plan.origin, resolve, reject, context.signal),
          undefined,
        );
      });
    },
    upgrade(req, res, route, context) {
      if (closed) return closedError(route);
      const plan = planFor(route);
      return new Promise<ForwardResult | UpgradedExchange>((resolve, reject) => {
        const exchange = new UpgradeExchange(res, route, plan.origin, resolve, reject, context.signal);
        dispatch(req, route, context, plan, exchange, "websocket");
      });
    },
    async close() {
      closed = true;
      const all = [...dispatchers.values()];
      dispatchers.clear();
      await Promise.all(all.map((dispatcher) => dispatcher.close()));
    },
  };
}

const noHeaders: readonly string[] = [];

/**
 * A request has a body when it declares one (RFC 9112 §6.3): `Transfer-Encoding`, or a non-zero
 * `Content-Length`. Node's parser has already enforced the framing.
 */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/** Counts request body bytes on their way upstream (undici's new handler API has no body callback). */
class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

/** Raised into undici when the client went away, so the upstream exchange stops too. */
class ClientGoneError extends Error {
  override readonly name = "ClientGoneError";
}

/**
 * The undici dispatch handler of one exchange. A class (not a closure-built object) because it runs on
 * every request: its methods live on the prototype, so an exchange costs one allocation plus the one
 * listener it always needs; the drain and signal listeners are only made when used.
 *
 * It speaks undici 7's native handler API (`onConnect`, `onHeaders`, `onData`, `onComplete`, `onError`):
 * undici 7 is pinned while Node 20 is supported (undici 8 does not run on it), and in undici 7 the newer
 * `onRequestStart`/`onResponse*` API goes through a wrapper that parses the raw headers into an object
 * this handler would turn back into a list (measured in bench/README.md). Moving to undici 8 means
 * moving this class to the new API; the forwarder tests pin the behaviour either way.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private abortUpstream: ((error?: Error) => void) | undefined;
  private resumeUpstream: (() => void) | undefined;
  private counter: ByteCounter | undefined;
  private status = 0;
  private bytesOut = 0;
  private headersSent = false;
  protected clientGone = false;
  protected settled = false;
  /** Set when `context.signal` cancelled the exchange: what `forward` rejects with. */
  private cancelled: TollgateError | undefined;
  private onDrain: (() => void) | undefined;
  private onSignal: (() => void) | undefined;
  private readonly onClientClose = (): void => {
    if (this.settled) return;
    this.clientGone = true;
    this.abortUpstream?.(new ClientGoneError("client closed the connection"));
  };

  constructor(
    private readonly res: ServerResponse,
    private readonly route: ProxyRoute,
    private readonly origin: string,
    private readonly resolve: (result: ForwardResult) => void,
    private readonly reject: (error: TollgateError) => void,
    private readonly signal: AbortSignal | undefined,
  ) {
    res.on("close", this.onClientClose);
    // A client whose connection is already over (it hung up, or Node answered its malformed body with
    // 400 while the gateway was still deciding) will not close again: without this, the exchange would
    // wait on the upstream, with nobody to answer, until the route's timeout.
    const socket = res.socket;
    if (res.destroyed || socket === null || socket.destroyed || socket.writableEnded) this.clientGone = true;
    if (signal !== undefined) {
      this.onSignal = () => this.cancel(signal.reason);
      if (signal.aborted) this.onSignal();
      else signal.addEventListener("abort", this.onSignal);
    }
  }

  countBody(req: IncomingMessage): ByteCounter {
    this.counter = new ByteCounter();
    // `pipe`, not `pipeline`: an upstream failure must not destroy the client's socket, which still has
    // to carry our error response. undici destroys the counter when the exchange ends early.
    return req.pipe(this.counter);
  }

  onConnect(abort: (error?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.clientGone) abort(new ClientGoneError("client closed the connection"));
    else if (this.cancelled !== undefined) abort(this.cancelled);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // 1xx answers are informational; the gateway answers the client's `Expect: 100-continue` itself, once
    // it admits the request (lib/expect-continue.ts).
    if (statusCode < 200) return true;
    if (this.clientGone) return false;
    this.resumeUpstream = resume;
    const list = clientResponseHeadersFromRaw(rawHeaders);
    const res = this.res;
    try {
      if (res.getHeaderNames().length === 0) {
        res.writeHead(statusCode, list);
      } else {
        // Headers set earlier by the server would make writeHead collapse duplicates (Set-Cookie).
        for (let i = 0; i < list.length; i += 2) res.appendHeader(list[i]!, list[i + 1]!);
        res.writeHead(statusCode);
      }
    } catch (error) {
      // Node refused a header value the upstream sent: nothing reached the client yet, so answer 502.
      this.abortUpstream?.(error as Error);
      return false;
    }
    this.status = statusCode;
    this.headersSent = true;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytesOut += chunk.length;
    if (this.res.write(chunk)) return true;
    // Backpressure: returning false pauses the upstream socket until the client has taken what we have.
    if (this.onDrain === undefined) {
      this.onDrain = () => this.resumeUpstream?.();
      this.res.on("drain", this.onDrain);
    }
    return false;
  }

  onComplete(): void {
    this.res.end();
    this.finish(this.status);
  }

  onError(error: Error): void {
    if (this.settled) return;
    if (this.clientGone) {
      this.finish(this.headersSent ? this.status : 499);
    } else if (this.headersSent) {
      // Part of the answer is out; no error can be expressed any more except cutting the connection.
      this.res.destroy();
      this.finish(this.status);
    } else {
      this.settled = true;
      this.cleanup();
      this.reject(this.cancelled ?? upstreamError(this.route, this.origin, error));
    }
  }

  private cancel(reason: unknown): void {
    if (this.settled) return;
    this.cancelled = isTollgateError(reason)
      ? reason
      : new TollgateError("TG_UPSTREAM_UNAVAILABLE", `route "${this.route.name}": exchange cancelled`, {
          cause: reason,
        });
    this.abortUpstream?.(this.cancelled);
  }

  protected finish(status: number): void {
    if (this.settled) return;
    this.settled = true;
    this.cleanup();
    this.resolve({ status, bytesIn: this.counter?.bytes ?? 0, bytesOut: this.bytesOut });
  }

  protected cleanup(): void {
    this.res.off("close", this.onClientClose);
    if (this.onDrain !== undefined) this.res.off("drain", this.onDrain);
    if (this.onSignal !== undefined) this.signal?.removeEventListener("abort", this.onSignal);
  }
}

/**
 * The handler of a WebSocket upgrade: an {@link Exchange} (a non-101 answer reaches the client as any
 * answer does) that also takes undici's `onUpgrade`, called with the 101 and the connection undici has
 * let go of.
 */
class UpgradeExchange extends Exchange {
  constructor(
    res: ServerResponse,
    route: ProxyRoute,
    origin: string,
    private readonly settle: (result: ForwardResult | UpgradedExchange) => void,
    reject: (error: TollgateError) => void,
    signal: AbortSignal | undefined,
  ) {
    super(res, route, origin, settle, reject, signal);
  }

  onUpgrade(_statusCode: number, rawHeaders: Buffer[], socket: Duplex): void {
    if (this.settled || this.clientGone) {
      // Nobody is left to switch protocols with (or a cancellation already answered the client).
      socket.destroy();
      this.finish(499);
      return;
    }
    this.settled = true;
    this.cleanup();
    this.settle({ headers: upgradeResponseHeadersFromRaw(rawHeaders), socket });
  }
}

const timeoutCodes = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"]);

const failureWords: Record<string, string> = {
  ECONNREFUSED: "refused the connection",
  ECONNRESET: "reset the connection",
  EPIPE: "closed the connection while the request was sent",
  UND_ERR_SOCKET: "closed the connection",
  ENOTFOUND: "host name could not be resolved",
  EAI_AGAIN: "host name could not be resolved",
  EHOSTUNREACH: "host is unreachable",
  ENETUNREACH: "network is unreachable",
  UND_ERR_CONNECT_TIMEOUT: "did not accept the connection in time",
  UND_ERR_HEADERS_TIMEOUT: "sent no response headers in time",
  UND_ERR_BODY_TIMEOUT: "stalled while sending the response body",
};

/**
 * Wraps a failure before any response byte was sent. The message is for the operator (audit `detail`):
 * route, upstream origin and a code, nothing the upstream sent.
 */
function upstreamError(route: ProxyRoute, origin: string, error: Error): TollgateError {
  const code = (error as { code?: unknown }).code;
  const key = typeof code === "string" ? code : error.name;
  const timedOut = timeoutCodes.has(key);
  const what = failureWords[key] ?? "failed";
  const limit = timedOut && key !== "UND_ERR_CONNECT_TIMEOUT" ? ` (limit ${route.timeoutMs}ms)` : "";
  return new TollgateError(
    timedOut ? "TG_UPSTREAM_TIMEOUT" : "TG_UPSTREAM_UNAVAILABLE",
    `route "${route.name}": upstream ${origin} ${what} [${key}]${limit}`,
    { cause: error },
  );
}
