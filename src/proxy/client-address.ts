import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

/**
 * The caller's IP address for audit events and `X-Forwarded-For`.
 *
 * Without `trustProxy` it is the socket's peer. With `trustProxy` (tollgate behind one load balancer) it
 * is the *last* address in `X-Forwarded-For`: that one was appended by the load balancer we trust, while
 * everything left of it was sent by the client and may be forged. An entry that is not an IP address
 * falls back to the peer. IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is shown as plain IPv4.
 *
 * @example
 * clientAddress(req, config.server.trustProxy); // "203.0.113.7"
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const header = req.headers["x-forwarded-for"];
    if (typeof header === "string" && header !== "") {
      const last = header.slice(header.lastIndexOf(",") + 1).trim();
      if (isIP(last) !== 0) return unmapIPv4(last);
    }
  }
  return peerAddress(req);
}

/** The address of the socket's peer (the client, or the load balancer in front of tollgate). */
export function peerAddress(req: IncomingMessage): string {
  return socketAddress(req.socket);
}

/** A socket's peer address as audit lines write it (IPv4-mapped IPv6 as plain IPv4). */
export function socketAddress(socket: { readonly remoteAddress?: string | undefined }): string {
  return unmapIPv4(socket.remoteAddress ?? "");
}

function unmapIPv4(address: string): string {
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
