import {
  type IncomingMessage,
  type ServerResponse,
  validateHeaderName,
  validateHeaderValue,
} from "node:http";
import type { AuditEvent, AuditLog } from "../audit/types.js";
import { TollgateError } from "../errors/index.js";
import type { Clock } from "../lib/clock.js";
import type { UpgradedExchange, UpstreamForwarder } from "../proxy/index.js";
import type { ProxyRoute } from "../proxy/types.js";
import { routeWebSocketDefaults } from "../proxy/websocket-schema.js";
import { closeTunnels, type SplicedTunnel } from "../tunnel/index.js";
import { spliceStream } from "../tunnel/splice-stream.js";
import type { RouteCarrier } from "./route-pipeline.js";
import { hasDeclaredBody, releaseUpgradeSocket } from "./upgrade-response.js";

/** What the WebSocket carrier is built from, once per gateway (open WebSockets outlive reloads). */
export interface WebSocketCarrierOptions {
  readonly auditLog: AuditLog;
  readonly clock: Clock;
  readonly forwarder: UpstreamForwarder;
}

/** The route pipeline's last step for WebSocket upgrades, and the WebSockets it carries. */
export interface WebSocketCarrier extends RouteCarrier {
  /**
   * Graceful stop: refuses new upgrades, closes every open WebSocket (FIN both ways, reason `shutdown`)
   * and waits for them to finish closing, for at most a few seconds.
   */
  close(): Promise<void>;
}

/** The longest a graceful stop waits for WebSockets to finish closing (as for tunnels). */
const shutdownWaitMs = 3_000;

/**
 * Carries WebSocket upgrades (RFC 6455) on reverse-proxy routes, after the route pipeline admitted them
 * like any request. Refused before any token work: an `Upgrade` other than `websocket` (only a request
 * with a body gets here with one: the gateway serves a body-less one as a plain request), a method other
 * than GET or a body, and a route with `websocket: false`. An admitted upgrade is sent upstream by the forwarder
 * (undici's `upgrade`, over the route's pool or connector); the upstream's 101 is passed back and the two
 * connections are spliced by the tunnels' splice, with the route's idle and maximum lifetimes. Any other
 * answer reaches the client as a proxied answer does. The pipeline's `gateway.request` line records the
 * decision (status 101 when switched); `websocket.close` records the bytes both ways, the duration and why
 * it closed.
 *
 * @example
 * const websockets = createWebSocketCarrier({ auditLog, clock, forwarder });
 * const serveUpgrade = createRoutePipeline({ auditLog, logger, clock, forwarder, proto, carrier: websockets });
 * await websockets.close(); // on shutdown
 */
export function createWebSocketCarrier(options: WebSocketCarrierOptions): WebSocketCarrier {
  const { auditLog, clock, forwarder } = options;
  const open = new Set<SplicedTunnel>();
  let closing = false;

  function startSplice(
    answer: UpgradedExchange,
    res: ServerResponse,
    route: ProxyRoute,
    decided: AuditEvent,
  ): void {
    const limits =
      route.websocket === undefined || route.websocket === false ? routeWebSocketDefaults : route.websocket;
    const client = releaseUpgradeSocket(res);
    const openedAt = clock();
    const spliced = spliceStream(client, answer.socket, {
      idleTimeoutMs: limits.idleTimeoutMs,
      maxLifetimeMs: limits.maxLifetimeMs,
      onClose: (stats) => {
        open.delete(spliced);
        // The request's path and host stay on the decision line, redacted there with the request's token.
        auditLog.emit({
          event: "websocket.close",
          request_id: decided.request_id,
          decision: "allow",
          reason: stats.reason,
          client_ip: decided.client_ip,
          route: decided.route,
          policy: decided.policy,
          token_sha256: decided.token_sha256,
          upstream: decided.upstream,
          connector_pool: decided.connector_pool,
          bytes_in: stats.bytesIn,
          bytes_out: stats.bytesOut,
          duration_ms: clock() - openedAt,
          identity: decided.identity,
        });
      },
    });
    open.add(spliced);
  }

  return {
    refuse(req, route) {
      if (!isWebSocketUpgrade(req)) {
        return new TollgateError(
          "TG_BAD_REQUEST",
          "only WebSocket upgrades are carried; send this request without Upgrade",
        );
      }
      if (req.method !== "GET" || hasDeclaredBody(req)) {
        return new TollgateError(
          "TG_BAD_REQUEST",
          "a WebSocket upgrade is a GET request without a body (RFC 6455 §4.1)",
        );
      }
      if (route.websocket === false) {
        return new TollgateError("TG_BAD_REQUEST", "this route does not carry WebSocket upgrades");
      }
      return undefined;
    },

    async carry(req, res, route, context, event) {
      if (closing) throw new TollgateError("TG_SHUTTING_DOWN", "gateway is shutting down");
      const answer = await forwarder.upgrade(req, res, route, context);
      // The upstream did not switch: its answer went to the client as a proxied answer does.
      if (!("socket" in answer)) return answer;
      const client = res.socket;
      let switched: string;
      try {
        if (closing) throw new TollgateError("TG_SHUTTING_DOWN", "gateway is shutting down");
        switched = switchingProtocols(answer.headers, route);
      } catch (error) {
        answer.socket.destroy();
        throw error;
      }
      if (client === null || client.destroyed) {
        // The client left while the upstream answered: nobody to switch protocols with (nginx's 499).
        answer.socket.destroy();
        return { status: 499 };
      }
      client.write(switched);
      startSplice(answer, res, route, event);
      return { status: 101 };
    },

    async close() {
      closing = true;
      await closeTunnels(open, shutdownWaitMs);
    },
  };
}

/**
 * Whether a request asks to switch to WebSocket: its `Upgrade` lists `websocket` (any case, RFC 6455
 * §4.2.1). Node hands every request with `Connection: upgrade` and `Upgrade` to the upgrade listener.
 *
 * @example
 * isWebSocketUpgrade(req); // true for `Upgrade: websocket`, false for `Upgrade: h2c`
 */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  if (upgrade === undefined) return false;
  return upgrade.split(",").some((protocol) => protocol.trim().toLowerCase() === "websocket");
}

/**
 * The 101 status line and headers for the client. undici parsed them strictly, but they are written to
 * the socket by hand here (a 101 is not a response `ServerResponse` can send), so each is checked as
 * Node checks the headers it writes; a bad one is the upstream's fault, answered 502 before any byte.
 */
function switchingProtocols(headers: readonly string[], route: ProxyRoute): string {
  let text = "HTTP/1.1 101 Switching Protocols\r\n";
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch (error) {
      throw new TollgateError(
        "TG_UPSTREAM_UNAVAILABLE",
        `route "${route.name}": upstream ${route.upstream.origin} sent an invalid header in its 101`,
        { cause: error },
      );
    }
    text += `${name}: ${value}\r\n`;
  }
  return `${text}\r\n`;
}
