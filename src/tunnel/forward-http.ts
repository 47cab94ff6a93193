import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Client } from "undici";
import { TollgateError } from "../errors/index.js";
import { receivedStatus } from "../lib/proxy-status.js";
import { hopByHopHeaders } from "../proxy/index.js";
import { parseAuthority } from "./destination-check.js";
import type { TunnelTarget } from "./types.js";

/** An absolute-form request target (`GET http://host:port/path HTTP/1.1`), as a forward proxy gets it. */
export interface AbsoluteTarget {
  readonly target: TunnelTarget;
  /** Path and query exactly as the client sent them (never re-encoded), `/` when empty. */
  readonly path: string;
}

const absoluteForm = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/;

/** Whether a request target is in absolute form (`scheme://…`) rather than a path. Cheap: runs per request. */
export function isAbsoluteForm(url: string | undefined): boolean {
  return url !== undefined && url.charCodeAt(0) !== 0x2f && absoluteForm.test(url);
}

/**
 * Parses an absolute-form request target. Only `http://` is forwarded: an https URL through a proxy is
 * a CONNECT (that is what `HTTPS_PROXY` makes clients send). User info in the URL is refused rather than
 * forwarded or dropped silently.
 */
export function parseAbsoluteTarget(url: string): AbsoluteTarget {
  const match = absoluteForm.exec(url);
  if (match === null)
    throw new TollgateError("TG_TUNNEL_TARGET_INVALID", "the request target is not an absolute URL");
  if (match[1]!.toLowerCase() !== "http") {
    throw new TollgateError(
      "TG_TUNNEL_TARGET_INVALID",
      "only http:// URLs are forwarded; for https, use CONNECT (set HTTPS_PROXY)",
    );
  }
  const authority = match[2]!;
  if (authority.includes("@")) {
    throw new TollgateError("TG_TUNNEL_TARGET_INVALID", "URLs with user info are not forwarded");
  }
  const target = parseAuthority(authority, 80);
  if (target === undefined) {
    throw new TollgateError(
      "TG_TUNNEL_TARGET_INVALID",
      "the URL's host must be a host name or IP address (IPv6 in brackets, no zone id) with an optional port",
    );
  }
  const rest = match[3]!;
  const path = rest === "" ? "/" : rest.startsWith("?") ? `/${rest}` : rest;
  return { target, path };
}

/**
 * Request headers never sent to the destination, beyond hop-by-hop ones: ours, and what undici sets
 * itself. Dropped in every spelling a destination may read as one of them: any case, and `_` for `-`.
 */
const droppedRequestHeaders: ReadonlySet<string> = new Set([
  ...hopByHopHeaders,
  "gateway-authorization",
  "expect",
]);

/** What one forwarded exchange carried, for the audit event. */
export interface ForwardHttpResult {
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/**
 * Sends a forward-proxied request over `upstream` (a socket already connected to the checked address)
 * and streams the answer back. The `Host` header is the client's (it names the destination), the
 * credential headers tollgate consumed (`Proxy-Authorization`, `Gateway-Authorization`) and every
 * hop-by-hop header are removed in both directions; `Authorization` belongs to the destination and
 * passes. One undici `Client` per exchange, whose connector hands over that one socket, so undici can
 * never open a connection of its own to anywhere else.
 */
export async function forwardHttp(
  req: IncomingMessage,
  res: ServerResponse,
  upstream: Socket | Duplex,
  absolute: AbsoluteTarget,
  timeoutMs: number,
): Promise<ForwardHttpResult> {
  // A socket this edge dialled, or a connector's stream (`via`): HTTP/1.1 runs over either.
  let socket: Socket | Duplex | undefined = upstream;
  const client = new Client(`http://${absolute.target.text}`, {
    connect: (_options, callback) => {
      const handed = socket;
      socket = undefined;
      // undici expects the connector to answer asynchronously, as a real connect does; a synchronous
      // answer re-enters its dispatch loop and the request is never written.
      queueMicrotask(() => {
        if (handed === undefined) callback(new Error("the checked connection was already used"), null);
        else callback(null, handed as Socket);
      });
    },
    pipelining: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const onClientGone = () => void client.destroy().catch(() => undefined);
  res.once("close", onClientGone);
  let bytesIn = 0;
  let bytesOut = 0;
  try {
    const hasBody =
      req.headers["transfer-encoding"] !== undefined ||
      (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0");
    if (hasBody) req.on("data", (chunk: Buffer) => (bytesIn += chunk.length));
    let response: Awaited<ReturnType<Client["request"]>>;
    try {
      response = await client.request({
        path: absolute.path,
        method: req.method ?? "GET",
        headers: destinationRequestHeaders(req.rawHeaders),
        body: hasBody ? req : null,
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const timedOut = code === "UND_ERR_HEADERS_TIMEOUT";
      throw new TollgateError(
        timedOut ? "TG_UPSTREAM_TIMEOUT" : "TG_UPSTREAM_UNAVAILABLE",
        `${absolute.target.text} ${timedOut ? "sent no response headers in time" : "failed before answering"} [${typeof code === "string" ? code : "error"}]`,
        { cause: error },
      );
    }
    // Appended after the destination's own Proxy-Status, if any: the gateway passed this answer on.
    res.writeHead(response.statusCode, [
      ...responseHeaders(response.headers),
      "proxy-status",
      receivedStatus(response.statusCode),
    ]);
    response.body.on("data", (chunk: Buffer) => (bytesOut += chunk.length));
    try {
      await pipeline(response.body, res);
    } catch {
      // Part of the answer is out: cutting the connection (pipeline did) is the only signal left.
    }
    return { status: response.statusCode, bytesIn, bytesOut };
  } finally {
    res.off("close", onClientGone);
    await client.destroy().catch(() => undefined);
  }
}

/**
 * The request headers a forward-proxied request carries to its destination: the client's, names as sent
 * and in order, without {@link droppedRequestHeaders} (the credential tollgate consumed, hop-by-hop
 * headers, `Expect`) and without what `Connection` or `Proxy-Connection` names. tollgate adds nothing
 * here, so `Host`, `Authorization` and even a client's `X-Forwarded-For` are the client's to send.
 *
 * @example
 * destinationRequestHeaders(["Host", "db:80", "Gateway_Authorization", "Bearer t", "X_Custom", "a"]);
 * // ["Host", "db:80", "X_Custom", "a"]
 */
export function destinationRequestHeaders(rawHeaders: readonly string[]): string[] {
  const named = connectionTokens(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (droppedRequestHeaders.has(name) || named.has(name)) continue;
    // A CGI, WSGI, PHP-FPM or Rack destination reads `Gateway_Authorization` as `Gateway-Authorization`
    // (RFC 3875 §4.1.18): the caller's token must not reach it in that spelling either.
    if (name.includes("_") && droppedRequestHeaders.has(name.replaceAll("_", "-"))) continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return out;
}

function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (name !== "connection" && name !== "proxy-connection") continue;
    for (const token of rawHeaders[i + 1]!.split(",")) tokens.add(token.trim().toLowerCase());
  }
  return tokens;
}

function responseHeaders(headers: Record<string, string | string[] | undefined>): string[] {
  const connection = headers.connection;
  const named = new Set(
    (Array.isArray(connection) ? connection.join(",") : (connection ?? ""))
      .split(",")
      .map((token) => token.trim().toLowerCase()),
  );
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (hopByHopHeaders.has(name) || named.has(name) || value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) out.push(name, item);
    else out.push(name, value);
  }
  return out;
}
