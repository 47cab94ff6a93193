import {
  type ClientRequest,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
} from "node:http";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { rootCertificates } from "node:tls";
import { TollgateError } from "../errors/index.js";
import type { GatewayTarget } from "./gateway-target.js";

/** The gateway said no: its status and the fields of its `{"error": {code, message, request_id}}` body. */
export interface GatewayRefusal {
  readonly status: number;
  readonly code: string | undefined;
  readonly message: string | undefined;
  readonly requestId: string | undefined;
}

/** An open tunnel (bytes after the gateway's 200 are the destination's) or the gateway's refusal. */
export type TunnelOutcome =
  | { readonly ok: true; readonly socket: Socket; readonly head: Buffer }
  | { readonly ok: false; readonly refusal: GatewayRefusal };

/** Limits of one CONNECT exchange with the gateway. */
export interface GatewayTunnelOptions {
  /** Until the gateway's answer head (default 60 s: the gateway itself answers 504 sooner). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

const maxRefusalBodyBytes = 16 * 1024;

/**
 * Request options shared by CONNECT and forwarded requests to the gateway: TLS with SNI and certificate
 * verification (system roots plus `--ca`), never a pooled socket that another credential opened.
 */
export function gatewayRequestOptions(gateway: GatewayTarget): RequestOptions {
  return {
    host: gateway.host,
    port: gateway.port,
    ...(gateway.tls
      ? {
          servername: gateway.servername,
          // `ca` replaces the default roots; keep them, a private CA is an addition.
          ...(gateway.ca === undefined ? {} : { ca: [...rootCertificates, gateway.ca] }),
          rejectUnauthorized: true,
        }
      : {}),
  };
}

/** `http.request` or `https.request`, whichever the gateway URL asked for. */
export function gatewayRequest(gateway: GatewayTarget, options: RequestOptions): ClientRequest {
  return gateway.tls ? httpsRequest(options) : httpRequest(options);
}

/**
 * Opens `CONNECT authority` through the gateway with `Proxy-Authorization: Bearer <token>`. Resolves
 * with the raw socket on 200, or with the refusal (407, 403, 502, 504 …) and the gateway's error fields.
 * Rejects with `TG_CLIENT_GATEWAY_UNAVAILABLE` when the gateway cannot be reached, its certificate is
 * not trusted, or it does not answer in time. The token is never part of an error message.
 *
 * @example
 * const outcome = await openGatewayTunnel(parseGatewayUrl("https://gw.example.com"), "db.internal:5432", token);
 * if (outcome.ok) outcome.socket.pipe(local).pipe(outcome.socket);
 */
export function openGatewayTunnel(
  gateway: GatewayTarget,
  authority: string,
  token: string,
  options: GatewayTunnelOptions = {},
): Promise<TunnelOutcome> {
  return new Promise<TunnelOutcome>((resolve, reject) => {
    let settled = false;
    const request = gatewayRequest(gateway, {
      ...gatewayRequestOptions(gateway),
      method: "CONNECT",
      path: authority,
      agent: false,
      headers: { host: authority, "proxy-authorization": `Bearer ${token}` },
    });
    const fail = (reason: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      request.destroy();
      reject(
        new TollgateError("TG_CLIENT_GATEWAY_UNAVAILABLE", `gateway ${gateway.origin}: ${reason}`, { cause }),
      );
    };
    const onAbort = () => fail("the request was cancelled");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    request.setTimeout(options.timeoutMs ?? 60_000, () => fail("no answer in time"));
    request.on("error", (error: NodeJS.ErrnoException) => fail(describeConnectionError(error), error));
    // Node reports every answer to a CONNECT (200 or not) as "connect" with the socket still open.
    request.on("connect", (response: IncomingMessage, socket: Socket, head: Buffer) => {
      options.signal?.removeEventListener("abort", onAbort);
      if (settled) {
        socket.destroy();
        return;
      }
      settled = true;
      request.setTimeout(0);
      socket.setTimeout(0);
      if (response.statusCode === 200) {
        socket.setNoDelay(true);
        resolve({ ok: true, socket, head });
        return;
      }
      void readRefusal(response, socket, head).then((refusal) => resolve({ ok: false, refusal }));
    });
    request.end();
  });
}

/** Reads the (small, JSON) body of a refused CONNECT, bounded in size and time, then closes the socket. */
async function readRefusal(response: IncomingMessage, socket: Socket, head: Buffer): Promise<GatewayRefusal> {
  const status = response.statusCode ?? 502;
  const declared = Number(response.headers["content-length"] ?? "0");
  const wanted = Number.isFinite(declared) ? Math.min(Math.max(declared, 0), maxRefusalBodyBytes) : 0;
  const body = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [head];
    let length = head.length;
    const done = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.destroy();
      resolve(Buffer.concat(chunks).subarray(0, wanted));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= wanted) done();
    };
    const timer = setTimeout(done, 5_000);
    if (length >= wanted) {
      done();
      return;
    }
    socket.on("data", onData);
    socket.once("end", done);
    socket.once("error", done);
  });
  return { status, ...errorFields(body) };
}

/** Extracts `error.code`, `error.message`, `error.request_id` (short strings only) from a gateway error body. */
export function errorFields(body: Buffer): Omit<GatewayRefusal, "status"> {
  const pick = (value: unknown) => (typeof value === "string" && value.length <= 512 ? value : undefined);
  try {
    const error = (JSON.parse(body.toString("utf8")) as { error?: Record<string, unknown> }).error ?? {};
    return { code: pick(error.code), message: pick(error.message), requestId: pick(error.request_id) };
  } catch {
    return { code: undefined, message: undefined, requestId: undefined };
  }
}

/** A one-line reason for a socket or TLS failure, with the fix where there is an obvious one. */
export function describeConnectionError(error: NodeJS.ErrnoException): string {
  const code = error.code ?? "";
  if (
    [
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "SELF_SIGNED_CERT_IN_CHAIN",
      "DEPTH_ZERO_SELF_SIGNED_CERT",
      "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
      "CERT_UNTRUSTED",
    ].includes(code)
  ) {
    return `its TLS certificate is not trusted (${code}); pass --ca FILE for a private CA`;
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return "its TLS certificate does not name this host";
  if (code === "CERT_HAS_EXPIRED") return "its TLS certificate has expired";
  if (code !== "") return `connection failed (${code})`;
  return "connection failed";
}
