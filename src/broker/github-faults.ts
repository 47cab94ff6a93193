import { TollgateError } from "../errors/index.js";

/** Response headers as undici and Octokit hand them over. */
export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** Bounds of the `Retry-After` tollgate sends when GitHub limits the rate. */
const retryAfterBounds = { minSeconds: 1, maxSeconds: 3600, defaultSeconds: 60 } as const;

/**
 * Maps a GitHub error status to the broker's error. GitHub's body is never used: it is neither echoed
 * to the caller nor needed by the operator, whose detail (in the audit event) names the status and what
 * it usually means. `what` names the call, e.g. `registration-token for octo-org/app`.
 *
 * - 401 → `TG_GITHUB_CREDENTIAL_REJECTED` (502): the credential itself is bad.
 * - 429 (always a rate limit), and 403 with `x-ratelimit-remaining: 0` or `retry-after` →
 *   `TG_GITHUB_RATE_LIMITED` (503 + Retry-After; 60 s when GitHub sent neither header, the minute its
 *   documentation says to wait then).
 * - any other 403, 404, and a redirect (a renamed repository) → `TG_GITHUB_NOT_FOUND` (404).
 * - 409 → `TG_GITHUB_CONFLICT`, 422 → `TG_GITHUB_REJECTED` (JIT runner settings).
 * - 5xx and anything else → `TG_GITHUB_UNAVAILABLE` (502).
 *
 * @example
 * throw githubFault(403, { "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000060" }, "registration-token for octo-org", now);
 */
export function githubFault(
  status: number,
  headers: ResponseHeaders,
  what: string,
  nowMs: number,
): TollgateError {
  // A 403 is a rate limit only when its headers say so (otherwise the credential lacks the permission);
  // a 429 always is one, with or without them.
  if (status === 429 || (status === 403 && isRateLimited(headers))) {
    const seconds = retryAfterSeconds(headers, nowMs);
    return new TollgateError(
      "TG_GITHUB_RATE_LIMITED",
      `${what}: GitHub answered ${status} (rate limited; retry in ${seconds}s)`,
      {
        headers: { "retry-after": String(seconds) },
      },
    );
  }
  if (status >= 300 && status < 400) {
    // Elsewhere than under a scope (the App's own endpoints), a redirect is simply unexpected.
    if (!/ \/(?:repos|orgs|enterprises)\//.test(what)) {
      return new TollgateError(
        "TG_GITHUB_UNAVAILABLE",
        `${what}: GitHub answered ${status} (a redirect, not followed)`,
      );
    }
    // GitHub redirects requests for a renamed or transferred repository; following the redirect would
    // register runners under a name the scope lists never saw.
    return new TollgateError(
      "TG_GITHUB_NOT_FOUND",
      `${what}: GitHub answered ${status} (the repository was renamed or moved; use its current name)`,
    );
  }
  switch (status) {
    case 401:
      return new TollgateError(
        "TG_GITHUB_CREDENTIAL_REJECTED",
        `${what}: GitHub answered 401 (the credential is invalid, expired or revoked)`,
      );
    case 403:
      return new TollgateError(
        "TG_GITHUB_NOT_FOUND",
        `${what}: GitHub answered 403 (the credential lacks the permission for this scope)`,
      );
    case 404:
      return new TollgateError(
        "TG_GITHUB_NOT_FOUND",
        `${what}: GitHub answered 404 (no such scope, or the credential cannot see it)`,
      );
    case 409:
      return new TollgateError(
        "TG_GITHUB_CONFLICT",
        `${what}: GitHub answered 409 (a runner with this name exists)`,
      );
    case 422:
      return new TollgateError("TG_GITHUB_REJECTED", `${what}: GitHub answered 422 (settings refused)`);
    default:
      return new TollgateError("TG_GITHUB_UNAVAILABLE", `${what}: GitHub answered ${status}`);
  }
}

/** The error for a call that never got an answer: a timeout, or a connection that failed. */
export function transportFault(error: unknown, what: string): TollgateError {
  if (error instanceof TollgateError) return error;
  const name = (error as { name?: unknown } | null)?.name;
  const code = (error as { code?: unknown } | null)?.code;
  if (
    name === "TimeoutError" ||
    code === "UND_ERR_HEADERS_TIMEOUT" ||
    code === "UND_ERR_BODY_TIMEOUT" ||
    code === "UND_ERR_CONNECT_TIMEOUT"
  ) {
    return new TollgateError("TG_GITHUB_TIMEOUT", `${what}: GitHub did not answer in time`, { cause: error });
  }
  const reason = typeof code === "string" ? code : typeof name === "string" ? name : "unknown error";
  return new TollgateError("TG_GITHUB_UNAVAILABLE", `${what}: GitHub could not be reached (${reason})`, {
    cause: error,
  });
}

/** Whether trying again may help: GitHub was unavailable or slow (never for a refusal or a rate limit). */
export function isTransient(error: unknown): boolean {
  return (
    error instanceof TollgateError &&
    (error.code === "TG_GITHUB_UNAVAILABLE" || error.code === "TG_GITHUB_TIMEOUT")
  );
}

/** Whether the request certainly never reached GitHub, so even a non-idempotent call may be repeated. */
export function neverSent(error: unknown): boolean {
  const cause = error instanceof TollgateError ? error.cause : error;
  const code = (cause as { code?: unknown } | null)?.code;
  return (
    code === "ECONNREFUSED" ||
    code === "ENOTFOUND" ||
    code === "EAI_AGAIN" ||
    code === "UND_ERR_CONNECT_TIMEOUT"
  );
}

function header(headers: ResponseHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function isRateLimited(headers: ResponseHeaders): boolean {
  return header(headers, "x-ratelimit-remaining") === "0" || header(headers, "retry-after") !== undefined;
}

/**
 * Seconds to wait: GitHub's `retry-after` (secondary limits), the time until `x-ratelimit-reset` when the
 * primary quota is spent (`x-ratelimit-remaining: 0`), else a minute; bounded so that a broken header
 * cannot tell callers to wait for a day.
 */
function retryAfterSeconds(headers: ResponseHeaders, nowMs: number): number {
  const retryAfter = header(headers, "retry-after");
  let seconds: number | undefined;
  if (retryAfter !== undefined) {
    seconds = /^\d+$/.test(retryAfter.trim())
      ? Number(retryAfter.trim())
      : (Date.parse(retryAfter) - nowMs) / 1000;
  } else if (header(headers, "x-ratelimit-remaining") === "0") {
    // The primary window's reset says when the quota is back only when that quota is what ran out; a
    // secondary limit arrives with quota to spare and a reset up to an hour away.
    const reset = header(headers, "x-ratelimit-reset");
    if (reset !== undefined && /^\d+$/.test(reset.trim())) seconds = Number(reset.trim()) - nowMs / 1000;
  }
  if (seconds === undefined || !Number.isFinite(seconds)) return retryAfterBounds.defaultSeconds;
  return Math.min(retryAfterBounds.maxSeconds, Math.max(retryAfterBounds.minSeconds, Math.ceil(seconds)));
}
