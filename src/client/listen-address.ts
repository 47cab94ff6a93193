import { isIPv4, isIPv6 } from "node:net";
import { TollgateError } from "../errors/index.js";

/** A local address to listen on. */
export interface ListenAddress {
  /** Host name or IP literal without brackets. */
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
}

/**
 * Parses `HOST:PORT` (`127.0.0.1:8080`, `[::1]:0`, `localhost:3128`) or a bare port (`8080`, on
 * 127.0.0.1).
 *
 * @example
 * parseListenAddress("127.0.0.1:0"); // { host: "127.0.0.1", port: 0 }
 */
export function parseListenAddress(text: string): ListenAddress {
  const invalid = () =>
    new TollgateError(
      "TG_CONFIG_INVALID",
      `listen address ${JSON.stringify(text)}: expected HOST:PORT, e.g. 127.0.0.1:0`,
    );
  const bare = /^\d{1,5}$/.test(text);
  const match = bare ? null : /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]/@]+):(\d{1,5})$/.exec(text);
  if (!bare && match === null) throw invalid();
  const rawHost = bare ? "127.0.0.1" : match![1]!;
  const port = Number(bare ? text : match![2]);
  if (port > 65_535) throw invalid();
  const host = rawHost.startsWith("[") ? rawHost.slice(1, -1) : rawHost;
  if (rawHost.startsWith("[") && !isIPv6(host)) throw invalid();
  return { host, port };
}

/** `127.0.0.0/8`, `::1`, `::ffff:127.x.y.z` or `localhost`: addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const lower = host.toLowerCase();
  if (lower === "localhost") return true;
  if (isIPv4(lower)) return lower.startsWith("127.");
  if (isIPv6(lower)) {
    if (lower === "::1" || lower === "0:0:0:0:0:0:0:1") return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    return mapped !== null && mapped[1]!.startsWith("127.");
  }
  return false;
}

/**
 * Refuses a non-loopback listen address unless explicitly allowed: the client adds the workflow's
 * credential to everything it relays, so anyone who can reach the port would borrow the job's identity.
 */
export function assertListenAllowed(address: ListenAddress, allowRemote: boolean, what: string): void {
  if (isLoopbackHost(address.host) || allowRemote) return;
  throw new TollgateError(
    "TG_CONFIG_INVALID",
    `${what} would listen on ${address.host}, which is not a loopback address; anyone who can reach it would ` +
      "use this job's identity. Listen on 127.0.0.1, or pass --allow-remote if that is really intended.",
  );
}

/** `host:port` with brackets around IPv6 literals, for URLs and messages. */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}
