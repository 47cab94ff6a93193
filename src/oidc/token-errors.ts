import { errors as joseErrors } from "jose";
import { type ErrorCode, isTollgateError, TollgateError } from "../errors/index.js";

/** What is known about the token when an error is mapped; only safe-to-log facts, never the token. */
export interface TokenErrorContext {
  readonly issuerName: string;
  readonly alg: string;
  readonly kid: string | undefined;
  readonly audiences: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
}

/**
 * Wraps an error thrown by jose (or by our key resolver) into a `TollgateError` with a `TG_TOKEN_*` code,
 * keeping the original as `cause`. Anything unrecognised fails closed as `TG_TOKEN_INVALID`.
 */
export function toTokenError(error: unknown, context: TokenErrorContext): TollgateError {
  if (isTollgateError(error)) return error;
  const wrap = (code: ErrorCode, message: string) => new TollgateError(code, message, { cause: error });
  const kid = context.kid === undefined ? "(none)" : quote(context.kid);
  if (error instanceof joseErrors.JWTExpired) {
    if (error.claim === "iat") {
      return wrap(
        "TG_TOKEN_TOO_OLD",
        `token issued at ${time(context.claims.iat)} is older than the maximum age`,
      );
    }
    return wrap("TG_TOKEN_EXPIRED", `token expired at ${time(context.claims.exp)}`);
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case "nbf":
        if (error.reason === "check_failed") {
          return wrap("TG_TOKEN_NOT_YET_VALID", `token not valid before ${time(context.claims.nbf)}`);
        }
        break;
      case "iat":
        if (error.reason === "check_failed") {
          return wrap("TG_TOKEN_NOT_YET_VALID", `token issued in the future at ${time(context.claims.iat)}`);
        }
        break;
      case "aud":
        return wrap(
          "TG_TOKEN_AUDIENCE_MISMATCH",
          `token aud ${quote(context.claims.aud)} contains none of ${quote(context.audiences)} of issuer ${context.issuerName}`,
        );
      case "iss":
        return wrap(
          "TG_TOKEN_ISSUER_UNKNOWN",
          `token iss ${quote(context.claims.iss)} is not ${context.issuerName}'s`,
        );
    }
    return wrap("TG_TOKEN_INVALID", `${error.message} (issuer ${context.issuerName})`);
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return wrap(
      "TG_TOKEN_SIGNATURE_INVALID",
      `signature verification failed for kid ${kid} of issuer ${context.issuerName}`,
    );
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey) {
    return wrap(
      "TG_TOKEN_KEY_UNKNOWN",
      `no ${context.alg} key with kid ${kid} in the key set of issuer ${context.issuerName}`,
    );
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed || error instanceof joseErrors.JOSENotSupported) {
    return wrap(
      "TG_TOKEN_ALGORITHM_FORBIDDEN",
      `alg ${quote(context.alg)} is not accepted for issuer ${context.issuerName}`,
    );
  }
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid) {
    return wrap("TG_TOKEN_MALFORMED", `${error.message} (issuer ${context.issuerName})`);
  }
  const detail = error instanceof Error ? error.message : "unknown error";
  return wrap("TG_TOKEN_INVALID", `verification failed for issuer ${context.issuerName}: ${detail}`);
}

/** JSON-quotes an attacker-supplied value for a log message, cut short so it cannot flood the log. */
export function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? "undefined";
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function time(seconds: unknown): string {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return quote(seconds);
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? quote(seconds) : date.toISOString();
}
