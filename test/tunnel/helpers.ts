import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";

/** A loopback TCP echo server that counts the connections it accepted. */
export interface EchoServer {
  readonly port: number;
  connections(): number;
  close(): Promise<void>;
}

export async function startEchoServer(): Promise<EchoServer> {
  let accepted = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    socket.pipe(socket);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => accepted,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The answer to a raw CONNECT: status line, headers, body (for errors) and the socket (for 200). */
export interface ConnectAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  socket: Socket;
  /** Bytes that arrived after the response head (tunnel data, for 200). */
  rest: Buffer;
}

/**
 * Sends `CONNECT target` with the given headers and reads the response head (and, for a non-200
 * answer, the body up to the close). For 200 the socket stays open for tunnel traffic.
 */
export function rawConnect(
  gatewayPort: number,
  target: string,
  headers: Record<string, string> = {},
  gatewayHost = "127.0.0.1",
): Promise<ConnectAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(gatewayPort, gatewayHost);
    let received = Buffer.alloc(0);
    let head: { status: number; headers: Record<string, string> } | undefined;
    const lines = [
      `CONNECT ${target} HTTP/1.1`,
      `host: ${target}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    socket.on("connect", () => socket.write(`${lines.join("\r\n")}\r\n\r\n`));
    socket.on("error", reject);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (head !== undefined) return;
      const end = received.indexOf("\r\n\r\n");
      if (end === -1) return;
      const text = received.subarray(0, end).toString("latin1").split("\r\n");
      const status = Number(text[0]!.split(" ")[1]);
      const parsed: Record<string, string> = {};
      for (const line of text.slice(1)) {
        const colon = line.indexOf(":");
        parsed[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      head = { status, headers: parsed };
      received = received.subarray(end + 4);
      if (status === 200) {
        socket.off("data", onData);
        socket.off("error", reject);
        resolve({ ...head, body: "", socket, rest: received });
      }
    };
    socket.on("data", onData);
    socket.on("close", () => {
      if (head === undefined)
        return reject(new Error(`connection closed before a response: ${received.toString()}`));
      if (head.status !== 200)
        resolve({ ...head, body: received.toString("utf8"), socket, rest: Buffer.alloc(0) });
    });
  });
}

/** Writes `text` into an open tunnel and reads until as many bytes came back (an echo round trip). */
export async function echoRoundTrip(
  socket: Socket,
  text: string,
  already: Buffer = Buffer.alloc(0),
): Promise<string> {
  let received = already;
  const wanted = Buffer.byteLength(text);
  const done = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= wanted) {
        socket.off("data", onData);
        resolve(received.toString("utf8"));
      }
    };
    socket.on("data", onData);
    socket.once("close", () => reject(new Error(`tunnel closed after ${received.length} bytes`)));
  });
  socket.write(text);
  return done;
}

/** Resolves when `socket` closes (after `end` or a reset). */
export function closed(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  socket.resume();
  return new Promise((resolve) => socket.once("close", () => resolve()));
}

/** Polls `read` until `accept` holds, at most `attempts` times 25 ms apart. */
export async function eventually<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  attempts = 200,
): Promise<T> {
  let value = await read();
  for (let i = 0; i < attempts && !accept(value); i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    value = await read();
  }
  return value;
}
