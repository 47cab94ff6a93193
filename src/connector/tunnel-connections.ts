import { connect as connectTcp, type Socket } from "node:net";
import { type ConnectionOptions, connect as connectTls } from "node:tls";
import { attachRelay, ReadRelay } from "../tunnel/index.js";
import { connectionAuthority, connectionTicketHeader } from "./protocol.js";

/**
 * The connector's connections to an edge that each carry one tunnel's bytes (the edge asks for one with
 * a ticket on the tunnel's stream; see `AwaitedConnection` in pipeline/connectors.ts).
 *
 * Two things make them cheap:
 *
 * - **Read into reused buffers.** Dialled directly, a connection reads through a {@link ReadRelay} like a
 *   destination socket (`net.connect` and `tls.connect` take `onread`): a stream read allocates 64 KiB each
 *   time, which on the bench cost the connector about half its CPU per GiB uploaded. So the CONNECT is
 *   written, and the edge's answer read, here.
 * - **One dialled ahead.** While the link to an edge is up, one connection to it is kept with its TCP and
 *   TLS handshakes done and nothing sent, so a new tunnel costs one round trip to the edge (its CONNECT)
 *   instead of three. It is replaced every {@link spareLifetimeMs}: the edge closes a connection that sends
 *   no request within its headers timeout (20 s).
 *
 * Through an egress proxy, `tls.connect` ignores `onread` over the proxy's tunnel, so such a connection
 * is the HTTP client's CONNECT as for the link (`viaProxy`), read as a stream, and none is dialled ahead.
 */
export interface TunnelConnections {
  /** A tunnel's connection to `edge`, admitted by `ticket`; rejects when the edge refused or is gone. */
  open(edge: URL, ticket: string): Promise<Socket>;
  /** The link to `edge` is up: keep a connection dialled ahead. */
  keepSpare(edge: URL): void;
  /** The link to `edge` is down: close its spare and dial none. */
  dropSpare(edge: URL): void;
  /** Closes every spare (a connection carrying a tunnel is the tunnel's to close). */
  close(): void;
}

/** What {@link createTunnelConnections} needs of the connector. */
export interface TunnelConnectionOptions {
  /** PEM certificates to trust for the edges beside the system's. */
  readonly ca?: string;
  /** True when connections to `edge` go through an egress proxy. */
  readonly throughProxy: (edge: URL) => boolean;
  /** The HTTP client's CONNECT to the edge through the proxy, with these headers. */
  readonly viaProxy: (edge: URL, headers: Record<string, string>) => Promise<Socket>;
}

/** How long a connection dialled ahead waits for a tunnel before it is replaced (the edge's headers timeout is 20 s). */
export const spareLifetimeMs = 10_000;
/** How long the edge has to answer a connection's CONNECT (and, for one dialled now, to accept it). */
const answerTimeoutMs = 10_000;
/** The edge's answer is one status line and a blank line; anything longer is not the edge. */
const answerLimitBytes = 16 * 1024;

/** A connection dialled to an edge, not yet admitted: its socket, its relay, and its handshakes. */
interface Dialled {
  readonly socket: Socket;
  readonly relay: ReadRelay;
  /** Settles when TCP (and TLS) are done; rejects when the connection failed or closed first. */
  readonly ready: Promise<void>;
}

