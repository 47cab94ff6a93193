import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { auditChannels } from "../audit/diagnostics.js";
import type { AuditEvent } from "../audit/types.js";
import { type LimitDecision, limitChannels } from "../limits/index.js";
import { type KeySetLoadEvent, oidcChannels } from "../oidc/index.js";
import { type ConnectorCount, connectorCountChannel } from "../pipeline/connectors.js";
import { AccumulatedCounter, AccumulatedHistogram, type HistogramSeries } from "./accumulators.js";

/**
 * Every metric tollgate exports, declared in this one file. Metrics are fed from diagnostics channels
 * (audit events, key loads), so request code never imports prom-client, and a metric counts exactly
 * what the audit log records. Labels are bounded: event names, decisions, reason codes and configured
 * route names — never a path, a claim value or anything a caller chooses.
 */
export interface Metrics {
  /** Prometheus text exposition. */
  render(): Promise<string>;
  readonly contentType: string;
  /** Unsubscribes from the channels (a reloaded gateway keeps one Metrics for its life). */
  close(): void;
}

/** The series one audit label set feeds, found once per distinct label set. */
interface EventSeries {
  readonly decision: { value: number };
  readonly duration: HistogramSeries;
  readonly bytesIn: { value: number };
  readonly bytesOut: { value: number };
}

/**
 * Creates a registry with tollgate's metrics and the process defaults, subscribed to the channels.
 *
 * The per-event metrics (decisions, durations, bytes, token checks) are {@link AccumulatedCounter} and
 * {@link AccumulatedHistogram}: bumped in place per audit event, read by prom-client at scrape time.
 *
 * @example
 * const metrics = createMetrics();
 * res.end(await metrics.render());
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tollgate_" });

  const decisions = new AccumulatedCounter({
    name: "tollgate_decisions_total",
    help: "Decisions, one per audit event, by event, decision (allow, deny, error) and reason code.",
    labelNames: ["event", "decision", "reason", "route"] as const,
    registry,
  });
  const duration = new AccumulatedHistogram<"event">({
    name: "tollgate_request_duration_seconds",
    help: "Time from request arrival to the end of the answer (or tunnel), by audit event.",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registry,
  });
  const tokenChecks = new AccumulatedCounter({
    name: "tollgate_token_checks_total",
    help: "Accepted tokens, by whether the signature was verified or the verified-token cache answered.",
    labelNames: ["result"] as const,
    registry,
  });
  const bytes = new AccumulatedCounter({
    name: "tollgate_bytes_total",
    help: "Body bytes relayed, by audit event and direction (in: from the caller, out: to the caller).",
    labelNames: ["event", "direction"] as const,
    registry,
  });
  const keyLoads = new Counter({
    name: "tollgate_issuer_key_loads_total",
    help: "Discovery and JWKS loads, by configured issuer, reason and outcome.",
    labelNames: ["issuer", "reason", "outcome"] as const,
    registers: [registry],
  });
  const keyCount = new Gauge({
    name: "tollgate_issuer_keys",
    help: "Signing keys in the last good key set, by configured issuer.",
    labelNames: ["issuer"] as const,
    registers: [registry],
  });

  // Label sets are bounded (event names, decisions, reason codes, configured route names), so their
  // series are kept here for the life of the process. One map level per label, not a joined key: the
  // label values are the same string objects event after event, their hashes already computed, whereas
  // a key built per event is a new string to allocate and hash every time.
  const seriesTree = new Map<string, Map<string, Map<string, Map<string, EventSeries>>>>();
  const seriesFor = (event: AuditEvent): EventSeries => {
    const route = event.route ?? "";
    const byRoute = childMap(childMap(childMap(seriesTree, event.event), event.decision), event.reason);
    let found = byRoute.get(route);
    if (found === undefined) {
      const name = event.event;
      found = {
        decision: decisions.seriesFor(`${name}\u0000${event.decision}\u0000${event.reason}\u0000${route}`, {
          event: name,
          decision: event.decision,
          reason: event.reason,
          route,
        }),
        duration: duration.seriesFor(name, { event: name }),
        bytesIn: bytes.seriesFor(`${name}\u0000in`, { event: name, direction: "in" }),
        bytesOut: bytes.seriesFor(`${name}\u0000out`, { event: name, direction: "out" }),
      };
      byRoute.set(route, found);
    }
    return found;
  };
  const limitDecisions = new AccumulatedCounter({
    name: "tollgate_limit_decisions_total",
    help: "Decisions of the abuse controls, by control (rate_limit, concurrency, single_use, auth_failures), limit (route:NAME, tunnel:NAME, tunnel:NAME:concurrency, grant:N, listen.auth_failures, single_use) and outcome (allowed, limited, first_use, replayed, jti_missing, counted, limit_reached, store_error_allowed, store_error_denied).",
    labelNames: ["control", "limit", "outcome"] as const,
    registry,
  });
  const cachedCheck = tokenChecks.seriesFor("cached", { result: "cached" });
  const verifiedCheck = tokenChecks.seriesFor("verified", { result: "verified" });

  const onAuditEvent = (message: unknown) => {
    const event = message as AuditEvent;
    const series = seriesFor(event);
    series.decision.value += 1;
    if (event.duration_ms !== undefined) duration.record(series.duration, event.duration_ms / 1000);
    if (event.token_cached !== undefined) (event.token_cached ? cachedCheck : verifiedCheck).value += 1;
    if (event.bytes_in) series.bytesIn.value += event.bytes_in;
    if (event.bytes_out) series.bytesOut.value += event.bytes_out;
  };
  const onKeyLoad = (message: unknown) => {
    const event = message as KeySetLoadEvent;
    keyLoads.inc({ issuer: event.issuer, reason: event.reason, outcome: event.ok ? "ok" : "failed" });
    if (event.ok && event.keyCount !== undefined) keyCount.set({ issuer: event.issuer }, event.keyCount);
  };
  const connectors = new Gauge({
    name: "tollgate_connectors",
    help: "Connectors connected to this edge, by configured pool.",
    labelNames: ["pool"] as const,
    registers: [registry],
  });
  const onConnectorCount = (message: unknown) => {
    const { pool, connected } = message as ConnectorCount;
    connectors.set({ pool }, connected);
  };
  const onLimitDecision = (message: unknown) => {
    const { control, limit, outcome } = message as LimitDecision;
    // Labels are bounded: controls and outcomes are fixed sets, limits are named by the configuration.
    limitDecisions.seriesFor(`${control}\u0000${limit}\u0000${outcome}`, {
      control,
      limit,
      outcome,
    }).value += 1;
  };
  subscribe(auditChannels.event, onAuditEvent);
  subscribe(oidcChannels.keys, onKeyLoad);
  subscribe(limitChannels.decision, onLimitDecision);
  subscribe(connectorCountChannel, onConnectorCount);

  return {
    render: () => registry.metrics(),
    contentType: registry.contentType,
    close() {
      unsubscribe(auditChannels.event, onAuditEvent);
      unsubscribe(oidcChannels.keys, onKeyLoad);
      unsubscribe(limitChannels.decision, onLimitDecision);
      unsubscribe(connectorCountChannel, onConnectorCount);
    },
  };
}

/** The map under `key`, created empty on first use. */
function childMap<V>(parent: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let child = parent.get(key);
  if (child === undefined) {
    child = new Map();
    parent.set(key, child);
  }
  return child;
}
