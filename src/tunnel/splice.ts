import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { systemDial } from "./dial.js";
import { type ReadRelay, relayOf, tunnelQueueLimit } from "./read-relay.js";

/** Why a tunnel closed, as the `tunnel.close` audit event's `reason` reports it. */
export type TunnelCloseReason =
  | "closed"
  | "client-reset"
  | "destination-reset"
  | "idle-timeout"
  | "max-lifetime"
  | "shutdown";

/** What a closed tunnel carried. */
export interface TunnelStats {
  /** Bytes from the client to the destination. */
  readonly bytesIn: number;
  /** Bytes from the destination to the client. */
  readonly bytesOut: number;
  readonly reason: TunnelCloseReason;
}

/** Options of {@link spliceSockets}. */
export interface SpliceOptions {
  /** No byte in either direction for this long closes the tunnel (ms). */
  readonly idleTimeoutMs: number;
  /** The tunnel is closed this long after it opened (ms). */
  readonly maxLifetimeMs: number;
  /** Called once, when both sockets are closed. */
  readonly onClose: (stats: TunnelStats) => void;
}

/** A running tunnel: two sockets joined both ways. */
export interface SplicedTunnel {
  /** Ends both directions cleanly (FIN), then destroys what is still open after a short grace. */
  close(reason: TunnelCloseReason): void;
  /** Settles once both sides are closed (after `onClose` ran). */
  readonly closed: Promise<void>;
}

/** How long a closing tunnel waits for both peers to finish before it destroys the sockets. */
const closeGraceMs = 2_000;

/**
 * Joins `client` and `upstream` in both directions after a CONNECT, with half-close passed on (a client
 * that ends its request still gets the whole answer), bounded queues each way, and the two limits.
 *
 * Written by hand rather than with `pipe()`, because on loopback a tunnel's cost is per read and per
 * write (bench/README.md, "Tunnels"):
 *
 * - a socket tollgate dialled reads through a {@link ReadRelay} into reused buffers (public
 *   `net.connect({ onread })`, set by {@link systemDial}; on a connector, also its connection to the
 *   edge); a socket accepted by the HTTP server has no public way to do so and reads as a stream —
 *   corking the destination for one event-loop turn so the several reads libuv makes in a turn leave in
 *   one `writev`. Its fresh 64 KiB buffer per read makes uploads cost more CPU than downloads
 *   (bench/README.md, issue 17's section);
 * - a direction pauses only when the other socket has more than {@link tunnelQueueLimit} queued, not
 *   after every chunk larger than Node's 16 KiB high-water mark.
 *
 * Byte counts come from the sockets' own counters and the idle limit from the upstream socket's timer
 * (Node refreshes it on every read from and write to that socket, so it sees both directions).
 */
export function spliceSockets(client: Socket, upstream: Socket, options: SpliceOptions): SplicedTunnel {
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.setTimeout(0);

  const forward = (from: Socket, to: Socket) => {
    let corked = false;
    const uncork = () => {
      corked = false;
      to.uncork();
    };
    from.on("data", (chunk: Buffer) => {
      if (!corked) {
        corked = true;
        to.cork();
        setImmediate(uncork);
      }
      to.write(chunk);
      if (to.writableLength > tunnelQueueLimit) from.pause();
    });
    to.on("drain", () => from.resume());
    // Half-close: the peer finished sending; pass the FIN on, keep the other direction open.
    from.on("end", () => to.end());
  };
  // A socket read through a relay (one tollgate dialled) delivers from it; one accepted by the HTTP
  // server, which has no public `onread`, is read as a stream.
  const pump = (from: Socket, to: Socket) => {
    const relay = relayOf(from);
    if (relay === undefined) return forward(from, to);
    to.on("drain", () => from.resume());
    from.on("end", () => to.end());
    relay.start(to, from);
  };
  pump(client, upstream);
  pump(upstream, client);
  const from = countedFrom.get(upstream) ?? { read: 0, written: 0 };
  return superviseTunnel(client, upstream, options, upstream, () => ({
    bytesIn: upstream.bytesWritten - from.written,
    bytesOut: upstream.bytesRead - from.read,
  }));
}

/** Where a socket's byte counters start being a tunnel's (see {@link countTunnelBytesFrom}). */
const countedFrom = new WeakMap<Socket, { read: number; written: number }>();

/**
 * Marks what `socket` carried so far as not the tunnel's, for an upstream socket that spoke HTTP before
 * it became one (a connector's CONNECT with its ticket, and the edge's answer): {@link spliceSockets}
 * counts its bytes from here. `unread`: bytes already read that will be delivered again (unshifted).
 */
export function countTunnelBytesFrom(socket: Socket, unread = 0): void {
  countedFrom.set(socket, { read: socket.bytesRead - unread, written: socket.bytesWritten });
}

/**
 * What every tunnel does once its bytes flow, whatever carries them: the maximum lifetime, the idle limit
 * (on `idleTimer`'s socket timer, which Node refreshes on every read from and write to it, so it sees
 * both directions), a reset on one side ending the other, a close passed on, a graceful close that
 * destroys what is still open after a grace, and `onClose` once both sides are closed, with the counts.
 * Shared by {@link spliceSockets} and `spliceStream` (a connector's HTTP/2 stream).
 */
export function superviseTunnel(
  client: Socket,
  upstream: Duplex,
  options: SpliceOptions,
  idleTimer: Socket,
  counts: () => { bytesIn: number; bytesOut: number },
): SplicedTunnel {
  let reason: TunnelCloseReason | undefined;
  let closedCount = 0;
  let graceTimer: NodeJS.Timeout | undefined;
  let settleClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    settleClosed = resolve;
  });
  const lifetime = setTimeout(() => close("max-lifetime"), options.maxLifetimeMs);
  lifetime.unref();
  idleTimer.setTimeout(options.idleTimeoutMs, () => close("idle-timeout"));

  const onClosed = () => {
    closedCount += 1;
    if (closedCount < 2) return;
    clearTimeout(lifetime);
    if (graceTimer !== undefined) clearTimeout(graceTimer);
    options.onClose({ ...counts(), reason: reason ?? "closed" });
    settleClosed();
  };
  client.once("close", onClosed);
  upstream.once("close", onClosed);
  // A reset on one side ends the tunnel: the other side cannot be told anything better than a close.
  client.on("error", () => {
    reason ??= "client-reset";
    upstream.destroy();
  });
  upstream.on("error", () => {
    reason ??= "destination-reset";
    client.destroy();
  });
  // One side is gone: end the other too (its peer sees a clean close, not a half-open socket).
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

  return { close, closed };
}

/**
 * A graceful stop's end for long-lived streams (tunnels, WebSockets): closes each of `tunnels` with
 * reason `shutdown` and resolves once all have finished closing, or after `waitMs`, whichever is first.
 * Resolves with how many were still open then.
 *
 * @example
 * const left = await closeTunnels(open, 3_000);
 */
export async function closeTunnels(tunnels: Iterable<SplicedTunnel>, waitMs: number): Promise<number> {
  const closing = [...tunnels];
  let left = closing.length;
  if (left === 0) return 0;
  const all = Promise.all(
    closing.map((tunnel) => {
      tunnel.close("shutdown");
      return tunnel.closed.then(() => {
        left -= 1;
      });
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, waitMs);
  });
  await Promise.race([all, waited]);
  clearTimeout(timer);
  return left;
}