export function createTunnelConnections(options: TunnelConnectionOptions): TunnelConnections {
  const spares = new Map<string, { dialled: Dialled; timer: NodeJS.Timeout; hungUp: () => void }>();
  const wanted = new Set<string>();

  return {
    async open(edge, ticket) {
      if (options.throughProxy(edge)) {
        const socket = await options.viaProxy(edge, { [connectionTicketHeader]: ticket });
        // A tunnel passes a half-close on: the edge's end of one direction must not end the other.
        socket.allowHalfOpen = true;
        return socket;
      }
      const spare = takeSpare(edge);
      replenish(edge);
      if (spare !== undefined) {
        // The edge may have closed it a moment ago (an idle timeout, a restart): then a fresh one.
        try {
          return await admit(spare, ticket);
        } catch {
          // fall through to a connection dialled now
        }
      }
      return admit(dial(edge), ticket);
    },
    keepSpare(edge) {
      wanted.add(edge.href);
      if (!spares.has(edge.href)) replenish(edge);
    },
    dropSpare(edge) {
      wanted.delete(edge.href);
      takeSpare(edge)?.socket.destroy();
    },
    close() {
      wanted.clear();
      for (const { dialled, timer } of spares.values()) {
        clearTimeout(timer);
        dialled.socket.destroy();
      }
      spares.clear();
    },
  };

  function takeSpare(edge: URL): Dialled | undefined {
    const spare = spares.get(edge.href);
    if (spare === undefined) return undefined;
    spares.delete(edge.href);
    clearTimeout(spare.timer);
    const { socket } = spare.dialled;
    socket.off("end", spare.hungUp);
    return socket.destroyed || socket.readableEnded ? undefined : spare.dialled;
  }

  /** Dials the next spare to `edge`, when its link is up and it has none; replaced after its lifetime. */
  function replenish(edge: URL): void {
    if (!wanted.has(edge.href) || spares.has(edge.href) || options.throughProxy(edge)) return;
    const dialled = dial(edge);
    const timer = setTimeout(() => {
      if (spares.get(edge.href)?.dialled !== dialled) return;
      spares.delete(edge.href);
      dialled.socket.destroy();
      replenish(edge);
    }, spareLifetimeMs);
    timer.unref();
    // One that fails or is closed while waiting is forgotten; the next tunnel dials its own and a new spare.
    const forget = () => {
      if (spares.get(edge.href)?.dialled !== dialled) return;
      clearTimeout(timer);
      spares.delete(edge.href);
    };
    // Half-open allowed: a peer that hung up on a waiting connection only ends it. Waiting, it is dead.
    const hungUp = () => {
      forget();
      dialled.socket.destroy();
    };
    spares.set(edge.href, { dialled, timer, hungUp });
    dialled.socket.once("end", hungUp);
    dialled.ready.catch(forget);
    dialled.socket.once("close", forget);
  }

  /** A connection to `edge` reading through a relay, half-open allowed. */
  function dial(edge: URL): Dialled {
    const secure = edge.protocol === "https:";
    const host = edge.hostname.replace(/^\[|\]$/g, "");
    const port = edge.port === "" ? (secure ? 443 : 80) : Number(edge.port);
    const relay = new ReadRelay();
    const socket = secure
      ? Object.assign(
          connectTls({
            host,
            port,
            onread: relay.onread,
            ...(options.ca === undefined ? {} : { ca: options.ca }),
            // `onread` is documented for tls.connect (Node ≥ 15.7), missing from @types/node.
          } as ConnectionOptions),
          // A tunnel passes a half-close on: the edge's end of one direction must not end the other.
          { allowHalfOpen: true },
        )
      : connectTcp({ host, port, allowHalfOpen: true, noDelay: true, onread: relay.onread });
    attachRelay(socket, relay);
    // Idle, it may be reset by the edge or the network: that ends it, it does not crash the connector.
    socket.on("error", () => undefined);
    const ready = new Promise<void>((resolve, reject) => {
      socket.once(secure ? "secureConnect" : "connect", () => {
        socket.setNoDelay(true);
        resolve();
      });
      socket.once("close", () => reject(new Error("the connection to the edge closed")));
      socket.once("error", reject);
    });
    ready.catch(() => undefined);
    return { socket, relay, ready };
  }

  /** Presents `ticket` on a dialled connection; resolves with the socket once the edge answered 200. */
  async function admit({ socket, relay, ready }: Dialled, ticket: string): Promise<Socket> {
    const timer = setTimeout(
      () => socket.destroy(new Error("the edge did not answer in time")),
      answerTimeoutMs,
    );
    const closed = () => failed(new Error("the edge closed the connection"));
    let failed: (error: Error) => void = () => undefined;
    const gone = new Promise<never>((_, reject) => {
      failed = reject;
      // Half-open allowed: an edge that hangs up ends the socket without closing it.
      socket.once("end", closed);
      socket.once("close", closed);
      socket.once("error", failed);
    });
    gone.catch(() => undefined);
    try {
      await Promise.race([ready, gone]);
      socket.write(
        `CONNECT ${connectionAuthority} HTTP/1.1\r\nhost: ${connectionAuthority}\r\n` +
          `${connectionTicketHeader}: ${ticket}\r\n\r\n`,
      );
      const answer = await Promise.race([relay.head(socket, answerLimitBytes), gone]);
      const status = /^HTTP\/1\.[01] (\d{3}) /.exec(answer.toString("latin1"))?.[1];
      if (status !== "200") throw new Error(`the edge answered ${status ?? "something other than HTTP"}`);
      return socket;
    } catch (error) {
      socket.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
      // Admitted, the socket is the tunnel's: its end and close are the splice's to handle.
      socket.off("end", closed).off("close", closed).off("error", failed);
    }
  }
}
