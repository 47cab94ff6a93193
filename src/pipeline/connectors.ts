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
  /** The full public key as configured, to close the session when a reload removes the key. */
  readonly publicKey: string;
  readonly session: ClientHttp2Session;
  /** Streams open now: new streams go to the session with the fewest. */
  active: number;
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
  /** After a reload: the pools and keys allowed now; every other session is closed. */
  retain(allowed: ReadonlyMap<string, ReadonlySet<string>>): void;
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
