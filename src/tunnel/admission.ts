import type { IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import { deciderConditions } from "../audit/index.js";
import type { AuditEvent } from "../audit/types.js";
import { isTollgateError, TollgateError } from "../errors/index.js";
import type { TokenVerifier } from "../oidc/types.js";
import { auditAuthentication, authenticate } from "../pipeline/authenticate.js";
import { decide, evaluateAccess } from "../policy/index.js";
import { addressRefusal, candidateTunnels, checkAddresses } from "./destination-check.js";
import { type DialAddress, type DialOptions, dialChecked, resolveTarget } from "./dial.js";
import { formatHostPort } from "./ip-address.js";
import { proxyAuthenticateValue, proxyCredential } from "./proxy-credential.js";
import type { CompiledTunnel, LookupAll, TunnelTarget } from "./types.js";

/** A connection the gateway decided to allow: the socket to the checked address and its tunnel. */
export interface Admission {
  readonly upstream: Socket;
  readonly tunnel: CompiledTunnel;
}

/** What {@link admit} needs besides the request. */
export interface AdmissionParts {
  readonly tunnels: readonly CompiledTunnel[];
  readonly verifier: TokenVerifier;
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
 * 5. a connection to exactly the checked addresses (502 refused, 504 past `connect_timeout`).
 *
 * Fills `event` as it goes (identity, token hash, tunnel, policy, dialled address), so whoever catches
 * the thrown `TollgateError` emits one complete audit event.
 */
export async function admit(
  parts: AdmissionParts,
  headers: IncomingHttpHeaders,
  target: TunnelTarget,
  event: AuditEvent,
  signal: AbortSignal,
  use: DialOptions["use"],
): Promise<Admission> {
  const credential = proxyCredential(headers);
  if (credential === undefined) {
    throw new TollgateError("TG_PROXY_AUTH_REQUIRED", "no proxy credential presented", {
      headers: proxyAuthHeaders,
    });
  }
  const authentication = await authenticate(parts.verifier, credential.token);
  auditAuthentication(event, authentication);
  if (!authentication.ok) {
    const { error } = authentication;
    // On the proxy port a bad token is 407 with Proxy-Authenticate; the audit keeps the token's own code.
    if (isTollgateError(error) && error.status === 401) {
      event.reason = error.code;
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
    event.tunnel = tunnel.name;
    if (decision.policy !== undefined) event.policy = decision.policy;
    event.conditions = deciderConditions(decision);
    throw new TollgateError("TG_POLICY_DENIED", `tunnel "${tunnel.name}": ${decision.reason}`);
  }
  event.tunnel = first.name;
  const firstPolicy = policyOf.get(first);
  if (firstPolicy !== undefined) event.policy = firstPolicy;

  const deadline = parts.clock() + first.connectTimeoutMs;
  const addresses = await resolveTarget(target, parts.lookup, deadline, parts.clock, signal);
  const checked = checkAddresses(allowed, target, addresses);
  if ("refusal" in checked) throw new TollgateError("TG_TUNNEL_DESTINATION_FORBIDDEN", checked.refusal);

  const { socket, via } = await dialChecked(
    checked.checked,
    target.port,
    deadline,
    parts.clock,
    signal,
    parts.dial,
    use,
  );
  event.tunnel = via.tunnel.name;
  const viaPolicy = policyOf.get(via.tunnel);
  if (viaPolicy !== undefined) event.policy = viaPolicy;
  event.upstream = formatHostPort(via.address, target.port);
  return { upstream: socket, tunnel: via.tunnel };
}
