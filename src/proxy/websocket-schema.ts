import { z } from "zod";
import { durationOr } from "../lib/duration.js";
import { duration } from "../lib/schema-fields.js";
import type { RouteWebSocket } from "./types.js";

/**
 * A route's `websocket` key: whether the route carries WebSocket upgrades (HTTP/1.1 `Upgrade:
 * websocket`), and for how long. The proxy owns it beside `CompiledRoute`; `config/schema.ts` composes it
 * into the route schema and `config/compile-config.ts` calls {@link compileRouteWebSocket}.
 */

/** Defaults of a route's WebSocket limits: those of tunnels, the other long-lived byte streams. */
export const routeWebSocketDefaults: RouteWebSocket = Object.freeze({
  idleTimeoutMs: 10 * 60_000,
  maxLifetimeMs: 6 * 3_600_000,
});

export const routeWebSocketSchema = z
  .union(
    [
      z.literal(false),
      z.strictObject({
        idle_timeout: duration(
          "A WebSocket with no byte in either direction for this long is closed. Default: 10m.",
          "10m",
          { positive: true },
        ).optional(),
        max_lifetime: duration(
          "A WebSocket is closed this long after it opened, busy or not. Default: 6h.",
          "6h",
          { positive: true },
        ).optional(),
      }),
    ],
    { error: "must be false (refuse upgrades), or a mapping with idle_timeout and max_lifetime" },
  )
  .describe(
    "WebSocket upgrades on this route: they pass the same checks as any request (the route must allow GET), then the connection is carried both ways until either side closes it, it is idle for `idle_timeout`, or it reaches `max_lifetime`. `false` refuses upgrades (400). Default: carried, with idle_timeout 10m and max_lifetime 6h.",
  )
  .meta({ examples: [{ idle_timeout: "5m", max_lifetime: "1h" }] });

/** `websocket` as written. */
export type RawRouteWebSocket = z.output<typeof routeWebSocketSchema>;

/**
 * A route's `websocket` compiled: `false` stays `false`, anything else becomes the limits in
 * milliseconds, with the defaults for what is left out.
 *
 * @example
 * compileRouteWebSocket({ idle_timeout: "30s" }); // { idleTimeoutMs: 30000, maxLifetimeMs: 21600000 }
 * compileRouteWebSocket(undefined); // the defaults
 */
export function compileRouteWebSocket(raw: RawRouteWebSocket | undefined): RouteWebSocket | false {
  if (raw === false) return false;
  return Object.freeze({
    idleTimeoutMs: durationOr(raw?.idle_timeout, routeWebSocketDefaults.idleTimeoutMs),
    maxLifetimeMs: durationOr(raw?.max_lifetime, routeWebSocketDefaults.maxLifetimeMs),
  });
}
