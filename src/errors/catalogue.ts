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

  // Single-use tokens (`single_use: true` on a route or broker grant).
  TG_TOKEN_REPLAYED: {
    status: 401,
    publicMessage: "This token has already been used; request a new one.",
    exposeDetail: false,
  },
  TG_TOKEN_JTI_MISSING: {
    status: 401,
    publicMessage: "This resource accepts only single-use tokens, which carry a jti claim.",
    exposeDetail: false,
  },

  // Abuse controls: rate limits, failed-authentication throttling, and the shared store they count in.
  TG_RATE_LIMITED: {
    status: 429,
    publicMessage: "Too many requests; retry after the time in Retry-After.",
    exposeDetail: false,
  },
  TG_STORE_UNAVAILABLE: {
    status: 503,
    publicMessage: "The gateway's shared state is unavailable; try again later.",
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

  // Workflow client (`tollgate token | proxy | forward`): answered by the local proxy, printed by the CLI.
  // The detail is shown: the caller is the workflow itself, and the messages never carry a token.
  TG_CLIENT_TOKEN_UNAVAILABLE: {
    status: 502,
    publicMessage: "The workflow's OIDC token could not be obtained.",
    exposeDetail: true,
  },
  TG_CLIENT_GATEWAY_UNAVAILABLE: {
    status: 502,
    publicMessage: "The gateway could not be reached.",
    exposeDetail: true,
  },

  // Tunnels and forward proxying (CONNECT, absolute-form http:// requests).
  TG_PROXY_AUTH_REQUIRED: {
    status: 407,
    publicMessage: "Proxy authentication with an OIDC token is required.",
    exposeDetail: false,
  },
  TG_PROXY_AUTH_INVALID: {
    status: 407,
    publicMessage: "The proxy credential is not valid.",
    exposeDetail: false,
  },
  TG_TUNNEL_TARGET_INVALID: {
    status: 400,
    publicMessage: "The requested destination is not a valid host:port.",
    // Thrown messages are fixed texts (never the caller's input), written to say what to send instead.
    exposeDetail: true,
  },
  TG_TUNNEL_DESTINATION_FORBIDDEN: {
    status: 403,
    publicMessage: "This destination is not allowed.",
    exposeDetail: false,
  },
  TG_TUNNEL_DESTINATION_UNREACHABLE: {
    status: 502,
    publicMessage: "The destination could not be reached.",
    exposeDetail: false,
  },
  TG_TUNNEL_CONNECT_TIMEOUT: {
    status: 504,
    publicMessage: "The destination did not accept the connection in time.",
    exposeDetail: false,
  },

  // Connectors (outbound-only links from private networks; `via` on a tunnel or route).
  TG_CONNECTOR_UNAVAILABLE: {
    status: 502,
    publicMessage: "No connector into the destination's network is connected.",
    exposeDetail: false,
  },

  // Runner token broker: the request and its scope.
  TG_BODY_TOO_LARGE: { status: 413, publicMessage: "The request body is too large.", exposeDetail: false },
  TG_REQUEST_TIMEOUT: {
    status: 408,
    publicMessage: "The request body did not arrive in time.",
    exposeDetail: false,
  },
  TG_SCOPE_INVALID: { status: 400, publicMessage: "The scope is not valid.", exposeDetail: true },
  TG_SCOPE_DENIED: { status: 403, publicMessage: "This scope is not allowed.", exposeDetail: false },

  // Runner token broker: GitHub's answer, mapped and never echoed.
  TG_GITHUB_NOT_FOUND: {
    status: 404,
    publicMessage: "The scope does not exist, or the broker's credential has no access to it.",
    exposeDetail: false,
  },
  TG_GITHUB_CREDENTIAL_REJECTED: {
    status: 502,
    publicMessage: "GitHub rejected the broker's credential.",
    exposeDetail: false,
  },
  TG_GITHUB_RATE_LIMITED: {
    status: 503,
    publicMessage: "GitHub's rate limit is exhausted; retry after the time in Retry-After.",
    exposeDetail: false,
  },
  TG_GITHUB_TIMEOUT: { status: 504, publicMessage: "GitHub did not answer in time.", exposeDetail: false },
  TG_GITHUB_UNAVAILABLE: {
    status: 502,
    publicMessage: "GitHub is unavailable or answered unexpectedly.",
    exposeDetail: false,
  },
  TG_GITHUB_CONFLICT: {
    status: 409,
    publicMessage: "A runner with this name already exists in this scope.",
    exposeDetail: false,
  },
  TG_GITHUB_REJECTED: {
    status: 422,
    publicMessage: "GitHub refused the runner settings.",
    exposeDetail: false,
  },

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
