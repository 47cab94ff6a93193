import type { Socket } from "node:net";
import type { Writable } from "node:stream";

/**
 * Bytes one direction of a tunnel may have queued in the destination socket before the source stops
 * reading. Far above Node's 16 KiB default, so a bulk transfer is not paused and resumed (two epoll
 * changes and a few ticks) after every 64 KiB read, yet bounded so a slow peer cannot make the gateway
 * buffer without limit.
 */
export const tunnelQueueLimit = 256 * 1024;

/** Reads of at least this size keep a socket on its own (large) read buffer. */
const bulkReadBytes = 16 * 1024;
/** The private read buffer of a socket in a bulk transfer. */
const privateBufferBytes = 256 * 1024;
/**
 * One read buffer shared by every idle or lightly used tunnel socket. Data read into it is copied out
 * at once, so it is never referenced by a pending write and any socket may read into it next.
 */
const sharedBuffer = Buffer.allocUnsafe(64 * 1024);

/**
 * Reads one tunnel socket without allocating per read (the public `onread` option of `net.connect`, so
 * only sockets tollgate dials itself: the destination side of a tunnel) and hands the bytes to the other
 * socket once the tunnel starts. A class: one per socket, living as long as the tunnel.
 *
 * Why: a stream read allocates a fresh 64 KiB buffer for every read, and at bulk rates that garbage
 * costs a gateway-sized heap more than the copying (bench/README.md, "Tunnels"). Here an idle socket
 * reads into one shared buffer (copied out, so the shared buffer is never pinned), and a socket whose
 * reads come back large switches to a private 256 KiB buffer it reuses read after read — replaced only
 * when a write to the client could not finish at once and still references it. Idle tunnels therefore
 * hold no read buffer of their own.
 */
export class ReadRelay {
  private destination: Writable | undefined;
  private held: Buffer[] | undefined;
  private headWaiter:
    | {
        readonly source: Socket;
        readonly limit: number;
        readonly resolve: (head: Buffer) => void;
        readonly reject: (error: Error) => void;
      }
    | undefined;
  private privateBuffer: Buffer | undefined;
  private bulk = false;

  /** What `net.connect({ onread })` gets. */
  readonly onread = {
    buffer: (): Buffer => this.nextBuffer(),
    callback: (bytes: number, buffer: Buffer): boolean => this.onRead(bytes, buffer),
  };

  /**
   * Starts delivering to `destination` (the client's socket, or a connector's stream to the edge): first
   * what arrived before the tunnel was established (a server that speaks first, such as SSH or
   * PostgreSQL's TLS answer), then everything else.
   */
  start(destination: Writable, source: Socket): void {
    this.destination = destination;
    for (const chunk of this.held ?? []) destination.write(chunk);
    this.held = undefined;
    source.resume();
  }

  private nextBuffer(): Buffer {
    if (!this.bulk) return sharedBuffer;
    this.privateBuffer ??= Buffer.allocUnsafe(privateBufferBytes);
    return this.privateBuffer;
  }

  /**
   * For a socket that answers an HTTP request before it becomes a tunnel (a connector's connection to
   * the edge, `CONNECT` then `200`): resolves with the bytes up to and including the first blank line
   * once they arrived, keeping whatever followed them for {@link start}. Rejects once `limit` bytes came
   * without one. Reads `source` until then.
   */
  head(source: Socket, limit: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.headWaiter = { source, limit, resolve, reject };
      this.checkHead();
    });
  }

  /** Keeps bytes that arrived before {@link start}. */
  private hold(chunk: Buffer): void {
    this.held ??= [];
    this.held.push(chunk);
    this.checkHead();
  }

  private checkHead(): void {
    const waiter = this.headWaiter;
    if (waiter === undefined) return;
    const received = Buffer.concat(this.held ?? []);
    const end = received.indexOf("\r\n\r\n");
    if (end === -1) {
      if (received.length > waiter.limit) {
        this.headWaiter = undefined;
        waiter.reject(new Error(`no answer within its first ${waiter.limit} bytes`));
        return;
      }
      // A read before the tunnel starts pauses the socket (see onRead): read on until the blank line.
      waiter.source.resume();
      return;
    }
    this.headWaiter = undefined;
    const rest = received.subarray(end + 4);
    this.held = rest.length > 0 ? [rest] : undefined;
    waiter.resolve(received.subarray(0, end + 4));
  }

  private onRead(bytes: number, buffer: Buffer): boolean {
    const shared = buffer === sharedBuffer;
    const destination = this.destination;
    // Before the tunnel starts, and always for the shared buffer, the bytes are copied out.
    const chunk =
      shared || destination === undefined
        ? Buffer.from(buffer.subarray(0, bytes))
        : buffer.subarray(0, bytes);
    if (shared) this.bulk = bytes === buffer.length;
    else if (bytes < bulkReadBytes) {
      this.bulk = false;
      this.privateBuffer = undefined;
    }
    if (destination === undefined) {
      this.hold(chunk);
      return false;
    }
    destination.write(chunk);
    const queued = destination.writableLength;
    // The write still references the private buffer: the next read needs a new one.
    if (!shared && queued > 0) this.privateBuffer = undefined;
    return queued <= tunnelQueueLimit;
  }
}

const relays = new WeakMap<Socket, ReadRelay>();

/** Remembers the relay of a socket created with its `onread`. */
export function attachRelay(socket: Socket, relay: ReadRelay): Socket {
  relays.set(socket, relay);
  return socket;
}

/** The relay of an upstream socket dialled by {@link attachRelay}'s caller, if any. */
export function relayOf(socket: Socket): ReadRelay | undefined {
  return relays.get(socket);
}
