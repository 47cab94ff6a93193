import type { IncomingMessage, ServerResponse } from "node:http";
import type { AuditEvent } from "../audit/types.js";
import { TollgateError } from "../errors/index.js";
import { admitCaller } from "../pipeline/admit-caller.js";
import { extractToken } from "../pipeline/extract-token.js";
import type {
  FeatureContext,
  FeatureDependencies,
  FeatureFactory,
  GatewayFeature,
} from "../pipeline/feature.js";
import { answeredFor, auditFailure } from "../pipeline/outcome.js";
import { claimHeaderName, claimHeaders } from "../proxy/headers.js";
import { normalizeRequestPath } from "../proxy/normalize-path.js";
import { createRouteTable } from "../proxy/route-table.js";
import type { CompiledRoute } from "../proxy/types.js";
import { originalRequest } from "./original-request.js";
import type { CompiledForwardAuth, ForwardAuthFeatureConfig } from "./types.js";

/**
 * `server.forward_auth`: the endpoint an ingress (nginx `auth_request`, Caddy `forward_auth`, Traefik
 * `ForwardAuth`, Envoy `ext_authz`) asks before it proxies a request itself. Off unless configured.
 *
 * For each subrequest: which request it is about (original-request.ts) → its target normalised as the
 * proxy normalises → the route for its host and path, in either mode → the method → the route's caller
 * rules, the very steps of the reverse proxy (`admitCaller`: rate limits, token, throttle, policies,
 * single use) → 200 with the route's `forward_claims` as `Tollgate-Claim-*` headers, cacheable for
 * `max_age` within the token's lifetime, or the usual error answer (401 with `WWW-Authenticate`, 403, …,
 * `Cache-Control: no-store`). One `gateway.request` audit event per subrequest, with `forward_auth: true`.
 *
 * @example
 * // tollgate.yaml
 * // server: { forward_auth: { path: /_tollgate/auth, max_age: 60s } }
 * // routes: [{ name: artifacts, mode: forward_auth, path_prefix: /artifacts/, allow: [org-ci] }]
 */
export const forwardAuthFeature: FeatureFactory<ForwardAuthFeatureConfig> = (config, dependencies) =>
  config.server.forwardAuth === undefined
    ? undefined
    : createForwardAuthFeature(config.server.forwardAuth, config.routes, dependencies);

/** The forward-auth feature for one loaded configuration. */
export function createForwardAuthFeature(
  settings: CompiledForwardAuth,
  routes: readonly CompiledRoute[],
  dependencies: FeatureDependencies,
): GatewayFeature {
  const { clock, controls } = dependencies;
  const endpoint = settings.path;
  const routeTable = createRouteTable(routes);
  const maxAgeSeconds = Math.floor(settings.maxAgeMs / 1000);
  // Header names per route, worked out once per configuration (as the forwarder does for proxy routes).
  const claimNames = new Map<CompiledRoute, [claim: string, header: string][]>();
  for (const route of routes) {
    claimNames.set(
      route,
      route.forwardClaims.flatMap((claim) => {
        const header = claimHeaderName(claim);
        return header === undefined ? [] : [[claim, header] as [string, string]];
      }),
    );
  }

  async function answer(req: IncomingMessage, res: ServerResponse, context: FeatureContext): Promise<void> {
    const ownTarget = req.url ?? endpoint;
    const read = originalRequest(req.headers, endpoint, req.method ?? "GET", ownTarget);
    const original = typeof read === "string" ? undefined : read;
    // The shape of the proxy's gateway.request line (route-pipeline.ts), so one query reads both.
    const event: AuditEvent = {
      event: "gateway.request",
      request_id: context.requestId,
      decision: "deny",
      reason: "",
      client_ip: context.clientIp,
      method: original?.method ?? req.method ?? "",
      host: original?.host,
      path: original?.target ?? ownTarget,
      forward_auth: true,
    };
    let presentedToken: string | undefined;
    try {
      if (read === "missing") {
        throw new TollgateError(
          "TG_BAD_REQUEST",
          `a forward-auth request must name the original request: X-Original-URI (nginx), X-Forwarded-Uri (Traefik, Caddy), X-Original-URL (ingress-nginx) or a path below ${endpoint} (Envoy)`,
        );
      }
      if (original === undefined) {
        throw new TollgateError(
          "TG_BAD_REQUEST",
          "the forward-auth request names its original request more than one way (X-Original-URL, X-Original-URI, X-Forwarded-Uri, a path below the endpoint) or its method twice (X-Original-Method and X-Forwarded-Method); the ingress must set one and remove what the client sent",
        );
      }
      const target = normalizeRequestPath(original.target);
      if (target === undefined) throw new TollgateError("TG_PATH_INVALID", "path rejected by normalisation");
      const route = routeTable.match(original.host, target.path);
      if (route === undefined) throw new TollgateError("TG_ROUTE_NOT_FOUND", `no route for ${target.path}`);
      event.route = route.name;
      if (route.methods !== undefined && !route.methods.has(original.method)) {
        throw new TollgateError("TG_METHOD_NOT_ALLOWED", `method ${original.method} not allowed`, {
          headers: { allow: [...route.methods].join(", ") },
        });
      }
      const { verified, credential } = await admitCaller(
        req,
        route,
        event,
        controls,
        context.verifier,
        context.clientIp,
      );
      presentedToken = credential.token;

      const headers: Record<string, string | number> = {
        "x-request-id": context.requestId,
        "content-length": 0,
      };
      const pairs = claimHeaders(claimNames.get(route) ?? [], verified.claims);
      for (let i = 0; i < pairs.length; i += 2) headers[pairs[i]!] = pairs[i + 1]!;
      const seconds = cacheSeconds(route, maxAgeSeconds, verified.expiresAtMs - clock());
      // X-Accel-Expires first: nginx's cache reads it before Cache-Control, and it is the only validity nginx
      // takes from a `private` answer (the example configuration ignores Cache-Control for that reason).
      headers["x-accel-expires"] = seconds;
      headers["cache-control"] = seconds > 0 ? `private, max-age=${seconds}` : "no-store";
      res.writeHead(200, headers);
      res.end();
      event.status = 200;
    } catch (error) {
      auditFailure(event, error, answeredFor(error, context.requestId));
      // The server answers with the catalogue's status, body, WWW-Authenticate and `no-store`.
      throw error;
    } finally {
      event.duration_ms = clock() - context.startedMs;
      // A subrequest refused before its token was read may still carry one, in either header.
      context.auditLog.emit(event, presentedToken ?? extractToken(req.headers, true)?.token);
    }
  }

  return {
    name: "forward-auth",
    claimsRequest(req) {
      const url = req.url ?? "";
      if (!url.startsWith(endpoint)) return false;
      const next = url.charCodeAt(endpoint.length);
      // Exactly the path, with a query, or below it (Envoy): never a longer name such as /_tollgate/authx.
      return Number.isNaN(next) || next === 0x3f || next === 0x2f;
    },
    handleRequest: answer,
  };
}

/**
 * How long the ingress may reuse an allowed answer: at most `max_age` and never past the token's expiry;
 * 0 for a route with a rate limit or single use, whose every request must reach tollgate to be counted.
 */
function cacheSeconds(route: CompiledRoute, maxAgeSeconds: number, remainingMs: number): number {
  if (route.rateLimit !== undefined || route.singleUse !== undefined) return 0;
  return Math.max(0, Math.min(maxAgeSeconds, Math.floor(remainingMs / 1000)));
}
