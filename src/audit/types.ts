/** Every audit event type tollgate emits, declared in one place. */
export const auditEventNames = [
  "gateway.request",
  "tunnel.open",
  "tunnel.close",
  "websocket.close",
  "runner.registration_token",
  "runner.remove_token",
  "runner.jitconfig",
  "auth.denied",
  "auth.whoami",
  "connector.connect",
  "connector.disconnect",
  "connection.refused",
] as const;

export type AuditEventName = (typeof auditEventNames)[number];

/** The caller's identity claims copied into audit events (never the token itself). */
export const identityClaimNames = [
  "iss",
  "sub",
  "repository",
  "repository_id",
  "repository_owner",
  "repository_owner_id",
  "run_id",
  "run_attempt",
  "workflow_ref",
  "job_workflow_ref",
  "actor",
  "event_name",
  "ref",
  "jti",
] as const;

/** One audit event: one JSON line per decision. Field names are snake_case, as in DESIGN.md. */
export interface AuditEvent {
  event: AuditEventName;
  request_id: string;
  decision: "allow" | "deny" | "error";
  /** Machine reason: a decision reason (`allowed-by-policy`) or an error code (`TG_TOKEN_EXPIRED`). */
  reason: string;
  /** Operator detail (why a signature failed, which upstream refused); never shown to the caller. */
  detail?: string;
  policy?: string;
  route?: string;
  /** Identity claims (see {@link identityClaimNames}) of a verified token. */
  identity?: Partial<Record<(typeof identityClaimNames)[number], string>>;
  /** Hex SHA-256 of the presented token, verified or not. */
  token_sha256?: string;
  /** Whether the verified-token cache answered (no signature check). */
  token_cached?: boolean;
  /** Per-condition reasons of the deciding evaluation, for denials. */
  conditions?: {
    policy: string;
    claim: string;
    expected: string;
    found: string | null;
    ok: boolean;
    reason: "claim-ok" | "claim-missing" | "claim-mismatch" | "claim-not-scalar";
  }[];
  /** Runner token broker: the canonical scope (`octo-org`, `octo-org/app`, `enterprise:slug`). */
  scope?: string;
  /**
   * The abuse control this request met: the rate limit that refused it (`route:NAME`, `tunnel:NAME`,
   * `grant:INDEX`, `listen.auth_failures`), or `single_use` for a replayed token or one without `jti`.
   */
  limit?: string;
  /** Runner token broker: whether the token cache answered (no GitHub call for this request). */
  cache_hit?: boolean;
  /** Runner token broker, `runner.jitconfig`: the name of the runner created. */
  runner_name?: string;
  client_ip?: string;
  method?: string;
  host?: string;
  path?: string;
  upstream?: string;
  /** The tunnel that carried (or refused) a CONNECT or forward-proxied request. */
  tunnel?: string;
  /** The destination the caller asked for, `host:port` as normalised by the tunnel feature. */
  destination?: string;
  /** Connectors: the pool, and the id of the key the connector proved (a hash prefix, never the key). */
  connector_pool?: string;
  connector_key?: string;
  /**
   * On a `gateway.request` line: the decision answered an ingress's forward-auth subrequest (the ingress,
   * not tollgate, carried the request; `method`, `host` and `path` are the original request's).
   */
  forward_auth?: boolean;
  status?: number;
  bytes_in?: number;
  bytes_out?: number;
  duration_ms?: number;
  /**
   * On a line that stands for repeated denials (see denial-aggregator.ts): how many more denials from the
   * same source there were, after the one written whole, in the `window_ms` before the line's time.
   */
  repeated?: number;
  /** With `repeated`: the length of the window it counts. */
  window_ms?: number;
}

/** The forms of a secret for one line only (see `lineSecretOf` in redactor.ts). */
export interface LineSecret {
  /** Every form, longest first. */
  readonly forms: readonly string[];
  /** Length of the shortest form: a shorter text cannot contain any. */
  readonly shortest: number;
}

/** The audit sink. `emit` never throws and never blocks the request on I/O. */
export interface AuditLog {
  /**
   * Writes `event` as one line. `presentedToken` is the token the request presented, verified or not: it
   * is redacted from this line in every form, wherever the request put it (a path, a host), and never
   * written or published.
   */
  emit(event: AuditEvent, presentedToken?: string): void;
  /** Flushes buffered lines (on shutdown). */
  flush(): Promise<void>;
}

/**
 * Removes registered secrets from text before it is written anywhere. Every secret is also matched in
 * its base64, base64url and URL-encoded forms. Every logger (audit and operational) goes through one.
 */
export interface Redactor {
  register(secret: string): void;
  /**
   * `text` without any registered secret, JWT-shaped string or form of `lineSecret` (the token of the
   * request a line describes), also where percent-escapes spell one.
   */
  redact(text: string, lineSecret?: LineSecret): string;
  /**
   * Grows each time a registration changes what `redact` replaces. Text redacted at one generation may be
   * kept and reused while the generation stays the same (the audit log's encoder does).
   */
  readonly generation: number;
}

/**
 * Defaults of the audit log's batching (`AuditLogOptions` in audit-log.ts); the configuration's
 * `audit.flush_interval` defaults to the same. Here, beside the types, so that `config/` can read them
 * without loading the writer.
 */
export const auditDefaults = Object.freeze({
  flushIntervalMs: 20,
  flushBytes: 64 * 1024,
  /** `audit.denials`: repeated denials from one source are folded into one line per window. */
  denialWindowMs: 10_000,
  denialMaxSources: 256,
});
