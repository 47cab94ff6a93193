import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import { TollgateError } from "../errors/index.js";
import type { GatewayTarget } from "./gateway-target.js";
import { assertListenAllowed, formatHostPort, type ListenAddress } from "./listen-address.js";
import type { ClientLog } from "./local-proxy.js";
import { describeRefusal } from "./relay-errors.js";
import type { TokenSource } from "./token-source.js";
import { createTunnelDialer, splice } from "./tunnel-dialer.js";

/** One `tollgate forward` argument, parsed. */
export interface ForwardSpec {
  /** Where to listen locally (default host 127.0.0.1). */
  readonly listen: ListenAddress;
  /** The tunnel destination as the gateway sees it: `host:port` (IPv6 in brackets). */
  readonly destination: string;
}

/**
 * Parses `LOCAL_PORT:HOST:PORT` or `LOCAL_ADDR:LOCAL_PORT:HOST:PORT` (IPv6 addresses in brackets:
 * `[::1]:5432:[fd00::5]:5432`). A local port of 0 picks a free one.
 *
 * @example
 * parseForwardSpec("15432:db.internal:5432"); // { listen: { host: "127.0.0.1", port: 15432 }, destination: "db.internal:5432" }
 */
export function parseForwardSpec(text: string): ForwardSpec {
  const invalid = (reason: string) =>
    new TollgateError(
      "TG_CONFIG_INVALID",
      `forward ${JSON.stringify(text)}: ${reason} (expected LOCAL_PORT:HOST:PORT or LOCAL_ADDR:LOCAL_PORT:HOST:PORT)`,
    );
  const parts = splitHostPortList(text.trim());
  if (parts === undefined || (parts.length !== 3 && parts.length !== 4)) throw invalid("wrong shape");
  const [localHost, localPort, host, port] =
    parts.length === 3
      ? ["127.0.0.1", parts[0]!, parts[1]!, parts[2]!]
      : [parts[0]!, parts[1]!, parts[2]!, parts[3]!];
  const listenPort = parsePort(localPort, true);
  const destinationPort = parsePort(port, false);
  if (listenPort === undefined) throw invalid(`local port ${localPort} is not a port number`);
  if (destinationPort === undefined) throw invalid(`destination port ${port} is not a port number (1-65535)`);
  if (!/^[A-Za-z0-9._-]+$/.test(host) && !(host.includes(":") && /^[0-9A-Fa-f:.]+$/.test(host))) {
    throw invalid(`destination host ${host} is not a host name or IP address`);
  }
  if (localHost.length === 0) throw invalid("empty local address");
  return {
    listen: { host: localHost, port: listenPort },
    destination: formatHostPort(host, destinationPort),
  };
}

/** Splits on `:` outside brackets; bracketed parts are returned without brackets. */
function splitHostPortList(text: string): string[] | undefined {
  const parts: string[] = [];
  let index = 0;
  while (index <= text.length) {
    if (text[index] === "[") {
      const close = text.indexOf("]", index);
      if (close === -1) return undefined;
      parts.push(text.slice(index + 1, close));
      index = close + 1;
      if (index < text.length && text[index] !== ":") return undefined;
      index += 1;
      continue;
    }
    const next = text.indexOf(":", index);
    const end = next === -1 ? text.length : next;
    parts.push(text.slice(index, end));
    index = end + 1;
  }
  return parts.some((part) => part.length === 0) ? undefined : parts;
}

function parsePort(text: string, allowZero: boolean): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65_535 && (allowZero || port > 0) ? port : undefined;
}

/** How `tollgate forward` runs. */
export interface PortForwardOptions {
  readonly forwards: readonly ForwardSpec[];
  readonly gateway: GatewayTarget;
  readonly tokens: TokenSource;
  readonly allowRemote?: boolean;
  readonly log?: ClientLog;
  readonly verbose?: boolean;
  readonly gatewayTimeoutMs?: number;
}

/** Running local listeners, one per forward. */
export interface PortForwards {
  readonly listeners: readonly { readonly address: ListenAddress; readonly destination: string }[];
  /** Stops listening and closes every tunnel. */
  close(): Promise<void>;
}

/**
 * Opens one local TCP listener per forward; every accepted connection is carried through its own CONNECT
 * tunnel with a fresh token, for clients that cannot use a proxy (psql, ssh, redis-cli). When the gateway
 * refuses, the local connection is closed and the reason logged (TCP has no way to say why).
 *
 * @example
 * const forwards = await startPortForwards({ forwards: [parseForwardSpec("15432:db.internal:5432")], gateway, tokens });
 */
export async function startPortForwards(options: PortForwardOptions): Promise<PortForwards> {
  for (const forward of options.forwards) {
    assertListenAllowed(
      forward.listen,
      options.allowRemote === true,
      `the forward to ${forward.destination}`,
    );
  }
  const log: ClientLog = options.log ?? ((line) => process.stderr.write(`tollgate forward: ${line}\n`));
  const dialer = createTunnelDialer({
    gateway: options.gateway,
    tokens: options.tokens,
    ...(options.gatewayTimeoutMs === undefined ? {} : { timeoutMs: options.gatewayTimeoutMs }),
  });
  const open = new Set<Socket>();
  const closing = new AbortController();
  const track = (socket: Socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  };
  const servers: Server[] = [];
  const listeners: { address: ListenAddress; destination: string }[] = [];

  async function carry(client: Socket, destination: string, label: string): Promise<void> {
    track(client);
    client.on("error", () => client.destroy());
    try {
      const outcome = await dialer.dial(destination, closing.signal);
      if (!outcome.ok) {
        log(`${label}: ${describeRefusal(outcome.refusal)}; connection closed`);
        client.destroy();
        return;
      }
      track(outcome.socket);
      if (client.destroyed) {
        outcome.socket.destroy();
        return;
      }
      if (options.verbose) log(`${label}: tunnel open`);
      if (outcome.head.length > 0) client.write(outcome.head);
      const done = splice(client, outcome.socket);
      client.resume();
      await done;
    } catch (error) {
      log(
        `${label}: ${error instanceof TollgateError ? `${error.code}: ${error.message}` : "internal error"}`,
      );
      client.destroy();
    }
  }

  try {
    for (const forward of options.forwards) {
      // Paused until the tunnel is up, so the client's first bytes wait instead of being lost.
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(forward.listen.port, forward.listen.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
      const bound = server.address() as AddressInfo;
      const address = { host: bound.address, port: bound.port };
      const label = `${formatHostPort(address.host, address.port)} -> ${forward.destination}`;
      server.on("connection", (client: Socket) => {
        carry(client, forward.destination, label).catch(() => client.destroy());
      });
      listeners.push({ address, destination: forward.destination });
    }
  } catch (error) {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    const code = (error as NodeJS.ErrnoException).code;
    throw new TollgateError(
      "TG_CONFIG_INVALID",
      `cannot listen for forward ${options.forwards[servers.length - 1]?.destination ?? ""}: ${code ?? "failed"}`,
      { cause: error },
    );
  }
  return {
    listeners,
    async close() {
      closing.abort();
      const stopped = Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
      for (const socket of open) socket.destroy();
      await stopped;
    },
  };
}
