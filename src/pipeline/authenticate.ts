import { identityFromClaims } from "../audit/index.js";
import type { AuditEvent } from "../audit/types.js";
import { isTollgateError } from "../errors/index.js";
import { sha256Hex } from "../lib/sha256.js";
import type { AuthFailureThrottle } from "../limits/types.js";
import type { TokenVerifier, VerifiedToken } from "../oidc/types.js";

/**
 * The outcome of checking a presented token: the verified token and the caller's audit identity, or the
 * error and the hash of the token that failed (which still correlates a caller's attempts). Never the
 * token itself.
 */
export type Authentication =
  | {
      readonly ok: true;
      readonly verified: VerifiedToken;
      /** The audit identity; the same object for every request with the same verified claims. */
      readonly identity: AuditEvent["identity"];
    }
  | {
      readonly ok: false;
      readonly error: unknown;
      /** Absent when the failed-authentication throttle refused before the token was looked at. */
      readonly tokenSha256: string | undefined;
      /** `listen.auth_failures` when the throttle refused. */
      readonly limit?: string;
    };

/**
 * Failures that count against `listen.auth_failures`: a token was presented and did not verify. Not a
 * missing token (clients such as git ask without one first), nor the issuer's keys being unavailable
 * (not the caller's doing).
 */
const countedFailures = new Set([
  "TG_TOKEN_MALFORMED",
  "TG_TOKEN_TOO_LARGE",
  "TG_TOKEN_INVALID",
  "TG_TOKEN_EXPIRED",
  "TG_TOKEN_NOT_YET_VALID",
  "TG_TOKEN_TOO_OLD",
  "TG_TOKEN_ISSUER_UNKNOWN",
  "TG_TOKEN_AUDIENCE_MISMATCH",
  "TG_TOKEN_ALGORITHM_FORBIDDEN",
  "TG_TOKEN_SIGNATURE_INVALID",
  "TG_TOKEN_KEY_UNKNOWN",
]);

/**
 * Step 2 of every path (route, tunnel, broker): verifies a token the request presented. Does not throw;
 * the caller decides what a failure answers (401, or 407 on the proxy port) and records the outcome with
 * {@link auditAuthentication}.
 *
 * With `listen.auth_failures` (`throttle`), an address over its failures is refused (429) before the
 * token is even hashed, and every counted failure is reported to the throttle.
 *
 * @example
 * const authentication = await authenticate(verifier, token, req.socket, throttle, clientIp);
 * auditAuthentication(event, authentication);
 * if (!authentication.ok) throw authentication.error;
 */
export async function authenticate(
  verifier: TokenVerifier,
  token: string,
  connection?: object,
  throttle?: AuthFailureThrottle,
  clientIp?: string,
): Promise<Authentication> {
  if (throttle !== undefined && clientIp !== undefined) {
    const refusal = throttle.refusal(clientIp);
    if (refusal !== undefined) {
      return { ok: false, error: refusal, tokenSha256: undefined, limit: "listen.auth_failures" };
    }
  }
  try {
    const verified = await verifier.verify(token, connection);
    return { ok: true, verified, identity: identityOf(verified.claims) };
  } catch (error) {
    if (throttle !== undefined && clientIp !== undefined && isTollgateError(error)) {
      if (countedFailures.has(error.code)) throttle.failed(clientIp);
    }
    return { ok: false, error, tokenSha256: sha256Hex(token) };
  }
}

/**
 * Writes what the audit line says of a token check: the token's hash either way; for a failure the event
 * becomes `auth.denied`; for a success, whether the verified-token cache answered and the identity.
 */
export function auditAuthentication(event: AuditEvent, authentication: Authentication): void {
  if (!authentication.ok) {
    event.event = "auth.denied";
    event.token_sha256 = authentication.tokenSha256;
    if (authentication.limit !== undefined) event.limit = authentication.limit;
    return;
  }
  event.token_sha256 = authentication.verified.tokenSha256;
  event.token_cached = authentication.verified.cached;
  event.identity = authentication.identity;
}

// Keyed by the verified token's frozen claims object, which the verified-token cache hands out again on
// every hit: a repeated token costs no identity extraction, and the audit encoder serialises the same
// identity object once. Entries go with the claims when the cache drops them.
const identities = new WeakMap<object, AuditEvent["identity"]>();

function identityOf(claims: Readonly<Record<string, unknown>>): AuditEvent["identity"] {
  let identity = identities.get(claims);
  if (identity === undefined) {
    identity = identityFromClaims(claims);
    identities.set(claims, identity);
  }
  return identity;
}
