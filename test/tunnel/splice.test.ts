import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { spliceSockets, systemDial, type TunnelStats } from "../../src/tunnel/index.js";
import { eventually } from "./helpers.js";

/** A connected socket pair on loopback: `near` is what the gateway holds, `far` the client's end. */
async function socketPair(): Promise<{ near: Socket; far: Socket; server: Server }> {
  const server = createServer({ allowHalfOpen: true });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const accepted = once(server, "connection");
  const far = connect((server.address() as AddressInfo).port, "127.0.0.1");
  const [near] = (await accepted) as [Socket];
  return { near, far, server };
}

describe("spliceSockets with a relay-read upstream", () => {
  const servers: Server[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) server.close();
  });

  it("delivers bytes the destination sent before the tunnel started, then the rest, then the FIN", async () => {
    const destination = createServer({ allowHalfOpen: true }, (socket) => {
      socket.write("hello-first ");
      socket.once("data", () => socket.end("bye"));
    });
    destination.listen(0, "127.0.0.1");
    await once(destination, "listening");
    servers.push(destination);
    const upstream = systemDial({
      host: "127.0.0.1",
      port: (destination.address() as AddressInfo).port,
      family: 4,
      use: "tunnel",
    });
    await once(upstream, "connect");
    // The greeting is read (and held) before anything is spliced.
    await eventually(
      async () => upstream.bytesRead,
      (read) => read > 0,
    );
    const { near, far, server } = await socketPair();
    servers.push(server);
    let stats: TunnelStats | undefined;
    spliceSockets(near, upstream, {
      idleTimeoutMs: 60_000,
      maxLifetimeMs: 60_000,
      onClose: (closed) => {
        stats = closed;
      },
    });
    let text = "";
    far.setEncoding("utf8");
    far.on("data", (chunk: string) => {
      text += chunk;
      if (text === "hello-first ") far.write("go");
    });
    await once(far, "end");
    far.end();
    expect(text).toBe("hello-first bye");
    await eventually(
      async () => stats,
      (value) => value !== undefined,
    );
    expect(stats).toEqual({ bytesIn: 2, bytesOut: 15, reason: "closed" });
  });

  it("delivers what the client socket had buffered before the splice, then the rest, through a relay-reading upstream", async () => {
    const echo = createServer({ allowHalfOpen: true }, (socket) => socket.pipe(socket));
    echo.listen(0, "127.0.0.1");
    await once(echo, "listening");
    servers.push(echo);
    const { near, far, server } = await socketPair();
    servers.push(server);
    far.write("early bytes|");
    await eventually(
      async () => near.readableLength,
      (length) => length > 0,
    );
    const upstream = systemDial({
      host: "127.0.0.1",
      port: (echo.address() as AddressInfo).port,
      family: 4,
      use: "tunnel",
    });
    await once(upstream, "connect");
    spliceSockets(near, upstream, { idleTimeoutMs: 60_000, maxLifetimeMs: 60_000, onClose: () => undefined });
    let text = "";
    far.setEncoding("utf8");
    far.on("data", (chunk: string) => {
      text += chunk;
      if (text === "early bytes|") far.end("late bytes");
    });
    await once(far, "end");
    expect(text).toBe("early bytes|late bytes");
    far.destroy();
  });
});
