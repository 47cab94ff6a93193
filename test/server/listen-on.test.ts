import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { listenOn } from "../../src/server/listen-on.js";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

function answering(): Server {
  const server = createServer((_req, res) => res.end("ok"));
  servers.push(server);
  return server;
}

/** A server on a host whose kernel has no IPv6: binding `::` fails as it would there. */
function withoutIPv6(server: Server): Server {
  const listen = server.listen.bind(server) as (...args: unknown[]) => Server;
  (server as unknown as { listen: (...args: unknown[]) => Server }).listen = (...args: unknown[]) => {
    if (args[1] !== "::") return listen(...args);
    const error = Object.assign(new Error("listen EAFNOSUPPORT: address family not supported"), {
      code: "EAFNOSUPPORT",
    });
    setImmediate(() => server.emit("error", error));
    return server;
  };
  return server;
}

describe("listenOn", () => {
  it("`::` is every interface, IPv6 and IPv4: loopback answers on both", async () => {
    const address = await listenOn(answering(), 0, "::");
    expect(address.address).toBe("::");
    expect(await (await fetch(`http://127.0.0.1:${address.port}/`)).text()).toBe("ok");
    expect(await (await fetch(`http://[::1]:${address.port}/`)).text()).toBe("ok");
  });

  it("`::` on a host without IPv6 falls back to every IPv4 interface", async () => {
    const address = await listenOn(withoutIPv6(answering()), 0, "::");
    expect(address.address).toBe("0.0.0.0");
    expect(await (await fetch(`http://127.0.0.1:${address.port}/`)).text()).toBe("ok");
  });

  it("any other failure is not papered over: a port in use is an error, on `::` too", async () => {
    const taken = await listenOn(answering(), 0, "::");
    await expect(listenOn(answering(), taken.port, "::")).rejects.toMatchObject({ code: "EADDRINUSE" });
    await expect(listenOn(answering(), taken.port, "127.0.0.1")).rejects.toMatchObject({
      code: "EADDRINUSE",
    });
  });

  it("a specific address is only that address", async () => {
    const address = await listenOn(answering(), 0, "127.0.0.1");
    expect(address.address).toBe("127.0.0.1");
    await expect(fetch(`http://[::1]:${address.port}/`)).rejects.toThrow();
  });
});
