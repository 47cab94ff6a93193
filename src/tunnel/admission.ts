import type { ClientHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { deciderConditions, identityFromClaims } from "../audit/index.js";
import type { AuditEvent } from "../audit/types.js";
import { isTollgateError, TollgateError } from "../errors/index.js";
import type { AbuseControls, HeldSlot } from "../limits/index.js";
import type { TokenVerifier } from "../oidc/types.js";
import { type Authentication, auditAuthentication, authenticate } from "../pipeline/authenticate.js";
import type { ConnectorPools } from "../pipeline/connectors.js";
import { callerHeader, carriedOnHeader } from "../pipeline/connectors.js";
import { decide, evaluateAccess } from "../policy/index.js";
import { addressRefusal, candidateTunnels, checkAddresses } from "./destination-check.js";
import { type DialAddress, type DialOptions, dialChecked, resolveTarget } from "./dial.js";
import { formatHostPort } from "./ip-address.js";
import { type ProxyCredential, proxyAuthenticateValue } from "./proxy-credential.js";
import type { CompiledTunnel, LookupAll, TunnelTarget } from "./types.js";

/**
 * What admission found out about the caller and the destination, whatever the outcome: what the caller
 * writes into its audit line with {@link auditAdmission}. Admission itself never touches an audit event.
 */
export interface AdmissionFindings {
  /** The token check, once the credential was read. */
  authentication?: Authentication;
  /** A denial's own reason where the answer's code is less precise (a bad token answered 407). */
  reason?: string;
  /** The tunnel that decided: the one that refused the caller, or the one that carried the connection. */
  tunnel?: string;
  policy?: string;
  conditions?: AuditEvent["conditions"];
  /** The address dialled, `host:port`. */
  upstream?: string;
  /**
   * The limit that refused the tunnel (`tunnel:NAME`, `tunnel:NAME:concurrency`, or
   * `listen.auth_failures`).
   */
  limit?: string;
  /** A `via` tunnel: the pool and the key id of the connector that carried it. */
  connectorPool?: string;
  connectorKey?: string;
}

/**
 * The outcome of {@link admit}: a connection the gateway decided to allow (the socket to the checked
 * address and its tunnel), or the error to answer with; both with the findings for the audit line.
 */
export type Admission =
  | {
      readonly admitted: true;
      /** A socket to the checked address, or, for a `via` tunnel, the connector's stream. */
      readonly upstream: Socket | Duplex;
      readonly tunnel: CompiledTunnel;
      readonly findings: AdmissionFindings;
      /** The tunnel's `concurrency` slot, when it has one: release it when the tunnel closes. */
      readonly slot: HeldSlot | undefined;
    }
  | { readonly admitted: false; readonly error: unknown; readonly findings: AdmissionFindings };

/** What {@link admit} needs besides the request. */
export interface AdmissionParts {
  readonly tunnels: readonly CompiledTunnel[];
  readonly verifier: TokenVerifier;
  readonly controls: AbuseControls;
  readonly connectorPools: ConnectorPools;
  /** The caller's address (rate limits keyed by `client_ip`, the failed-authentication throttle). */
  readonly clientIp: string;
  readonly lookup: LookupAll;
  readonly dial: DialAddress;
  readonly clock: () => number;
}

const proxyAuthHeaders = Object.freeze({ "proxy-authenticate": proxyAuthenticateValue });

/**
 * The one decision path of CONNECT and forward proxying, in the order that leaks least:
 *
 * 1. the credential (407 without a valid one, before anything about destinations is revealed);
 * 2. the tunnels whose destinations can match the target (403 when none);
 * 3. their `deny`/`allow` policies (403 when none admits the caller);
 * 4. the host name resolved once, every address checked against the allowed tunnels and the
 *    always-denied ranges (403 when any address fails);
 * 5. the `rate_limit` of the tunnel that admits the first address (429 past it): it counts opens;
 *    then its `concurrency` (429 when the caller's key has `max` tunnels open): a slot, given back by
 *    the caller when the tunnel closes, or here when the connection fails;
 * 6. a connection to exactly the checked addresses (502 refused, 504 past `connect_timeout`).
 *
 * Never throws: returns the admission or the error to answer with, and in both cases what it found
 * (identity, tunnel, policy, conditions, dialled address) for the caller to audit.
 */
export async function admit(
  parts: AdmissionParts,
  credential: ProxyCredential | undefined,
  target: TunnelTarget,
  signal: AbortSignal,
  use: DialOptions["use"],
): Promise<Admission> {
  const findings: AdmissionFindings = {};
  const held: { slot?: HeldSlot } = {};
  try {
    const { upstream, tunnel } = await decideAndDial(parts, credential, target, signal, use, findings, held);
    return { admitted: true, upstream, tunnel, findings, slot: held.slot };
  } catch (error) {
    held.slot?.release();
    return { admitted: false, error, findings };
  }
}

/** Writes what admission found into the audit event of the request it admitted or refused. */
export function auditAdmission(event: AuditEvent, findings: AdmissionFindings): void {
  if (findings.authentication !== undefined) auditAuthentication(event, findings.authentication);
  if (findings.reason !== undefined) event.reason = findings.reason;
  if (findings.tunnel !== undefined) event.tunnel = findings.tunnel;
  if (findings.policy !== undefined) event.policy = findings.policy;
  if (findings.conditions !== undefined) event.conditions = findings.conditions;
  if (findings.upstream !== undefined) event.upstream = findings.upstream;
  if (findings.limit !== undefined) event.limit = findings.limit;
  if (findings.connectorPool !== undefined) event.connector_pool = findings.connectorPool;
  if (findings.connectorKey !== undefined) event.connector_key = findings.connectorKey;
}

/** The checks of {@link admit}, recording into `findings` as they learn; throws the refusal. */
async function decideAndDial(
  parts: AdmissionParts,
  credential: ProxyCredential | undefined,
  target: TunnelTarget,
  signal: AbortSignal,
  use: DialOptions["use"],
  findings: AdmissionFindings,
  held: { slot?: HeldSlot },
): Promise<{ upstream: Socket | Duplex; tunnel: CompiledTunnel }> {
  if (credential === undefined) {
    throw new TollgateError("TG_PROXY_AUTH_REQUIRED", "no proxy credential presented", {
      headers: proxyAuthHeaders,
    });
  }
  const authentication = await authenticate(
    parts.verifier,
    credential.token,
    undefined,
    parts.controls.authFailures,
    parts.clientIp,
  );
  findings.authentication = authentication;
  if (!authentication.ok) {
    const { error } = authentication;
    // On the proxy port a bad token is 407 with Proxy-Authenticate; the audit keeps the token's own code.
    if (authentication.limit !== undefined) findings.limit = authentication.limit;
    if (isTollgateError(error) && error.status === 401) {
      findings.reason = error.code;
      throw new TollgateError("TG_PROXY_AUTH_INVALID", `${error.code}: ${error.message}`, {
        cause: error,
        headers: proxyAuthHeaders,
      });
    }
    throw error;
  }
  const { verified } = authentication;

  const candidates = candidateTunnels(parts.tunnels, target);
  if (candidates.length === 0) {
    const detail =
      target.host.kind === "name"
        ? `${target.text} matches no tunnel's destinations`
        : addressRefusal(parts.tunnels, target, target.host);
    throw new TollgateError("TG_TUNNEL_DESTINATION_FORBIDDEN", detail);
  }

  const identity = { issuer: verified.issuer, claims: verified.claims };
  const allowed: CompiledTunnel[] = [];
  const policyOf = new Map<CompiledTunnel, string | undefined>();
  for (const tunnel of candidates) {
    const decision = decide(tunnel.access, identity);
    if (!decision.allow) continue;
    allowed.push(tunnel);
    policyOf.set(tunnel, decision.policy);
  }
  const first = allowed[0];
  if (first === undefined) {
    const tunnel = candidates[0]!;
    const decision = evaluateAccess(tunnel.access, identity);
    findings.tunnel = tunnel.name;
    if (decision.policy !== undefined) findings.policy = decision.policy;
    findings.conditions = deciderConditions(decision);
    throw new TollgateError("TG_POLICY_DENIED", `tunnel "${tunnel.name}": ${decision.reason}`);
  }
  findings.tunnel = first.name;
  const firstPolicy = policyOf.get(first);
  if (firstPolicy !== undefined) findings.policy = firstPolicy;
  if (first.via !== undefined) {
    return {
      upstream: await openViaConnector(parts, first, target, signal, verified.claims, findings, held),
      tunnel: first,
    };
  }
  // Tunnels carried by a connector never dial from here, whatever else matched.
  const direct = allowed.filter((tunnel) => tunnel.via === undefined);

  const deadline = parts.clock() + first.connectTimeoutMs;
  const addresses = await resolveTarget(target, parts.lookup, deadline, parts.clock, signal);
  const checked = checkAddresses(direct, target, addresses);
  if ("refusal" in checked) throw new TollgateError("TG_TUNNEL_DESTINATION_FORBIDDEN", checked.refusal);
  await applyLimits(parts, checked.checked[0]!.tunnel, verified.claims, findings, held);

  const { socket, via } = await dialChecked(
    checked.checked,
    target.port,
    deadline,
    parts.clock,
    signal,
    parts.dial,
    use,
  );
  findings.tunnel = via.tunnel.name;
  const viaPolicy = policyOf.get(via.tunnel);
  if (viaPolicy !== undefined) findings.policy = viaPolicy;
  findings.upstream = formatHostPort(via.address, target.port);
  return { upstream: socket, tunnel: via.tunnel };
}

/**
 * Step 5 for the tunnel that admits the connection: its `rate_limit` counts the open, then its
 * `concurrency` takes a slot (into `held`). Throws the 429 with the limit named in `findings`.
 */
async function applyLimits(
  parts: AdmissionParts,
  tunnel: CompiledTunnel,
  claims: Readonly<Record<string, unknown>>,
  findings: AdmissionFindings,
  held: { slot?: HeldSlot },
): Promise<void> {
  if (tunnel.rateLimit !== undefined) {
    const refusal = await parts.controls.rateLimit(tunnel.rateLimit, claims, parts.clientIp);
    if (refusal !== undefined) {
      findings.tunnel = tunnel.name;
      findings.limit = tunnel.rateLimit.id;
      throw refusal;
    }
  }
  if (tunnel.concurrency !== undefined) {
    const taken = await parts.controls.holdSlot(tunnel.concurrency, claims, parts.clientIp);
    if (taken instanceof TollgateError) {
      findings.tunnel = tunnel.name;
      findings.limit = tunnel.concurrency.id;
      throw taken;
    }
    held.slot = taken;
  }
}

/**
 * A `via` tunnel: the connector of its pool with the fewest streams opens the connection from inside the
 * private network (asked on an HTTP/2 CONNECT stream), after checking the destination against its own
 * allow-list; this edge resolves and dials nothing. The tunnel's bytes come on the connection the connector
 * opens to this edge with the stream's ticket, or on the stream itself when it could not open one. An IP-literal target is still checked here first (the
 * always-denied ranges apply at both ends); a name is the connector's to resolve.
 */
async function openViaConnector(
  parts: AdmissionParts,
  tunnel: CompiledTunnel,
  target: TunnelTarget,
  signal: AbortSignal,
  claims: Readonly<Record<string, unknown>>,
  findings: AdmissionFindings,
  held: { slot?: HeldSlot },
): Promise<Duplex> {
  const pool = tunnel.via!;
  if (target.host.kind !== "name") {
    const checked = checkAddresses([tunnel], target, [target.host]);
    if ("refusal" in checked) throw new TollgateError("TG_TUNNEL_DESTINATION_FORBIDDEN", checked.refusal);
  }
  await applyLimits(parts, tunnel, claims, findings, held);
  findings.connectorPool = pool;
  const { stream, connector, connection } = parts.connectorPools.open(
    pool,
    {
      ":method": "CONNECT",
      ":authority": target.text,
      [callerHeader]: JSON.stringify(identityFromClaims(claims) ?? {}),
    },
    { ownConnection: true },
  );
  findings.connectorKey = connector.keyId;
  findings.upstream = `${target.text} via ${pool}`;
  let status: number;
  let carriedOn: unknown;
  try {
    ({ status, carriedOn } = await answerOf(stream, pool, tunnel.connectTimeoutMs, signal));
  } catch (error) {
    connection?.cancel();
    throw error;
  }
  if (status === 200 && carriedOn === "connection") {
    // The connector opened the tunnel's connection of its own before answering (protocol.ts).
    const socket = connection?.take();
    endAnswered(stream);
    if (socket !== undefined) return socket;
    throw new TollgateError(
      "TG_TUNNEL_DESTINATION_UNREACHABLE",
      `the connector of ${pool} answered for a connection this edge does not have`,
    );
  }
  // Carried on the stream itself: a connector that could not open a connection, or predates them.
  connection?.cancel();
  if (status === 200) return stream;
  endAnswered(stream);
  if (status === 403) {
    throw new TollgateError(
      "TG_TUNNEL_DESTINATION_FORBIDDEN",
      `the connector of ${pool} refused ${target.text}`,
    );
  }
  if (status === 504)
    throw new TollgateError("TG_TUNNEL_CONNECT_TIMEOUT", `the connector of ${pool} timed out`);
  throw new TollgateError("TG_TUNNEL_DESTINATION_UNREACHABLE", `the connector of ${pool} answered ${status}`);
}

/**
 * Ends a stream the connector answered and ended: the edge ends its side too, a clean close. Never a
 * reset (`close()`) in the normal course: the connector's HTTP/2 server takes 1,000 stream resets in a
 * burst and 33 a second after that, then closes the whole link (nghttp2's defence against rapid reset),
 * which a busy pool of tunnels would otherwise reach. Resets stay for what is cancelled (a timeout, a
 * client gone).
 */
function endAnswered(stream: ClientHttp2Stream): void {
  stream.resume();
  stream.end();
}

/** The connector's answer to a tunnel stream, within the connect timeout; the signal aborts the wait. */
function answerOf(
  stream: ClientHttp2Stream,
  pool: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<{ status: number; carriedOn: unknown }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.close();
      reject(new TollgateError("TG_TUNNEL_CONNECT_TIMEOUT", `connector of ${pool} did not connect in time`));
    }, timeoutMs);
    const onAbort = () => {
      clearTimeout(timer);
      stream.close();
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    stream.once("response", (headers) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve({ status: Number(headers[":status"]), carriedOn: headers[carriedOnHeader] });
    });
    stream.once("error", (error) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      reject(
        new TollgateError("TG_TUNNEL_DESTINATION_UNREACHABLE", `connector stream failed: ${error.message}`),
      );
    });
    stream.once("close", () => {
      clearTimeout(timer);
      reject(new TollgateError("TG_TUNNEL_DESTINATION_UNREACHABLE", "the connector closed the stream"));
    });
  });
}
