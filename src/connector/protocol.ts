/**
 * The names both ends of the connector link agree on. The link is HTTP: a CONNECT to a reserved
 * authority on the edge's usual port, then HTTP/2 with the edge as the client; these are its paths and
 * header names.
 */

/** What the connector CONNECTs to on the edge: `.invalid` is reserved (RFC 6761), so never a destination. */
export const connectorAuthority = "connector.tollgate.invalid:443";
/** Request header of that CONNECT: the pool the connector joins. */
export const connectorPoolHeader = "tollgate-connector-pool";
/** The edge's first stream: the challenge the connector must sign. */
export const helloPath = "/_tollgate/hello";
export const challengeHeader = "tollgate-challenge";
/** The edge's second stream, once it verified the answer and took the connector into its pool. */
export const welcomePath = "/_tollgate/welcome";
export const signatureHeader = "tollgate-signature";
export { callerHeader, carriedOnHeader, connectionTicketHeader } from "../pipeline/connectors.js";

/**
 * What a connector CONNECTs to for a tunnel's connection of its own (see {@link connectionTicketHeader}),
 * on the same port as its link.
 */
export const connectionAuthority = "connection.connector.tollgate.invalid:443";

/**
 * Header of the challenge: `tls-exporter` when the edge terminates TLS itself and so can check a
 * signature bound to the TLS session; `none` behind a TLS-terminating load balancer.
 */
export const bindingHeader = "tollgate-binding";
/**
 * Headers of the answer of a connector that authenticates by an OIDC token instead of a configured key:
 * the token, and the session key the signature was made with (`ed25519:…`, its own, made at start).
 */
export const tokenHeader = "tollgate-token";
export const sessionKeyHeader = "tollgate-session-key";

/**
 * HTTP/2 flow control on the link, set alike by both ends (a window is what the *other* end may send before
 * this one acknowledges). With Node's defaults, 64 KiB per stream and per connection, a bulk tunnel stops
 * every 64 KiB until the far process is scheduled and sends WINDOW_UPDATE; on the shared bench machine
 * that cost the connector about twice the CPU per GiB (bench/connector.mjs, bench/README.md). Across a
 * real network a stream also moves at most one window per round trip: 1 MiB allows ≈ 50 MiB/s per tunnel
 * at 20 ms, 256 KiB only ≈ 12. A stream's window also bounds what one tunnel buffers in this process
 * towards a reader that stopped reading, as a socket's buffers do for a direct tunnel: 1 MiB. The
 * connection's window is shared by all streams; Node acknowledges it as data arrives, even for a paused
 * stream, so a stalled tunnel does not hold it.
 */
export const linkStreamWindowBytes = 1024 * 1024;
export const linkConnectionWindowBytes = 16 * 1024 * 1024;
