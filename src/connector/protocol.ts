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
export { callerHeader } from "../pipeline/connectors.js";
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
