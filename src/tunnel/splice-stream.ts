import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { tunnelQueueLimit } from "./read-relay.js";
import type { SplicedTunnel, SpliceOptions, TunnelCloseReason } from "./splice.js";

/** How long a closing tunnel waits for both peers to finish before it destroys them. */
const closeGraceMs = 2_000;

/**
 * Joins a client socket to a stream that is not a socket — an HTTP/2 CONNECT stream through a connector
 * (`via`) — both ways, with half-close passed on, bounded queues, the idle and lifetime limits, and byte
 * counts, as {@link spliceSockets} does for two sockets. The idle limit runs on the client socket's timer,
 * which Node refreshes on every read from and write to it, so it sees both directions.
 */
export function spliceStream(client: Socket, upstream: Duplex, options: SpliceOptions): SplicedTunnel {
  let reason: TunnelCloseReason | undefined;
  let bytesIn = 0;
  let bytesOut = 0;
  let closedCount = 0;
  let graceTimer: NodeJS.Timeout | undefined;
  client.setNoDelay(true);

  const forward = (from: Duplex, to: Duplex, count: (bytes: number) => void) => {
    from.on("data", (chunk: Buffer) => {
      count(chunk.length);
      to.write(chunk);
      if (to.writableLength > tunnelQueueLimit) from.pause();
    });
    to.on("drain", () => from.resume());
    // Half-close: the peer finished sending; pass the end on, keep the other direction open.
    from.on("end", () => to.end());
  };
  forward(client, upstream, (bytes) => {
    bytesIn += bytes;
  });
  forward(upstream, client, (bytes) => {
    bytesOut += bytes;
  });
  // The server paused the client socket while the CONNECT was decided; a listener alone does not resume it.
  client.resume();
  upstream.resume();

  const lifetime = setTimeout(() => close("max-lifetime"), options.maxLifetimeMs);
  lifetime.unref();
  client.setTimeout(options.idleTimeoutMs, () => close("idle-timeout"));

  const onClosed = () => {
    closedCount += 1;
    if (closedCount < 2) return;
    clearTimeout(lifetime);
    if (graceTimer !== undefined) clearTimeout(graceTimer);
    options.onClose({ bytesIn, bytesOut, reason: reason ?? "closed" });
  };
  client.once("close", onClosed);
  upstream.once("close", onClosed);
  client.on("error", () => {
    reason ??= "client-reset";
    upstream.destroy();
  });
  upstream.on("error", () => {
    reason ??= "destination-reset";
    client.destroy();
  });
  client.once("close", () => upstream.end());
  upstream.once("close", () => client.end());

  function close(why: TunnelCloseReason): void {
    if (reason !== undefined && graceTimer !== undefined) return;
    reason ??= why;
    client.end();
    upstream.end();
    graceTimer = setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, closeGraceMs);
    graceTimer.unref();
  }

  return { close };
}
