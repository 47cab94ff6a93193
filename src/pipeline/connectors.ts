import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from "node:http2";
import type { Socket } from "node:net";

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
   * has no connector. The stream's close releases its slot. With `ownConnection`, the stream also
   * carries a {@link connectionTicketHeader} and `connection` awaits the connection the connector may
   * open with it (which holds a slot of that connector while it is open).
   */
  open(
    pool: string,
    headers: OutgoingHttpHeaders,
    options?: { readonly ownConnection?: boolean },
  ): { stream: ClientHttp2Stream; connector: ConnectorSession; connection?: AwaitedConnection };
  /**
   * The connection a connector opened for a tunnel with the ticket {@link open} gave it, claimed when it
   * arrives: `deliver` hands the socket to the tunnel waiting for it (answer the connector's CONNECT
   * first). `undefined` for a ticket that is unknown, used or expired.
   */
  claimConnection(ticket: string): ((socket: Socket) => void) | undefined;
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
 * A tunnel's connection of its own, awaited from the connector: opened with {@link ConnectorPools.open}'s
 * `ownConnection`. Why: HTTP/2 moves a bulk tunnel's bytes in 16 KiB frames through user space at both
 * ends, about half what one more plain hop carries (bench/README.md, issue 14); so the link only opens a
 * tunnel, and the connector dials the edge again, presenting the ticket, for its bytes.
 */
export interface AwaitedConnection {
  /**
   * The connector's connection, if it arrived. A connector answers its stream only after this edge
   * accepted the connection, so when its answer says it opened one, the connection is here already.
   */
  take(): Socket | undefined;
  /** Forgets the ticket; a connection that arrived and was not taken is destroyed. */
  cancel(): void;
}

/**
 * Request header of a tunnel stream the edge wants carried on a connection of its own: a one-time
 * ticket (32 random bytes, base64url) the connector presents, in the same header, on a CONNECT to
 * `connection.connector.tollgate.invalid:443`. Valid only while the edge waits for that tunnel, once.
 */
export const connectionTicketHeader = "tollgate-connection-ticket";

/**
 * Response header of the connector to a tunnel stream that carried a ticket: `connection` when the
 * tunnel's bytes go on the connection it opened with the ticket, absent when they go on the stream itself
 * (a connector that could not open one, or one that predates separate connections).
 */
export const carriedOnHeader = "tollgate-carried-on";

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
