import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { AuditEvent, AuditLog } from "../audit/types.js";
import type { CompiledConfig } from "../config/types.js";
import { TollgateError } from "../errors/index.js";
import type { Clock } from "../lib/clock.js";
import { admitBody } from "../lib/expect-continue.js";
import type { AbuseControls } from "../limits/index.js";
import type { TokenVerifier } from "../oidc/types.js";
import { admitCaller } from "../pipeline/admit-caller.js";
import { extractToken } from "../pipeline/extract-token.js";
import { auditFailure } from "../pipeline/outcome.js";
import { sendError } from "../pipeline/send-error.js";
import {
  type ForwardContext,
  normalizeRequestPath,
  type RouteTable,
  type UpstreamForwarder,
  upstreamPathFor,
} from "../proxy/index.js";
import type { ProxyRoute } from "../proxy/types.js";

/** What the route pipeline is built from, once per gateway. */
export interface RoutePipelineOptions {
  readonly auditLog: AuditLog;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly forwarder: UpstreamForwarder;
  /** `X-Forwarded-Proto` for upstreams: what the client spoke to tollgate. */
  readonly proto: "http" | "https";
  /**
   * What carries an admitted request upstream. Default: the forwarder proxies it. The WebSocket upgrade
   * pipeline is this same pipeline with its own carrier, so both admit requests alike.
   */
  readonly carrier?: RouteCarrier;
}

/** The last step of the route pipeline: what happens to a request once it is admitted. */
export interface RouteCarrier {
  /**
   * Refuses a request this carrier does not take on this route, before any token work (after the route
   * and method checks): returns the error to answer, or `undefined` to go on.
   */
  refuse?(req: IncomingMessage, route: ProxyRoute): TollgateError | undefined;
  /**
   * Carries the admitted request to the route's upstream and answers the client; resolves with what the
   * audit line records of it (`event` is the line so far: identity, policy, route). Rejects (with nothing
   * sent to the client) when the upstream could not be reached; the pipeline answers and audits that as
   * any failure.
   */
  carry(
    req: IncomingMessage,
    res: ServerResponse,
    route: ProxyRoute,
    context: ForwardContext,
    event: AuditEvent,
  ): Promise<CarriedRequest>;
}

/** What the audit line records of a carried request: the status the client got, and the bytes each way. */
export interface CarriedRequest {
  readonly status: number;
  readonly bytesIn?: number;
  readonly bytesOut?: number;
}

/** The configuration a request is served under (swapped as one object by a reload). */
export interface RouteState {
  readonly config: CompiledConfig;
  readonly verifier: TokenVerifier;
  readonly routeTable: RouteTable;
  readonly controls: AbuseControls;
}

/**
 * The reverse proxy's five steps for one request no feature claimed: what is asked (path normalised,
 * route, method; a `client_ip` rate limit) → who asks (`authenticate`, behind the failed-authentication
 * throttle; a claim-keyed rate limit) → may they (the route's policies, memoised per caller; then
 * single use) → forward → one audit event, for success and failure alike. Every failure is a `TollgateError` answered
 * by `sendError`. The gateway calls the function this returns for every such request.
 *
 * @example
 * const serveRoute = createRoutePipeline({ auditLog, logger, clock, forwarder, proto: "http" });
 * await serveRoute(req, res, active, requestId, clock(), clientIp, draining);
 */
