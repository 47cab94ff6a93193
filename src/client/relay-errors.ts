import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import { toErrorResponse } from "../errors/index.js";
import type { GatewayRefusal } from "./gateway-tunnel.js";

/** A local request id, so a line of the client's log and the answer a tool printed can be matched. */
export function localRequestId(): string {
  return `local-${randomUUID()}`;
}

/** The JSON error body the client answers with: the gateway's own fields when it gave them. */
export function refusalBody(refusal: GatewayRefusal, requestId: string): string {
  return JSON.stringify({
    error: {
      code: refusal.code ?? "TG_CLIENT_GATEWAY_UNAVAILABLE",
      message: refusal.message ?? `The gateway answered HTTP ${refusal.status}.`,
      request_id: refusal.requestId ?? requestId,
    },
  });
}

/** A complete HTTP/1.1 answer on a raw socket (CONNECT refusals), always closing the connection. */
export function rawHttpAnswer(status: number, body: string): string {
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
    "content-type: application/json\r\n" +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    "connection: close\r\n\r\n" +
    body
  );
}

/** Status and body for a local failure (a `TollgateError` keeps its code; anything else is TG_INTERNAL). */
export function localErrorAnswer(error: unknown, requestId: string): { status: number; body: string } {
  const response = toErrorResponse(error, requestId);
  return { status: response.status, body: JSON.stringify(response.body) };
}

/** One log line for a refusal: status, code and the gateway's request id (what the operator greps for). */
export function describeRefusal(refusal: GatewayRefusal): string {
  const code = refusal.code === undefined ? "" : ` ${refusal.code}`;
  const id = refusal.requestId === undefined ? "" : ` (request_id ${refusal.requestId})`;
  return `gateway answered ${refusal.status}${code}${id}`;
}
