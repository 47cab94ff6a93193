import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { tunnelQueueLimit } from "./read-relay.js";
import { type SplicedTunnel, type SpliceOptions, superviseTunnel } from "./splice.js";

/**
 * Joins a client socket to a stream that is not a socket — an HTTP/2 CONNECT stream through a connector
 * (`via`), when the connector carries the tunnel on its link — both ways, with half-close passed on, bounded queues, the idle and lifetime limits, and byte
 * counts, as {@link spliceSockets} does for two sockets. The idle limit runs on the client socket's timer,
 * which Node refreshes on every read from and write to it, so it sees both directions.
 */
export function spliceStream(client: Socket, upstream: Duplex, options: SpliceOptions): SplicedTunnel {
  let bytesIn = 0;
  let bytesOut = 0;
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
  // A stream has no socket counters: the bytes are counted above.
  return superviseTunnel(client, upstream, options, client, () => ({ bytesIn, bytesOut }));
}
