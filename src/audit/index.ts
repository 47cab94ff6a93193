export { type AuditLogOptions, createAuditLog } from "./audit-log.js";
export { auditChannels, publishAuditEvent } from "./diagnostics.js";
export { deciderConditions, identityFromClaims } from "./events.js";
export { createLogger, type LoggerOptions } from "./logger.js";
export { createRedactor, redactedMarker } from "./redactor.js";
export {
  type AuditEvent,
  type AuditEventName,
  type AuditLog,
  auditEventNames,
  identityClaimNames,
  type Redactor,
} from "./types.js";
