import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { auditChannels } from "../audit/diagnostics.js";
import type { AuditEvent } from "../audit/types.js";
import { type KeySetLoadEvent, oidcChannels } from "../oidc/index.js";

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

interface EventChildren {
  readonly decision: Counter.Internal;
  readonly duration: Histogram.Internal<string>;
  readonly bytesIn: Counter.Internal;
  readonly bytesOut: Counter.Internal;
}

/**
 * Creates a registry with tollgate's metrics and the process defaults, subscribed to the channels.
 *
 * @example
 * const metrics = createMetrics();
 * res.end(await metrics.render());
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tollgate_" });

  const decisions = new Counter({
    name: "tollgate_decisions_total",
    help: "Decisions, one per audit event, by event, decision (allow, deny, error) and reason code.",
    labelNames: ["event", "decision", "reason", "route"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "tollgate_request_duration_seconds",
    help: "Time from request arrival to the end of the answer (or tunnel), by audit event.",
    labelNames: ["event"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const tokenChecks = new Counter({
    name: "tollgate_token_checks_total",
    help: "Accepted tokens, by whether the signature was verified or the verified-token cache answered.",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  const bytes = new Counter({
    name: "tollgate_bytes_total",
    help: "Body bytes relayed, by audit event and direction (in: from the caller, out: to the caller).",
    labelNames: ["event", "direction"] as const,
    registers: [registry],
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

  // prom-client hashes a label set on every call; the children of the bounded label sets we see are kept
  // here instead, so counting a request is a map lookup and a few increments.
  const children = new Map<string, EventChildren>();
  const childrenFor = (event: AuditEvent): EventChildren => {
    const route = event.route ?? "";
    const key = `${event.event}\u0000${event.decision}\u0000${event.reason}\u0000${route}`;
    let found = children.get(key);
    if (found === undefined) {
      found = {
        decision: decisions.labels(event.event, event.decision, event.reason, route),
        duration: duration.labels(event.event),
        bytesIn: bytes.labels(event.event, "in"),
        bytesOut: bytes.labels(event.event, "out"),
      };
      children.set(key, found);
    }
    return found;
  };
  const cachedCheck = tokenChecks.labels("cached");
  const verifiedCheck = tokenChecks.labels("verified");

  const onAuditEvent = (message: unknown) => {
    const event = message as AuditEvent;
    const child = childrenFor(event);
    child.decision.inc();
    if (event.duration_ms !== undefined) child.duration.observe(event.duration_ms / 1000);
    if (event.token_cached !== undefined) (event.token_cached ? cachedCheck : verifiedCheck).inc();
    if (event.bytes_in) child.bytesIn.inc(event.bytes_in);
    if (event.bytes_out) child.bytesOut.inc(event.bytes_out);
  };
  const onKeyLoad = (message: unknown) => {
    const event = message as KeySetLoadEvent;
    keyLoads.inc({ issuer: event.issuer, reason: event.reason, outcome: event.ok ? "ok" : "failed" });
    if (event.ok && event.keyCount !== undefined) keyCount.set({ issuer: event.issuer }, event.keyCount);
  };
  subscribe(auditChannels.event, onAuditEvent);
  subscribe(oidcChannels.keys, onKeyLoad);

  return {
    render: () => registry.metrics(),
    contentType: registry.contentType,
    close() {
      unsubscribe(auditChannels.event, onAuditEvent);
      unsubscribe(oidcChannels.keys, onKeyLoad);
    },
  };
}
