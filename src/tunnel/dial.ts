import { lookup as dnsLookup } from "node:dns/promises";
import { connect, type Socket } from "node:net";
import { TollgateError } from "../errors/index.js";
import type { CheckedAddress } from "./destination-check.js";
import { formatHostPort, type NormalizedHost, normalizeAddress } from "./ip-address.js";
import { attachRelay, ReadRelay } from "./read-relay.js";
import type { LookupAll, TunnelTarget } from "./types.js";

/** The system resolver, every address in the order it gives them. */
export const systemLookup: LookupAll = (hostname) => dnsLookup(hostname, { all: true, order: "verbatim" });

/**
 * Opens a TCP connection to an IP address (never a name). Injected so tests can observe every dial
 * attempt; the default is `net.connect` with half-close allowed and Nagle off.
 */
export type DialAddress = (options: DialOptions) => Socket;

/** Where to connect, and what the socket is for. */
export interface DialOptions {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
  /**
   * `tunnel`: the socket will be spliced to a client, so it may read through a {@link ReadRelay}.
   * `http`: an HTTP client (undici) reads it as a stream.
   */
  readonly use: "tunnel" | "http";
}

/** The default {@link DialAddress}: reads go through a {@link ReadRelay} (no allocation per read). */
export const systemDial: DialAddress = ({ host, port, family, use }) => {
  const options = { host, port, family, allowHalfOpen: true, noDelay: true, lookup: refuseLookup };
  if (use === "http") return connect(options);
  const relay = new ReadRelay();
  return attachRelay(connect({ ...options, onread: relay.onread }), relay);
};

/** An IP host, the only kind a tunnel ever dials. */
export type IpHost = NormalizedHost & { kind: "ipv4" | "ipv6" };

/**
 * Resolves the target's host name once, normalising every answer (IPv4-mapped answers become IPv4).
 * An IP target is its own single answer. Throws `TG_TUNNEL_CONNECT_TIMEOUT` past the deadline,
 * `TG_TUNNEL_DESTINATION_UNREACHABLE` when the name does not resolve, or the signal's reason.
 *
 * The result is what gets checked *and* what gets dialled: there is no second lookup anywhere, so a name
 * whose records change between the check and the connection (DNS rebinding) cannot redirect the tunnel.
 */
export async function resolveTarget(
  target: TunnelTarget,
  lookup: LookupAll,
  deadline: number,
  now: () => number,
  signal: AbortSignal,
): Promise<IpHost[]> {
  const host = target.host;
  if (host.kind !== "name") return [host];
  const answers = await withDeadline(
    lookup(host.name),
    deadline,
    now,
    signal,
    () =>
      new TollgateError(
        "TG_TUNNEL_CONNECT_TIMEOUT",
        `resolving ${host.name} took longer than the connect timeout`,
      ),
  ).catch((error: unknown) => {
    if (error instanceof TollgateError) throw error;
    const code = (error as { code?: unknown }).code;
    throw new TollgateError(
      "TG_TUNNEL_DESTINATION_UNREACHABLE",
      `${host.name} could not be resolved [${typeof code === "string" ? code : "lookup failed"}]`,
      { cause: error },
    );
  });
  const addresses: IpHost[] = [];
  for (const answer of answers) {
    const normalized = normalizeAddress(answer.address);
    // An answer that is not an address (a resolver bug, a zone id) is refused, never guessed at.
    if (normalized === undefined || normalized.kind === "name") {
      throw new TollgateError(
        "TG_TUNNEL_DESTINATION_FORBIDDEN",
        `${host.name} resolved to an unusable address`,
      );
    }
    if (!addresses.some((known) => known.address === normalized.address)) addresses.push(normalized);
  }
  return addresses;
}

/**
 * Connects to the checked addresses in order until one accepts, within the deadline. Each address is an
 * IP literal, so `net.connect` does no lookup of its own (and a lookup that refuses is passed anyway, so
 * even a future change there could only fail closed).
 */
export async function dialChecked(
  checked: readonly CheckedAddress[],
  port: number,
  deadline: number,
  now: () => number,
  signal: AbortSignal,
  dial: DialAddress = systemDial,
  use: DialOptions["use"] = "tunnel",
): Promise<{ socket: Socket; via: CheckedAddress }> {
  let lastError: TollgateError | undefined;
  for (const candidate of checked) {
    const remaining = deadline - now();
    if (remaining <= 0) break;
    try {
      return {
        socket: await connectOnce(dial, use, candidate.address, port, remaining, signal),
        via: candidate,
      };
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      lastError = error as TollgateError;
      if (lastError.code === "TG_TUNNEL_CONNECT_TIMEOUT") break;
    }
  }
  throw (
    lastError ??
    new TollgateError("TG_TUNNEL_CONNECT_TIMEOUT", "no time was left to connect within the connect timeout")
  );
}

function connectOnce(
  dial: DialAddress,
  use: DialOptions["use"],
  address: IpHost,
  port: number,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Socket> {
  const shown = formatHostPort(address, port);
  return new Promise<Socket>((resolve, reject) => {
    const socket = dial({ host: address.address, port, family: address.kind === "ipv4" ? 4 : 6, use });
    const finish = (error?: TollgateError) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      socket.off("connect", onConnect);
      socket.off("error", onError);
      if (error === undefined) return resolve(socket);
      socket.destroy();
      reject(error);
    };
    const onConnect = () => finish();
    const onError = (error: NodeJS.ErrnoException) =>
      finish(
        new TollgateError(
          "TG_TUNNEL_DESTINATION_UNREACHABLE",
          `${shown} ${failureWords(error.code)} [${error.code ?? "error"}]`,
          {
            cause: error,
          },
        ),
      );
    const onAbort = () => finish(signal.reason as TollgateError);
    const timer = setTimeout(
      () =>
        finish(
          new TollgateError(
            "TG_TUNNEL_CONNECT_TIMEOUT",
            `${shown} did not accept the connection in ${timeoutMs}ms`,
          ),
        ),
      timeoutMs,
    );
    socket.once("connect", onConnect);
    socket.once("error", onError);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function refuseLookup(
  hostname: string,
  _options: unknown,
  callback: (error: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const error: NodeJS.ErrnoException = new Error(`tunnel dial must not resolve ${hostname}`);
  error.code = "ENOTFOUND";
  callback(error, "", 0);
}

function failureWords(code: string | undefined): string {
  switch (code) {
    case "ECONNREFUSED":
      return "refused the connection";
    case "ECONNRESET":
      return "reset the connection";
    case "EHOSTUNREACH":
      return "is unreachable";
    case "ENETUNREACH":
      return "is on an unreachable network";
    default:
      return "could not be connected";
  }
}

function withDeadline<T>(
  work: Promise<T>,
  deadline: number,
  now: () => number,
  signal: AbortSignal,
  timeoutError: () => TollgateError,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => settle(() => reject(signal.reason));
    // dns.lookup cannot be cancelled (it runs on libuv's thread pool); the answer is just ignored.
    const timer = setTimeout(() => settle(() => reject(timeoutError())), Math.max(0, deadline - now()));
    let settled = false;
    function settle(action: () => void) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      action();
    }
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => settle(() => resolve(value)),
      (error: unknown) => settle(() => reject(error)),
    );
  });
}
