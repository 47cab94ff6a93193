import { connect as connectTls } from "node:tls";
import { type Dispatcher, Pool } from "undici";
import type { ConnectorPools } from "../pipeline/connectors.js";

/**
 * The undici dispatcher of a `via` route's upstream: a keep-alive pool whose connections are HTTP/2
 * CONNECT streams through the pool's connectors (each stream a byte stream to `host:port` as the
 * connector sees it, checked against the connector's allow-list), never sockets this edge dials. HTTP/1.1
 * runs over the stream as over a socket; an `https:` upstream gets its TLS over the stream, verified as
 * any upstream's.
 *
 * A connection is shared by the requests undici sends on it, so the connector's line for it names the
 * route's destination, not each caller; the edge's audit line of every request names the pool.
 */
export function createViaDispatcher(
  pools: ConnectorPools,
  pool: string,
  origin: URL,
  connections: number,
): Dispatcher {
  const secure = origin.protocol === "https:";
  const hostname = origin.hostname.replace(/^\[|\]$/g, "");
  const port = origin.port === "" ? (secure ? 443 : 80) : Number(origin.port);
  const authority = origin.hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
  return new Pool(origin.origin, {
    connections,
    pipelining: 1,
    connect: (_options, callback) => {
      let opened: ReturnType<ConnectorPools["open"]>;
      try {
        opened = pools.open(pool, { ":method": "CONNECT", ":authority": authority });
      } catch (error) {
        // undici expects the answer after the call returns, as a real connect gives it.
        queueMicrotask(() => callback(error as Error, null));
        return;
      }
      const { stream } = opened;
      let answered = false;
      const fail = (error: Error) => {
        if (answered) return;
        answered = true;
        stream.destroy();
        callback(error, null);
      };
      stream.once("error", fail);
      stream.once("close", () => fail(new Error(`the connector of ${pool} closed the stream`)));
      stream.once("response", (headers) => {
        const status = Number(headers[":status"]);
        if (status !== 200)
          return fail(new Error(`the connector of ${pool} answered ${status} for ${authority}`));
        if (!secure) {
          answered = true;
          stream.removeListener("error", fail);
          return void callback(null, stream as never);
        }
        const tls = connectTls({ socket: stream, servername: hostname, ALPNProtocols: ["http/1.1"] });
        tls.once("secureConnect", () => {
          answered = true;
          callback(null, tls);
        });
        tls.once("error", fail);
      });
    },
  });
}
