import { channel } from "node:diagnostics_channel";
import type { AuditEvent } from "./types.js";

/**
 * Every audit event is also published on a diagnostics channel, so that metrics count exactly the
 * decisions the audit log records, without request code importing a metrics library.
 */
export const auditChannels = Object.freeze({
  /** One message per audit event: the {@link AuditEvent} itself (read-only for subscribers). */
  event: "tollgate:audit:event",
});

const eventChannel = channel(auditChannels.event);

/** Publishes an audit event when anyone listens (free otherwise). */
export function publishAuditEvent(event: AuditEvent): void {
  if (eventChannel.hasSubscribers) eventChannel.publish(event);
}
