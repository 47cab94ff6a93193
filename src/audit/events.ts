import { type AuditEvent, identityClaimNames } from "./types.js";

/**
 * The identity block of an audit event from verified claims: the claims named in
 * {@link identityClaimNames}, strings as they are and numbers as text. Anything else (objects, arrays,
 * booleans) is left out: the audit log names a caller, it does not copy the token.
 *
 * @example
 * identityFromClaims({ sub: "repo:octo-org/app:ref:refs/heads/main", run_id: 42, aud: "x" });
 * // { sub: "repo:octo-org/app:ref:refs/heads/main", run_id: "42" }
 */
export function identityFromClaims(
  claims: Readonly<Record<string, unknown>>,
): NonNullable<AuditEvent["identity"]> {
  const identity: NonNullable<AuditEvent["identity"]> = {};
  for (const name of identityClaimNames) {
    const value = claims[name];
    if (typeof value === "string") identity[name] = value;
    else if (typeof value === "number" && Number.isFinite(value)) identity[name] = String(value);
  }
  return identity;
}
