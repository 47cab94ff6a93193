import { type IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * Node's HTTP server hands a request with `Upgrade` to the `upgrade` listener as a bare socket, taken off
 * its parser: there is no `ServerResponse`, and no further request can follow on that socket. These two
 * helpers give such a request the response object every other request has, so that the route pipeline,
 * `sendError` and the forwarder answer it unchanged, and hand the socket over once a 101 is sent.
 */

/**
 * A `ServerResponse` writing to the socket of an upgrade request. It always closes the connection
 * (`Connection: close`, then the socket is ended once the answer is written), as the socket has left
 * Node's HTTP parser. It emits `close` once the answer is written, or when the socket closes before,
 * as a server's response does.
 *
 * @example
 * server.on("upgrade", (req, socket) => onRequest(req, responseOnUpgradeSocket(req, socket as Socket)));
 */
export function responseOnUpgradeSocket(req: IncomingMessage, socket: Socket): ServerResponse {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.once("finish", () => {
    if (res.socket !== socket) return;
    res.detachSocket(socket);
    socket.destroySoon();
    // As Node's server does once a response is finished: whoever counts requests in flight stops here.
    process.nextTick(() => res.emit("close"));
  });
  return res;
}

/**
 * Takes the socket back from a response made by {@link responseOnUpgradeSocket} once the protocol was
 * switched (the 101 written by the caller): the response is over — it emits `close`, so whoever counts
 * requests in flight stops counting it — and the socket lives on for the new protocol.
 *
 * @example
 * socket.write("HTTP/1.1 101 Switching Protocols\r\n…\r\n\r\n");
 * const client = releaseUpgradeSocket(res);
 */
export function releaseUpgradeSocket(res: ServerResponse): Socket {
  const socket = res.socket as Socket;
  res.detachSocket(socket);
  res.emit("close");
  return socket;
}

/**
 * Whether a request declares a body (`Transfer-Encoding`, or a non-zero `Content-Length`; RFC 9112 §6.3).
 * An upgrade request's body is not read by Node's parser: it is still on the socket.
 *
 * @example
 * hasDeclaredBody(req); // false for a WebSocket handshake
 */
export function hasDeclaredBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}
