import type { AuditEvent } from "./types.js";

/** How repeated denials are folded into one line (`audit.denials` in the configuration). */
export interface DenialAggregation {
  /** Length of one window; 0 writes every denial on its own line. */
  readonly windowMs: number;
  /** Distinct sources (client address, reason, route …) followed in one window; beyond, only counted. */
  readonly maxSources: number;
}

/** What {@link createDenialAggregator} reports back to the audit log. */
export interface DenialAggregator {
  /**
   * Whether `event` is absorbed: counted into the line its source will get at the end of the window,
   * rather than written now. The first denial of each source in a window is never absorbed.
   */
  absorb(event: AuditEvent): boolean;
  /** Writes the lines of the window so far (a graceful stop), and starts a new window. */
  flush(): void;
}

/** One source's denials in the current window, after the first one (which was written whole). */
interface Repeats {
  /** The line written at the end of the window, without `repeated`, `request_id` and `duration_ms`. */
  readonly summary: AuditEvent;
  count: number;
  lastRequestId: string;
}

/**
 * Folds floods of denials into counted lines, so that junk sent at full rate cannot grow the audit log
 * (or fill the disk) at the rate it arrives: about 410 bytes a request before this
 * (test/server/denial-flood.test.ts measures both).
 *
 * A source is one client address denied for one reason on one route (or tunnel), by one event type;
 * for a verified caller (a denial that carries an identity), also one token, so two callers behind one
 * NAT are never folded together. Windows are fixed: in each, a source's first denial is written whole,
 * as always, and the rest are counted; when the window ends, each source that was denied again gets one
 * line: the first line's event, reason, address, route and identity, the last request id, and
 * `repeated: N` (the denials after the first, in the `window_ms` before the line's time).
 *
 * At most `maxSources` sources are followed in a window. Denials from further sources (a flood from
 * many addresses) are counted per event type and reason only, and written as one line each with no
 * address. So under any flood one window writes at most `2 × maxSources` denial lines plus one per event
 * type and reason, which bounds the audit log's bytes per second (docs/configuration.md#audit).
 *
 * Metrics are not affected: every event is published on the diagnostics channel before it gets here.
 *
 * @example
 * const aggregator = createDenialAggregator({ windowMs: 10_000, maxSources: 256 }, (event) => encode(event));
 * if (!aggregator.absorb(event)) encode(event);
 */
export function createDenialAggregator(
  options: DenialAggregation,
  write: (event: AuditEvent) => void,
): DenialAggregator {
  const { windowMs, maxSources } = options;
  const sources = new Map<string, Repeats>();
  const overflow = new Map<string, Repeats>();
  let timer: NodeJS.Timeout | undefined;

  const endWindow = (): void => {
    // An idle gateway keeps no timer: the next denial starts a new one.
    if (sources.size === 0 && overflow.size === 0) {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      return;
    }
    for (const repeats of [...sources.values(), ...overflow.values()]) {
      if (repeats.count === 0) continue;
      write({
        ...repeats.summary,
        request_id: repeats.lastRequestId,
        repeated: repeats.count,
        window_ms: windowMs,
      });
    }
    sources.clear();
    overflow.clear();
  };

  return {
    absorb(event) {
      if (windowMs === 0 || event.decision !== "deny") return false;
      const key = sourceKey(event);
      const repeats = sources.get(key);
      if (repeats !== undefined) {
        repeats.count += 1;
        repeats.lastRequestId = event.request_id;
        return true;
      }
      timer ??= setInterval(endWindow, windowMs).unref();
      if (sources.size < maxSources) {
        sources.set(key, { summary: summaryOf(event), count: 0, lastRequestId: event.request_id });
        return false;
      }
      const overflowKey = `${event.event}\u0000${event.reason}`;
      const counted = overflow.get(overflowKey);
      if (counted !== undefined) {
        counted.count += 1;
        counted.lastRequestId = event.request_id;
      } else {
        overflow.set(overflowKey, {
          summary: {
            event: event.event,
            request_id: "",
            decision: "deny",
            reason: event.reason,
            detail: `denials from more than ${maxSources} sources in this window, counted without their addresses`,
          },
          count: 1,
          lastRequestId: event.request_id,
        });
      }
      return true;
    },
    flush: endWindow,
  };
}

/** Event type, client address, reason, route or tunnel, and the verified token when there is one. */
function sourceKey(event: AuditEvent): string {
  const verified = event.identity === undefined ? "" : (event.token_sha256 ?? "");
  return `${event.event}\u0000${event.client_ip ?? ""}\u0000${event.reason}\u0000${event.route ?? ""}\u0000${event.tunnel ?? ""}\u0000${verified}`;
}

/** What a source's counted line repeats of its first denial: what the source is, not one request. */
function summaryOf(event: AuditEvent): AuditEvent {
  const summary: AuditEvent = {
    event: event.event,
    request_id: "",
    decision: "deny",
    reason: event.reason,
  };
  if (event.client_ip !== undefined) summary.client_ip = event.client_ip;
  if (event.route !== undefined) summary.route = event.route;
  if (event.tunnel !== undefined) summary.tunnel = event.tunnel;
  if (event.policy !== undefined) summary.policy = event.policy;
  if (event.identity !== undefined) {
    summary.identity = event.identity;
    if (event.token_sha256 !== undefined) summary.token_sha256 = event.token_sha256;
  }
  return summary;
}
