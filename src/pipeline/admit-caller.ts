import type { IncomingMessage } from "node:http";
import { deciderConditions } from "../audit/index.js";
import type { AuditEvent } from "../audit/types.js";
import { TollgateError } from "../errors/index.js";
import type { AbuseControls } from "../limits/index.js";
import type { RateLimitSpec, SingleUseSpec } from "../limits/types.js";
import type { TokenVerifier, VerifiedToken } from "../oidc/types.js";
import { decide, evaluateAccess } from "../policy/index.js";
import type { AccessRule, DecisionSummary } from "../policy/types.js";
import { auditAuthentication, authenticate } from "./authenticate.js";
import { type ExtractedToken, extractToken } from "./extract-token.js";

/** What a route asks of its callers (a compiled route has all of it, whatever its mode). */
export interface CallerRule {
  readonly access: AccessRule;
  /** Where the token is read from: `Gateway-Authorization` only, or also `Authorization`. */
  readonly authHeader: "gateway-authorization" | "authorization";
  readonly rateLimit?: RateLimitSpec;
  readonly singleUse?: SingleUseSpec;
}

/** A caller the route's rules admit. */
export interface AdmittedCaller {
  readonly verified: VerifiedToken;
  readonly decision: DecisionSummary;
  /** The token and the header it came in (a secret for the audit line; stripped before forwarding). */
  readonly credential: ExtractedToken;
}

/**
 * Steps 2 and 3 of a route, shared by the reverse proxy (server/route-pipeline.ts) and the forward-auth
 * endpoint (forward-auth/), so that an ingress asking about a request and tollgate proxying it decide
 * alike: a `client_ip` rate limit (before any token work, so a flood without identity costs no
 * verification) → the token (`authenticate()`, behind the failed-authentication throttle) → a claim-keyed
 * rate limit → the route's `deny` then `allow` policies (memoised per caller) → single use (after the
 * policies: a request they refuse does not use the token up).
 *
 * Fills `event` as it goes (identity, token hash, policy, the limit that refused, the conditions of a
 * denial) and, when the caller is admitted, sets its decision and reason. Throws the `TollgateError` to
 * answer otherwise; the caller answers it with `sendError` and audits it with `auditFailure`.
 *
 * @example
 * const { verified, credential } = await admitCaller(req, route, event, controls, verifier, clientIp);
 */
export async function admitCaller(
  req: IncomingMessage,
  rule: CallerRule,
  event: AuditEvent,
  controls: AbuseControls,
  verifier: TokenVerifier,
  clientIp: string,
): Promise<AdmittedCaller> {
  const rateLimit = rule.rateLimit;
  if (rateLimit !== undefined && rateLimit.key.kind === "client_ip") {
    const refusal = await controls.rateLimit(rateLimit, undefined, clientIp);
    if (refusal !== undefined) {
      event.limit = rateLimit.id;
      throw refusal;
    }
  }

  const credential = extractToken(req.headers, rule.authHeader === "authorization");
  if (credential === undefined) throw new TollgateError("TG_TOKEN_MISSING", "no bearer token presented");
  const authentication = await authenticate(
    verifier,
    credential.token,
    req.socket,
    controls.authFailures,
    clientIp,
  );
  auditAuthentication(event, authentication);
  if (!authentication.ok) throw authentication.error;
  const { verified } = authentication;
  if (rateLimit !== undefined && rateLimit.key.kind === "claim") {
    const refusal = await controls.rateLimit(rateLimit, verified.claims, clientIp);
    if (refusal !== undefined) {
      event.limit = rateLimit.id;
      throw refusal;
    }
  }

  // The trace-free evaluation runs once per caller and rule; the traced one only to explain a denial.
  const decisions = decisionsFor(verified.claims);
  let decision = decisions.get(rule.access);
  if (decision === undefined) {
    decision = decide(rule.access, { issuer: verified.issuer, claims: verified.claims });
    decisions.set(rule.access, decision);
  }
  event.policy = decision.policy;
  if (!decision.allow) {
    const identity = { issuer: verified.issuer, claims: verified.claims };
    event.conditions = deciderConditions(evaluateAccess(rule.access, identity));
    throw new TollgateError("TG_POLICY_DENIED", decision.reason);
  }
  if (rule.singleUse !== undefined) {
    const refusal = await controls.useOnce(rule.singleUse, verified);
    if (refusal !== undefined) {
      event.limit = "single_use";
      throw refusal;
    }
  }

  event.decision = "allow";
  event.reason = decision.reason;
  return { verified, decision, credential };
}

// Policy evaluation is pure: the same claims against the same compiled rule always decide alike. Keyed by
// the verified token's frozen claims object, which the verified-token cache hands out again on every hit:
// a repeated token costs no policy evaluation. Entries go with the claims when the cache drops them; a
// reload brings new rule objects, so old decisions are never reused.
const decisionMemos = new WeakMap<object, Map<AccessRule, DecisionSummary>>();

function decisionsFor(claims: Readonly<Record<string, unknown>>): Map<AccessRule, DecisionSummary> {
  let decisions = decisionMemos.get(claims);
  if (decisions === undefined) {
    decisions = new Map();
    decisionMemos.set(claims, decisions);
  }
  return decisions;
}
