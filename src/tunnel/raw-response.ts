import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { toErrorResponse } from "../errors/index.js";

/** How long a refused CONNECT's socket may stay open for the client to read the answer and close. */
const lingerMs = 5_000;

/**
 * Answers a CONNECT with an error on the raw socket: a complete HTTP/1.1 response with the catalogue's
 * status, headers (`Proxy-Authenticate` on 407) and the JSON error body, then a clean close. The socket
 * is ended (FIN) rather than destroyed, and what the client still sends is read and dropped, so the
 * kernel never answers with a reset that could make the client lose the response it has not read yet.
 */
export function answerConnectError(
  socket: Socket,
  error: unknown,
  requestId: string,
): { code: string; status: number } {
  const response = toErrorResponse(error, requestId);
  const body = JSON.stringify(response.body);
  const headers: Record<string, string> = {
    ...response.headers,
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    "cache-control": "no-store",
    "x-request-id": requestId,
    connection: "close",
  };
  let head = `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? "Error"}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  if (!socket.destroyed && socket.writable) {
    socket.on("error", ignore);
    socket.on("data", ignore);
    socket.resume();
    socket.end(`${head}\r\n${body}`);
    // Once the client has read the answer and closed its side too, the socket destroys itself
    // (allowHalfOpen with both sides ended); this bounds a client that never closes.
    setTimeout(() => socket.destroy(), lingerMs).unref();
  } else {
    socket.destroy();
  }
  return { code: response.body.error.code, status: response.status };
}

function ignore(): void {}
