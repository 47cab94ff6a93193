/**
 * The one catalogue of tollgate error codes. Every error a caller or operator can see has a code here,
 * an HTTP status, and a message that is safe to show to the caller. `docs/errors.md` lists the same codes;
 * a test fails when the two disagree.
 *
 * `exposeDetail: false` means the detailed message of a thrown error (which may name a key id, a claim,
 * an upstream address) is kept for the audit log and the caller only ever sees `publicMessage`.
 */
export const errorCatalogue = {
  // Authentication: 401 with WWW-Authenticate. Callers never learn *why* a token failed.
  TG_TOKEN_MISSING: { status: 401, publicMessage: "A bearer token is required.", exposeDetail: false },
  TG_TOKEN_MALFORMED: { status: 401, publicMessage: "The token is not valid.", exposeDetail: false },
  TG_TOKEN_TOO_LARGE: { status: 401, publicMessage: "The token is not valid.", exposeDetail: false },
  TG_TOKEN_INVALID: { status: 401, publicMessage: "The token is not valid.", exposeDetail: false },
  TG_TOKEN_EXPIRED: { status: 401, publicMessage: "The token is not valid.", exposeDetail: false },
  TG_TOKEN_NOT_YET_VALID: { status: 401, publicMessage: "The token is not valid.", exposeDetail: false },
  TG_TOKEN_TOO_OLD: { status: 401, publicMessage: "The token is not valid.", exposeDetail: false },
  TG_TOKEN_ISSUER_UNKNOWN: { status: 401, publicMessage: "The token is not valid.", exposeDetail: false },
  TG_TOKEN_AUDIENCE_MISMATCH: { status: 401, publicMessage: "The token is not valid.", exposeDetail: false },
  TG_TOKEN_ALGORITHM_FORBIDDEN: {
    status: 401,
    publicMessage: "The token is not valid.",
    exposeDetail: false,
  },
  TG_TOKEN_SIGNATURE_INVALID: { status: 401, publicMessage: "The token is not valid.", exposeDetail: false },
  TG_TOKEN_KEY_UNKNOWN: { status: 401, publicMessage: "The token is not valid.", exposeDetail: false },
  // The issuer's keys could not be loaded: we cannot verify, so we fail closed, but it is not the caller's fault.
  TG_ISSUER_UNAVAILABLE: {
    status: 503,
    publicMessage: "The token issuer's keys are unavailable; try again later.",
    exposeDetail: false,
  },

  // Authorization.
  TG_POLICY_DENIED: {
    status: 403,
    publicMessage: "The token's identity is not allowed to use this resource.",
    exposeDetail: false,
  },
  TG_METHOD_NOT_ALLOWED: {
    status: 405,
    publicMessage: "This method is not allowed on this route.",
    exposeDetail: false,
  },

  // Routing and requests.
  TG_ROUTE_NOT_FOUND: { status: 404, publicMessage: "No route matches this request.", exposeDetail: false },
  TG_BAD_REQUEST: { status: 400, publicMessage: "The request is malformed.", exposeDetail: true },
  TG_PATH_INVALID: { status: 400, publicMessage: "The request path is not acceptable.", exposeDetail: false },
  TG_REQUEST_HEADERS_TOO_LARGE: {
    status: 431,
    publicMessage: "The request headers are too large.",
    exposeDetail: false,
  },

  // Upstream.
  TG_UPSTREAM_UNAVAILABLE: {
    status: 502,
    publicMessage: "The upstream service is unavailable.",
    exposeDetail: false,
  },
  TG_UPSTREAM_TIMEOUT: { status: 504, publicMessage: "The upstream service timed out.", exposeDetail: false },

  // Server lifecycle.
  TG_SHUTTING_DOWN: { status: 503, publicMessage: "The gateway is shutting down.", exposeDetail: false },
  TG_INTERNAL: { status: 500, publicMessage: "Internal error.", exposeDetail: false },

  // Configuration (never sent over HTTP; used by check/serve/explain and their exit codes).
  TG_CONFIG_INVALID: { status: 500, publicMessage: "The configuration is invalid.", exposeDetail: true },
} as const satisfies Record<string, ErrorCatalogueEntry>;

export interface ErrorCatalogueEntry {
  /** HTTP status this error maps to. */
  readonly status: number;
  /** What the caller is told. Never contains request- or secret-derived data. */
  readonly publicMessage: string;
  /** Whether the thrown error's own message may be shown instead of `publicMessage`. */
  readonly exposeDetail: boolean;
}

/** Every stable error code. Callers switch on this union. */
export type ErrorCode = keyof typeof errorCatalogue;
