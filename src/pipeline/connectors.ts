import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from "node:http2";

/**
 * The contract between the connector feature (which accepts connectors and registers them), the features
 * that send traffic through them (tunnels with `via`) and the server (which creates the one registry).
 * The implementation is `connector/connector-pools.ts`.
 */

/** One connector connected to this edge: its HTTP/2 session (the edge is the client) and what it carries. */
export interface ConnectorSession {
  readonly pool: string;
  /** Which of the pool's keys it proved (`keyId` of it), for logs and audit lines. */
  readonly keyId: string;
  /**
   * The full public key as configured, to close the session when a reload removes the key. For a
   * connector admitted by an OIDC token, the session key it signed the challenge with (its own, made
   * when it started), which ties the token to this one connector while the session lasts.
   */
  readonly publicKey: string;
  readonly session: ClientHttp2Session;
  /** Streams open now: new streams go to the session with the fewest. */
  active: number;
  /**
   * Set for a connector admitted by an OIDC token instead of a configured key: who the token says it is,
   * and the token's hash and expiry (renewed when the connector presents its next token on the link).
   */
  token?: ConnectorTokenIdentity;
}

/** What a connector's verified OIDC token said (never the token itself). */
export interface ConnectorTokenIdentity {
  /** The configured issuer's name, and the verified claims, as policies read them. */
  readonly issuer: string;
  readonly claims: Readonly<Record<string, unknown>>;
  /** Hex SHA-256 of the token. */
  readonly tokenSha256: string;
  /** `exp` in milliseconds: the session ends then unless a newer token is presented. */
  readonly expiresAtMs: number;
  /**
   * Tokens this session presented before the current one and that have not expired yet: rotated out by
   * the platform, still valid, and so still this session's alone.
   */
  readonly earlier?: readonly { readonly tokenSha256: string; readonly expiresAtMs: number }[];
}

/**
 * The connectors connected to this edge, by pool. Lives as long as the gateway (connections outlive a
 * reload); a reload tells it which keys each pool still accepts, and sessions of removed keys or pools
 * are closed.
 */
export interface ConnectorPools {
  add(connector: ConnectorSession): void;
  remove(connector: ConnectorSession): void;
  /** Connected connectors per configured pool (0 for a pool with none), for `/readyz` and metrics. */
  counts(): Record<string, number>;
  /**
   * Opens a stream on the pool's least busy connector. Throws `TG_CONNECTOR_UNAVAILABLE` when the pool
   * has no connector. The stream's close releases its slot.
   */
  open(
    pool: string,
    headers: OutgoingHttpHeaders,
  ): { stream: ClientHttp2Stream; connector: ConnectorSession };
  /**
   * After a reload: the pools and keys allowed now; every other session is closed. A session admitted
   * by a token is kept only when `keepToken` says its pool still admits that token (without it, closed).
   */
  retain(
    allowed: ReadonlyMap<string, ReadonlySet<string>>,
    keepToken?: (connector: ConnectorSession) => boolean,
  ): void;
  /** Every connected session, of every pool (to find the sessions a token already admitted). */
  members(): ConnectorSession[];
  /** Closes every session (graceful stop). */
  close(): void;
}

/**
 * On each stream the edge opens through a connector: who asked (the caller's audit identity, JSON), so the
 * connector's audit line names the workflow behind the traffic it carries.
 */
export const callerHeader = "tollgate-caller";

/** Diagnostics channel of the connector registry: `{pool, connected}` whenever a pool's count changes. */
export const connectorCountChannel = "tollgate:connectors:count";

/** A pool's number of connected connectors, as published on {@link connectorCountChannel}. */
export interface ConnectorCount {
  readonly pool: string;
  readonly connected: number;
}
