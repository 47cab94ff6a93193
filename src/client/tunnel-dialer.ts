import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { GatewayTarget } from "./gateway-target.js";
import { openGatewayTunnel, type TunnelOutcome } from "./gateway-tunnel.js";
import type { TokenSource } from "./token-source.js";

/** Opens tunnels through one gateway, each with a fresh (cached until near expiry) token. */
export interface TunnelDialer {
  readonly gateway: GatewayTarget;
  /**
   * Opens a tunnel to `authority` (`host:port`). Rejects with `TG_CLIENT_TOKEN_UNAVAILABLE` or
   * `TG_CLIENT_GATEWAY_UNAVAILABLE`; a refusal by the gateway resolves as `{ ok: false }`.
   */
  dial(authority: string, signal?: AbortSignal): Promise<TunnelOutcome>;
}

/** Creates a {@link TunnelDialer}. */
export function createTunnelDialer(options: {
  gateway: GatewayTarget;
  tokens: TokenSource;
  timeoutMs?: number;
}): TunnelDialer {
  return {
    gateway: options.gateway,
    async dial(authority, signal) {
      const token = await options.tokens.token();
      return openGatewayTunnel(options.gateway, authority, token, {
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        ...(signal ? { signal } : {}),
      });
    },
  };
}

/**
 * Joins two byte streams in both directions. An end on one side is passed on as an end (half-close, so
 * a client that shuts down its sending side still gets the answer); an error on either side destroys both.
 * Resolves when both are closed.
 */
export function splice(local: Duplex, remote: Socket): Promise<void> {
  return new Promise((resolve) => {
    let closed = 0;
    const onClose = () => {
      closed += 1;
      if (closed === 2) resolve();
    };
    const destroyBoth = () => {
      local.destroy();
      remote.destroy();
    };
    local.on("error", destroyBoth);
    remote.on("error", destroyBoth);
    local.once("close", () => {
      // Both directions are done (or it was destroyed): let the other side flush, then close.
      remote.end();
      onClose();
    });
    remote.once("close", () => {
      local.end();
      onClose();
    });
    local.pipe(remote);
    remote.pipe(local);
  });
}