export function createRoutePipeline(options: RoutePipelineOptions) {
  const { auditLog, logger, clock, forwarder, proto } = options;
  const carrier = options.carrier ?? proxyCarrier(forwarder);
  return async function serveRoute(
    req: IncomingMessage,
    res: ServerResponse,
    state: RouteState,
    requestId: string,
    started: number,
    clientIp: string,
    draining: boolean,
  ): Promise<void> {
    const { config, verifier, routeTable, controls } = state;
    const rawUrl = req.url ?? "/";
    // Every field the pipeline may fill is declared here, in the order the audit line lists them: the
    // object is allocated once at its final size and keeps one shape, instead of growing (and being
    // copied) field by field. The audit log leaves the undefined ones out of the line.
    const event: AuditEvent = {
      event: "gateway.request",
      request_id: requestId,
      decision: "deny",
      reason: "",
      client_ip: clientIp,
      method: req.method ?? "",
      host: req.headers.host,
      // Whole: the audit log cuts long values itself, after it has redacted the token from them.
      path: rawUrl,
      route: undefined,
      token_sha256: undefined,
      token_cached: undefined,
      identity: undefined,
      policy: undefined,
      conditions: undefined,
      limit: undefined,
      upstream: undefined,
      connector_pool: undefined,
      status: undefined,
      bytes_in: undefined,
      bytes_out: undefined,
      detail: undefined,
      duration_ms: undefined,
    };

    // The token this request presented, if any: a secret for its audit line in every form.
    let presentedToken: string | undefined;
    try {
      if (draining) throw new TollgateError("TG_SHUTTING_DOWN", "gateway is draining");
      const target = normalizeRequestPath(rawUrl);
      if (target === undefined) throw new TollgateError("TG_PATH_INVALID", "path rejected by normalisation");
      const route = routeTable.match(req.headers.host, target.path);
      if (route === undefined) throw new TollgateError("TG_ROUTE_NOT_FOUND", `no route for ${target.path}`);
      event.route = route.name;
      // Nothing to forward to: only the forward-auth endpoint decides on such a route (docs/ingress.md).
      if (route.mode === "forward_auth") {
        throw new TollgateError("TG_ROUTE_NOT_FOUND", `route ${route.name} is mode: forward_auth`);
      }
      if (route.methods !== undefined && !route.methods.has(req.method ?? "")) {
        throw new TollgateError("TG_METHOD_NOT_ALLOWED", `method ${req.method} not allowed`, {
          headers: { allow: [...route.methods].join(", ") },
        });
      }
      const refusal = carrier.refuse?.(req, route);
      if (refusal !== undefined) throw refusal;

      const { verified, credential } = await admitCaller(req, route, event, controls, verifier, clientIp);
      presentedToken = credential.token;
      event.upstream = route.upstream.origin;
      if (route.via !== undefined) event.connector_pool = route.via;
      const carried = await carrier.carry(
        req,
        res,
        route,
        {
          path: upstreamPathFor(route, target.path),
          search: target.search,
          requestId,
          clientIp,
          proto,
          claims: verified.claims,
          consumedHeaders: consumedHeaders(credential.header),
          // A plain member, not a conditional spread: spreading builds the object at run time, per request.
          trustedForwardedFor: config.server.trustProxy
            ? firstHeader(req.headers["x-forwarded-for"])
            : undefined,
        },
        event,
      );
      event.status = carried.status;
      event.bytes_in = carried.bytesIn;
      event.bytes_out = carried.bytesOut;
    } catch (error) {
      const response = sendError(res, error, requestId);
      auditFailure(event, error, response);
      if (!(error instanceof TollgateError))
        logger.error({ err: error, request_id: requestId }, "unexpected error in request pipeline");
    } finally {
      event.duration_ms = clock() - started;
      // A request refused before its token was read (no route) may still carry one, in either header.
      auditLog.emit(event, presentedToken ?? extractToken(req.headers, true)?.token);
    }
  };
}

/**
 * The reverse proxy's carrier: the forwarder streams the request and its answer. Not `async`: the
 * forwarder's own promise is handed back, so a proxied request costs no extra promise for this step.
 */
function proxyCarrier(forwarder: UpstreamForwarder): RouteCarrier {
  return {
    carry(req, res, route, context) {
      admitBody(res);
      return forwarder.forward(req, res, route, context);
    },
  };
}

const consumedGateway = ["gateway-authorization"] as const;
const consumedBoth = ["gateway-authorization", "authorization"] as const;

/** Credential headers tollgate consumed and must never forward. */
function consumedHeaders(header: "gateway-authorization" | "authorization"): readonly string[] {
  return header === "authorization" ? consumedBoth : consumedGateway;
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}
