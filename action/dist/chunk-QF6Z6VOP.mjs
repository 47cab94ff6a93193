// src/client/pipe.ts
import { isIP as isIP2 } from "node:net";

// src/errors/catalogue.ts
var errorCatalogue = {
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
    exposeDetail: false
  },
  TG_TOKEN_SIGNATURE_INVALID: { status: 401, publicMessage: "The token is not valid.", exposeDetail: false },
  TG_TOKEN_KEY_UNKNOWN: { status: 401, publicMessage: "The token is not valid.", exposeDetail: false },
  // The issuer's keys could not be loaded: we cannot verify, so we fail closed, but it is not the caller's fault.
  TG_ISSUER_UNAVAILABLE: {
    status: 503,
    publicMessage: "The token issuer's keys are unavailable; try again later.",
    exposeDetail: false
  },
  // Single-use tokens (`single_use: true` on a route or broker grant).
  TG_TOKEN_REPLAYED: {
    status: 401,
    publicMessage: "This token has already been used; request a new one.",
    exposeDetail: false
  },
  TG_TOKEN_JTI_MISSING: {
    status: 401,
    publicMessage: "This resource accepts only single-use tokens, which carry a jti claim.",
    exposeDetail: false
  },
  // Abuse controls: rate limits, failed-authentication throttling, and the shared store they count in.
  TG_RATE_LIMITED: {
    status: 429,
    publicMessage: "Too many requests; retry after the time in Retry-After.",
    exposeDetail: false
  },
  TG_STORE_UNAVAILABLE: {
    status: 503,
    publicMessage: "The gateway's shared state is unavailable; try again later.",
    exposeDetail: false
  },
  // Authorization.
  TG_POLICY_DENIED: {
    status: 403,
    publicMessage: "The token's identity is not allowed to use this resource.",
    exposeDetail: false
  },
  TG_METHOD_NOT_ALLOWED: {
    status: 405,
    publicMessage: "This method is not allowed on this route.",
    exposeDetail: false
  },
  // Routing and requests.
  TG_ROUTE_NOT_FOUND: { status: 404, publicMessage: "No route matches this request.", exposeDetail: false },
  TG_BAD_REQUEST: { status: 400, publicMessage: "The request is malformed.", exposeDetail: true },
  TG_PATH_INVALID: { status: 400, publicMessage: "The request path is not acceptable.", exposeDetail: false },
  TG_REQUEST_HEADERS_TOO_LARGE: {
    status: 431,
    publicMessage: "The request headers are too large.",
    exposeDetail: false
  },
  // Upstream.
  TG_UPSTREAM_UNAVAILABLE: {
    status: 502,
    publicMessage: "The upstream service is unavailable.",
    exposeDetail: false
  },
  TG_UPSTREAM_TIMEOUT: { status: 504, publicMessage: "The upstream service timed out.", exposeDetail: false },
  // Workflow client (`tollgate token | proxy | forward`): answered by the local proxy, printed by the CLI.
  // The detail is shown: the caller is the workflow itself, and the messages never carry a token.
  TG_CLIENT_TOKEN_UNAVAILABLE: {
    status: 502,
    publicMessage: "The workflow's OIDC token could not be obtained.",
    exposeDetail: true
  },
  TG_CLIENT_GATEWAY_UNAVAILABLE: {
    status: 502,
    publicMessage: "The gateway could not be reached.",
    exposeDetail: true
  },
  // Tunnels and forward proxying (CONNECT, absolute-form http:// requests).
  TG_PROXY_AUTH_REQUIRED: {
    status: 407,
    publicMessage: "Proxy authentication with an OIDC token is required.",
    exposeDetail: false
  },
  TG_PROXY_AUTH_INVALID: {
    status: 407,
    publicMessage: "The proxy credential is not valid.",
    exposeDetail: false
  },
  TG_TUNNEL_TARGET_INVALID: {
    status: 400,
    publicMessage: "The requested destination is not a valid host:port.",
    // Thrown messages are fixed texts (never the caller's input), written to say what to send instead.
    exposeDetail: true
  },
  TG_TUNNEL_DESTINATION_FORBIDDEN: {
    status: 403,
    publicMessage: "This destination is not allowed.",
    exposeDetail: false
  },
  TG_TUNNEL_DESTINATION_UNREACHABLE: {
    status: 502,
    publicMessage: "The destination could not be reached.",
    exposeDetail: false
  },
  TG_TUNNEL_CONNECT_TIMEOUT: {
    status: 504,
    publicMessage: "The destination did not accept the connection in time.",
    exposeDetail: false
  },
  // Connectors (outbound-only links from private networks; `via` on a tunnel or route).
  TG_CONNECTOR_UNAVAILABLE: {
    status: 502,
    publicMessage: "No connector into the destination's network is connected.",
    exposeDetail: false
  },
  // Runner token broker: the request and its scope.
  TG_BODY_TOO_LARGE: { status: 413, publicMessage: "The request body is too large.", exposeDetail: false },
  TG_REQUEST_TIMEOUT: {
    status: 408,
    publicMessage: "The request body did not arrive in time.",
    exposeDetail: false
  },
  TG_SCOPE_INVALID: { status: 400, publicMessage: "The scope is not valid.", exposeDetail: true },
  TG_SCOPE_DENIED: { status: 403, publicMessage: "This scope is not allowed.", exposeDetail: false },
  // Runner token broker: GitHub's answer, mapped and never echoed.
  TG_GITHUB_NOT_FOUND: {
    status: 404,
    publicMessage: "The scope does not exist, or the broker's credential has no access to it.",
    exposeDetail: false
  },
  TG_GITHUB_CREDENTIAL_REJECTED: {
    status: 502,
    publicMessage: "GitHub rejected the broker's credential.",
    exposeDetail: false
  },
  TG_GITHUB_RATE_LIMITED: {
    status: 503,
    publicMessage: "GitHub's rate limit is exhausted; retry after the time in Retry-After.",
    exposeDetail: false
  },
  TG_GITHUB_TIMEOUT: { status: 504, publicMessage: "GitHub did not answer in time.", exposeDetail: false },
  TG_GITHUB_UNAVAILABLE: {
    status: 502,
    publicMessage: "GitHub is unavailable or answered unexpectedly.",
    exposeDetail: false
  },
  TG_GITHUB_CONFLICT: {
    status: 409,
    publicMessage: "A runner with this name already exists in this scope.",
    exposeDetail: false
  },
  TG_GITHUB_REJECTED: {
    status: 422,
    publicMessage: "GitHub refused the runner settings.",
    exposeDetail: false
  },
  // Server lifecycle.
  TG_SHUTTING_DOWN: { status: 503, publicMessage: "The gateway is shutting down.", exposeDetail: false },
  TG_INTERNAL: { status: 500, publicMessage: "Internal error.", exposeDetail: false },
  // Configuration (never sent over HTTP; used by check/serve/explain and their exit codes).
  TG_CONFIG_INVALID: { status: 500, publicMessage: "The configuration is invalid.", exposeDetail: true }
};

// src/errors/tollgate-error.ts
var TollgateError = class extends Error {
  name = "TollgateError";
  code;
  /** Extra response headers (for example `Retry-After`), set by the thrower. */
  headers;
  constructor(code, message, options = {}) {
    super(message, options.cause === void 0 ? void 0 : { cause: options.cause });
    this.code = code;
    this.headers = options.headers ?? {};
  }
  /** HTTP status from the catalogue. */
  get status() {
    return errorCatalogue[this.code].status;
  }
};
function isTollgateError(error) {
  return error instanceof TollgateError;
}

// src/errors/error-response.ts
function toErrorResponse(error, requestId) {
  const code = isTollgateError(error) ? error.code : "TG_INTERNAL";
  const entry = errorCatalogue[code];
  const message = entry.exposeDetail && isTollgateError(error) ? error.message : entry.publicMessage;
  const headers = { ...isTollgateError(error) ? error.headers : {} };
  if (entry.status === 401 && headers["www-authenticate"] === void 0) {
    headers["www-authenticate"] = 'Bearer realm="tollgate"';
  }
  return { status: entry.status, headers, body: { error: { code, message, request_id: requestId } } };
}

// src/client/gateway-tunnel.ts
import {
  request as httpRequest
} from "node:http";
import { request as httpsRequest } from "node:https";
import { rootCertificates } from "node:tls";
var maxRefusalBodyBytes = 16 * 1024;
function gatewayRequestOptions(gateway) {
  return {
    host: gateway.host,
    port: gateway.port,
    ...gateway.tls ? {
      servername: gateway.servername,
      // `ca` replaces the default roots; keep them, a private CA is an addition.
      ...gateway.ca === void 0 ? {} : { ca: [...rootCertificates, gateway.ca] },
      rejectUnauthorized: true
    } : {}
  };
}
function gatewayRequest(gateway, options) {
  return gateway.tls ? httpsRequest(options) : httpRequest(options);
}
function openGatewayTunnel(gateway, authority, token, options = {}) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const request = gatewayRequest(gateway, {
      ...gatewayRequestOptions(gateway),
      method: "CONNECT",
      path: authority,
      agent: false,
      headers: { host: authority, "proxy-authorization": `Bearer ${token}` }
    });
    const fail = (reason, cause) => {
      if (settled) return;
      settled = true;
      request.destroy();
      reject(
        new TollgateError("TG_CLIENT_GATEWAY_UNAVAILABLE", `gateway ${gateway.origin}: ${reason}`, { cause })
      );
    };
    const onAbort = () => fail("the request was cancelled");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    request.setTimeout(options.timeoutMs ?? 6e4, () => fail("no answer in time"));
    request.on("error", (error) => fail(describeConnectionError(error), error));
    request.on("connect", (response, socket, head) => {
      options.signal?.removeEventListener("abort", onAbort);
      if (settled) {
        socket.destroy();
        return;
      }
      settled = true;
      request.setTimeout(0);
      socket.setTimeout(0);
      if (response.statusCode === 200) {
        socket.setNoDelay(true);
        resolve({ ok: true, socket, head });
        return;
      }
      void readRefusal(response, socket, head).then((refusal) => resolve({ ok: false, refusal }));
    });
    request.end();
  });
}
async function readRefusal(response, socket, head) {
  const status = response.statusCode ?? 502;
  const declared = Number(response.headers["content-length"] ?? "0");
  const wanted = Number.isFinite(declared) ? Math.min(Math.max(declared, 0), maxRefusalBodyBytes) : 0;
  const body = await new Promise((resolve) => {
    const chunks = [head];
    let length = head.length;
    const done = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.destroy();
      resolve(Buffer.concat(chunks).subarray(0, wanted));
    };
    const onData = (chunk) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= wanted) done();
    };
    const timer = setTimeout(done, 5e3);
    if (length >= wanted) {
      done();
      return;
    }
    socket.on("data", onData);
    socket.once("end", done);
    socket.once("error", done);
  });
  return { status, ...errorFields(body) };
}
function errorFields(body) {
  const pick = (value) => typeof value === "string" && value.length <= 512 ? value : void 0;
  try {
    const error = JSON.parse(body.toString("utf8")).error ?? {};
    return { code: pick(error.code), message: pick(error.message), requestId: pick(error.request_id) };
  } catch {
    return { code: void 0, message: void 0, requestId: void 0 };
  }
}
function describeConnectionError(error) {
  const code = error.code ?? "";
  if ([
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    "SELF_SIGNED_CERT_IN_CHAIN",
    "DEPTH_ZERO_SELF_SIGNED_CERT",
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    "CERT_UNTRUSTED"
  ].includes(code)) {
    return `its TLS certificate is not trusted (${code}); pass --ca FILE for a private CA`;
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return "its TLS certificate does not name this host";
  if (code === "CERT_HAS_EXPIRED") return "its TLS certificate has expired";
  if (code !== "") return `connection failed (${code})`;
  return "connection failed";
}

// node_modules/jose/dist/webapi/lib/buffer_utils.js
var encoder = new TextEncoder();
var decoder = new TextDecoder();
var strictDecoder = new TextDecoder("utf-8", { fatal: true });
var UINT32_RANGE = 2 ** 32;
function decodeBase64(encoded, url = false) {
  if (Uint8Array.fromBase64)
    return Uint8Array.fromBase64(encoded, { alphabet: url ? "base64url" : "base64" });
  if (url) {
    if (encoded.includes("+") || encoded.includes("/"))
      throw new TypeError("Invalid base64url");
    encoded = encoded.replace(/-/g, "+").replace(/_/g, "/");
  }
  const binary = atob(encoded), bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++)
    bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// node_modules/jose/dist/webapi/util/errors.js
var JOSEError = class extends Error {
  static code = "ERR_JOSE_GENERIC";
  code = "ERR_JOSE_GENERIC";
  constructor(message, options) {
    super(message, options), this.name = this.constructor.name, Error.captureStackTrace?.(this, this.constructor);
  }
};
var JWTInvalid = class extends JOSEError {
  static code = "ERR_JWT_INVALID";
  code = "ERR_JWT_INVALID";
};

// node_modules/jose/dist/webapi/util/base64url.js
var invalid = "The input to be decoded is not correctly encoded.";
function decode(input) {
  try {
    return decodeBase64(typeof input == "string" ? input : decoder.decode(input), true);
  } catch (cause) {
    throw new TypeError(invalid, { cause });
  }
}

// node_modules/jose/dist/webapi/lib/validate.js
function isObject(input) {
  if (typeof input != "object" || input === null || Object.prototype.toString.call(input) !== "[object Object]")
    return false;
  const prototype = Object.getPrototypeOf(input);
  return prototype === null || Object.getPrototypeOf(prototype) === null;
}

// node_modules/jose/dist/webapi/util/decode_jwt.js
function decodeJwt(jwt) {
  if (typeof jwt != "string")
    throw new JWTInvalid("JWTs must use Compact JWS serialization, JWT must be a string");
  const { 1: encodedPayload, length } = jwt.split(".");
  if (length === 5)
    throw new JWTInvalid("Only JWTs using Compact JWS serialization can be decoded");
  if (length !== 3)
    throw new JWTInvalid("Invalid JWT");
  if (!encodedPayload)
    throw new JWTInvalid("JWTs must contain a payload");
  let claimsSetBytes;
  try {
    claimsSetBytes = decode(encodedPayload);
  } catch (cause) {
    throw new JWTInvalid("Failed to base64url decode the payload", { cause });
  }
  let claimsSet;
  try {
    claimsSet = JSON.parse(strictDecoder.decode(claimsSetBytes));
  } catch (cause) {
    throw new JWTInvalid("Failed to parse the decoded payload as JSON", { cause });
  }
  if (!isObject(claimsSet))
    throw new JWTInvalid("Invalid JWT Claims Set");
  return claimsSet;
}

// src/client/gateway-whoami.ts
var whoamiPath = "/_tollgate/whoami";
var maxBodyBytes = 16 * 1024;
async function checkTokenWithGateway(gateway, token, options) {
  const answer = await getWhoami(gateway, token, options.timeoutMs ?? 15e3);
  if (answer.status === 200) {
    const identity = identityOf(answer.body);
    if (identity !== void 0) return { checked: true, identity };
    return { checked: false, reason: `${gateway.origin}${whoamiPath} answered 200 without an identity` };
  }
  const fields = errorFields(answer.body);
  const requestId = fields.requestId === void 0 ? "" : ` (request_id ${fields.requestId})`;
  if ((answer.status === 401 || answer.status === 429 || answer.status === 503) && isKnownCode(fields.code)) {
    throw new TollgateError(
      fields.code,
      `the gateway refused this job's token for audience ${JSON.stringify(options.audience)}${requestId}: ${fixFor(fields.code, options.audience, token)}`
    );
  }
  const said = fields.code === void 0 ? "" : ` ${fields.code}`;
  return {
    checked: false,
    reason: `${gateway.origin}${whoamiPath} answered ${answer.status}${said}${requestId} (a gateway older than this client does not offer it)`
  };
}
function fixFor(code, audience, token) {
  switch (code) {
    case "TG_TOKEN_AUDIENCE_MISMATCH":
      return `${JSON.stringify(audience)} is not an audience the gateway accepts. Set audience to one of the audiences of the gateway's issuer (issuers[].audiences in its configuration; ask its operator: the gateway does not disclose them)`;
    case "TG_TOKEN_ISSUER_UNKNOWN":
      return `the gateway does not trust this job's token issuer ${JSON.stringify(issuerOf(token))}; its operator must list it under issuers (preset: github for github.com)`;
    case "TG_TOKEN_EXPIRED":
    case "TG_TOKEN_NOT_YET_VALID":
    case "TG_TOKEN_TOO_OLD":
      return "the token's validity times do not fit the gateway's clock; check the clocks of the runner and the gateway";
    case "TG_TOKEN_SIGNATURE_INVALID":
    case "TG_TOKEN_KEY_UNKNOWN":
    case "TG_TOKEN_ALGORITHM_FORBIDDEN":
      return "the gateway could not verify the token's signature with its issuer's keys; its operator should check the issuer's URL and algorithms";
    case "TG_ISSUER_UNAVAILABLE":
      return "the gateway cannot load its issuer's keys right now; retry, and tell its operator";
    case "TG_RATE_LIMITED":
      return "too many failed tokens came from this address; retry after a minute";
    default:
      return errorCatalogue[code].publicMessage;
  }
}
function isKnownCode(code) {
  return code !== void 0 && Object.hasOwn(errorCatalogue, code);
}
function issuerOf(token) {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === "string" ? iss : "(none)";
  } catch {
    return "(not a JWT)";
  }
}
function identityOf(body) {
  try {
    const parsed = JSON.parse(body.toString("utf8"));
    if (typeof parsed.issuer !== "string" || typeof parsed.expires_at !== "string") return void 0;
    return {
      issuer: parsed.issuer,
      subject: typeof parsed.subject === "string" ? parsed.subject : "",
      repository: typeof parsed.repository === "string" ? parsed.repository : void 0,
      expiresAt: parsed.expires_at
    };
  } catch {
    return void 0;
  }
}
function getWhoami(gateway, token, timeoutMs) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const request = gatewayRequest(gateway, {
      ...gatewayRequestOptions(gateway),
      method: "GET",
      path: whoamiPath,
      agent: false,
      headers: {
        host: gateway.authority,
        "gateway-authorization": `Bearer ${token}`,
        accept: "application/json"
      }
    });
    const fail = (reason, cause) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      reject(
        new TollgateError("TG_CLIENT_GATEWAY_UNAVAILABLE", `gateway ${gateway.origin}: ${reason}`, { cause })
      );
    };
    const timer = setTimeout(() => fail("no answer in time"), timeoutMs);
    request.on("error", (error) => fail(describeConnectionError(error), error));
    request.on("response", (response) => {
      const chunks = [];
      let length = 0;
      response.on("data", (chunk) => {
        length += chunk.length;
        if (length <= maxBodyBytes) chunks.push(chunk);
      });
      response.on("error", (error) => fail(describeConnectionError(error), error));
      response.on("end", () => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        resolve({ status: response.statusCode ?? 502, body: Buffer.concat(chunks) });
      });
    });
    request.end();
  });
}

// src/client/listen-address.ts
import { isIPv4, isIPv6 } from "node:net";
function parseListenAddress(text) {
  const invalid2 = () => new TollgateError(
    "TG_CONFIG_INVALID",
    `listen address ${JSON.stringify(text)}: expected HOST:PORT, e.g. 127.0.0.1:0`
  );
  const bare = /^\d{1,5}$/.test(text);
  const match = bare ? null : /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]/@]+):(\d{1,5})$/.exec(text);
  if (!bare && match === null) throw invalid2();
  const rawHost = bare ? "127.0.0.1" : match[1];
  const port = Number(bare ? text : match[2]);
  if (port > 65535) throw invalid2();
  const host = rawHost.startsWith("[") ? rawHost.slice(1, -1) : rawHost;
  if (rawHost.startsWith("[") && !isIPv6(host)) throw invalid2();
  return { host, port };
}
function isLoopbackHost(host) {
  const lower = host.toLowerCase();
  if (lower === "localhost") return true;
  if (isIPv4(lower)) return lower.startsWith("127.");
  if (isIPv6(lower)) {
    if (lower === "::1" || lower === "0:0:0:0:0:0:0:1") return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    return mapped !== null && mapped[1].startsWith("127.");
  }
  return false;
}
function assertListenAllowed(address, allowRemote, what) {
  if (isLoopbackHost(address.host) || allowRemote) return;
  throw new TollgateError(
    "TG_CONFIG_INVALID",
    `${what} would listen on ${address.host}, which is not a loopback address; anyone who can reach it would use this job's identity. Listen on 127.0.0.1, or pass --allow-remote if that is really intended.`
  );
}
function formatHostPort(host, port) {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

// src/client/prepare-client.ts
import { readFile } from "node:fs/promises";

// src/lib/clock.ts
var systemClock = () => Date.now();

// src/client/token-source.ts
function createTokenSource(options) {
  const clock = options.clock ?? systemClock;
  const refreshMarginMs = options.refreshMarginMs ?? 6e4;
  const graceMs = options.graceMs ?? 5e3;
  let cached;
  let inFlight;
  async function refresh() {
    try {
      const raw = await options.fetchToken();
      const expiresAtMs = expiryOf(raw);
      cached = expiresAtMs === void 0 ? void 0 : { raw, expiresAtMs };
      return raw;
    } catch (error) {
      if (cached !== void 0 && cached.expiresAtMs - clock() > graceMs) return cached.raw;
      throw error;
    }
  }
  return {
    token() {
      if (cached !== void 0 && cached.expiresAtMs - clock() > refreshMarginMs) {
        return Promise.resolve(cached.raw);
      }
      if (inFlight === void 0) {
        inFlight = refresh().finally(() => {
          inFlight = void 0;
        });
      }
      return inFlight;
    },
    cachedUntil: () => cached?.expiresAtMs
  };
}
function expiryOf(raw) {
  let claims;
  try {
    claims = decodeJwt(raw);
  } catch (cause) {
    throw new TollgateError(
      "TG_CLIENT_TOKEN_UNAVAILABLE",
      "the token endpoint answered something that is not a JWT",
      {
        cause
      }
    );
  }
  return typeof claims.exp === "number" && Number.isFinite(claims.exp) ? claims.exp * 1e3 : void 0;
}

// src/client/actions-id-token.ts
var maxResponseBytes = 64 * 1024;
var permissionHint = "grant the job `permissions: id-token: write` (and run it on a GitHub Actions runner)";
function actionsTokenEndpointFromEnv(env) {
  const requestUrl = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const requestToken = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  const missing = [
    ...requestUrl ? [] : ["ACTIONS_ID_TOKEN_REQUEST_URL"],
    ...requestToken ? [] : ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
  ];
  if (missing.length > 0 || requestUrl === void 0 || requestToken === void 0) {
    throw new TollgateError(
      "TG_CLIENT_TOKEN_UNAVAILABLE",
      `${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not set: ${permissionHint}`
    );
  }
  return { requestUrl, requestToken };
}
function actionsTokenUrl(requestUrl, audience) {
  return `${requestUrl}${requestUrl.includes("?") ? "&" : "?"}audience=${encodeURIComponent(audience)}`;
}
async function requestActionsIdToken(request) {
  if (request.audience.length === 0) {
    throw new TollgateError(
      "TG_CLIENT_TOKEN_UNAVAILABLE",
      "an audience is required (the gateway's audience)"
    );
  }
  const delays = request.retryDelaysMs ?? [500, 2e3];
  let lastError;
  for (let attempt = 0; attempt <= delays.length; attempt += 1) {
    if (attempt > 0) await sleep(delays[attempt - 1]);
    const outcome = await attemptOnce(request);
    if (typeof outcome === "string") return outcome;
    lastError = outcome.error;
    if (!outcome.retryable) break;
  }
  throw lastError;
}
async function attemptOnce(request) {
  const fail = (reason, retryable, cause) => ({
    error: new TollgateError("TG_CLIENT_TOKEN_UNAVAILABLE", `the Actions token endpoint ${reason}`, {
      cause
    }),
    retryable
  });
  const doFetch = request.fetch ?? fetch;
  let response;
  try {
    response = await doFetch(actionsTokenUrl(request.requestUrl, request.audience), {
      method: "GET",
      redirect: "error",
      headers: {
        authorization: `Bearer ${request.requestToken}`,
        accept: "application/json",
        "user-agent": "tollgate-client"
      },
      signal: AbortSignal.timeout(request.timeoutMs ?? 1e4)
    });
  } catch (cause) {
    return fail("could not be reached", true, cause);
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => void 0);
    const hint = response.status === 401 || response.status === 403 ? ` (${permissionHint})` : "";
    return fail(`answered HTTP ${response.status}${hint}`, response.status >= 500 || response.status === 429);
  }
  let text;
  try {
    text = await readCapped(response);
  } catch (cause) {
    return fail("answered a body that could not be read or was too large", false, cause);
  }
  let value;
  try {
    value = JSON.parse(text).value;
  } catch {
    return fail("answered a body that is not JSON", false);
  }
  if (typeof value !== "string" || value.length === 0) {
    return fail("answered JSON without a `value` string", false);
  }
  return value;
}
async function readCapped(response) {
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxResponseBytes) {
    await response.body?.cancel().catch(() => void 0);
    throw new Error(`body of ${declared} bytes`);
  }
  const chunks = [];
  let total = 0;
  if (response.body === null) return "";
  for await (const chunk of response.body) {
    total += chunk.byteLength;
    if (total > maxResponseBytes) throw new Error("body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
function createActionsTokenSource(options) {
  return createTokenSource({
    fetchToken: () => requestActionsIdToken({
      ...options.endpoint,
      audience: options.audience,
      ...options.fetch ? { fetch: options.fetch } : {},
      ...options.retryDelaysMs ? { retryDelaysMs: options.retryDelaysMs } : {}
    }),
    ...options.clock ? { clock: options.clock } : {},
    ...options.refreshMarginMs !== void 0 ? { refreshMarginMs: options.refreshMarginMs } : {}
  });
}

// src/client/gateway-target.ts
import { isIP } from "node:net";
function parseGatewayUrl(text, options = {}) {
  const invalid2 = (reason) => new TollgateError("TG_CONFIG_INVALID", `--gateway ${text}: ${reason}`);
  let url;
  try {
    url = new URL(text);
  } catch {
    throw invalid2("not a URL (expected https://host[:port])");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw invalid2("use an http:// or https:// URL");
  if (url.username !== "" || url.password !== "") {
    throw invalid2("must not carry credentials; the OIDC token is the credential");
  }
  if (url.pathname !== "/" && url.pathname !== "" || url.search !== "" || url.hash !== "") {
    throw invalid2("must be an origin without a path or query (https://host[:port])");
  }
  const tls = url.protocol === "https:";
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === "" ? tls ? 443 : 80 : Number(url.port);
  if (options.ca !== void 0 && !tls) throw invalid2("--ca applies to an https:// gateway only");
  return Object.freeze({
    origin: url.origin,
    authority: url.host,
    tls,
    host,
    port,
    servername: tls && isIP(host) === 0 ? host : void 0,
    ca: options.ca
  });
}

// src/client/prepare-client.ts
async function prepareClient(settings) {
  if (settings.audience.trim().length === 0) {
    throw new TollgateError(
      "TG_CONFIG_INVALID",
      "an audience is required: the gateway's configured audience"
    );
  }
  const ca = settings.caPem ?? (settings.caFile === void 0 ? void 0 : await readCaFile(settings.caFile));
  if (ca !== void 0 && !ca.includes("-----BEGIN CERTIFICATE-----")) {
    throw new TollgateError(
      "TG_CONFIG_INVALID",
      "the CA is not a PEM certificate (-----BEGIN CERTIFICATE-----)"
    );
  }
  const gateway = parseGatewayUrl(settings.gatewayUrl, ca === void 0 ? {} : { ca });
  const tokens = createActionsTokenSource({
    endpoint: actionsTokenEndpointFromEnv(settings.env),
    audience: settings.audience,
    ...settings.fetch ? { fetch: settings.fetch } : {},
    ...settings.clock ? { clock: settings.clock } : {}
  });
  const token = await tokens.token();
  const check = settings.checkToken === false ? void 0 : await checkTokenWithGateway(gateway, token, { audience: settings.audience });
  return { gateway, tokens, check };
}
async function readCaFile(file) {
  try {
    return await readFile(file, "utf8");
  } catch (cause) {
    const code = cause.code ?? "unreadable";
    throw new TollgateError("TG_CONFIG_INVALID", `--ca ${file}: cannot read it (${code})`, { cause });
  }
}
function describeTokenCheck(check) {
  if (!check.checked) return `the token was not checked in advance: ${check.reason}`;
  const { identity } = check;
  const repository = identity.repository === void 0 ? "" : ` of ${identity.repository}`;
  return `the gateway accepts this job's token${repository} (issuer ${identity.issuer}, subject ${identity.subject})`;
}
function describeClientError(error) {
  if (error instanceof TollgateError) return `${error.code}: ${error.message}`;
  return `internal error: ${error instanceof Error ? error.message : String(error)}`;
}

// src/client/relay-errors.ts
import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
function localRequestId() {
  return `local-${randomUUID()}`;
}
function refusalBody(refusal, requestId) {
  return JSON.stringify({
    error: {
      code: refusal.code ?? "TG_CLIENT_GATEWAY_UNAVAILABLE",
      message: refusal.message ?? `The gateway answered HTTP ${refusal.status}.`,
      request_id: refusal.requestId ?? requestId
    }
  });
}
function rawHttpAnswer(status, body) {
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r
content-type: application/json\r
content-length: ${Buffer.byteLength(body)}\r
connection: close\r
\r
` + body;
}
function localErrorAnswer(error, requestId) {
  const response = toErrorResponse(error, requestId);
  return { status: response.status, body: JSON.stringify(response.body) };
}
function describeRefusal(refusal) {
  const code = refusal.code === void 0 ? "" : ` ${refusal.code}`;
  const id = refusal.requestId === void 0 ? "" : ` (request_id ${refusal.requestId})`;
  return `gateway answered ${refusal.status}${code}${id}`;
}

// src/client/pipe.ts
function parsePipeDestination(text) {
  const invalid2 = (reason) => new TollgateError("TG_CONFIG_INVALID", `pipe ${JSON.stringify(text)}: ${reason} (expected HOST:PORT)`);
  const bracketed = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text);
  const colon = text.lastIndexOf(":");
  const [host, portText] = bracketed !== null ? [bracketed[1], bracketed[2]] : [text.slice(0, colon), text.slice(colon + 1)];
  if (colon === -1 || host.length === 0) throw invalid2("no port");
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw invalid2(`port ${portText} is not a port number (1-65535)`);
  }
  const hostName = /^[A-Za-z0-9._-]+$/.test(host) && !host.includes(":");
  if (!hostName && isIP2(host) !== 6) throw invalid2(`${host} is not a host name or IP address`);
  return formatHostPort(host, Number(portText));
}
async function runPipe(options) {
  const { destination, input, output, log } = options;
  let token;
  try {
    token = await options.tokens.token();
    const outcome = await openGatewayTunnel(options.gateway, destination, token, {
      timeoutMs: options.gatewayTimeoutMs ?? 6e4
    });
    if (!outcome.ok) {
      log(`${destination}: ${describeRefusal(outcome.refusal)}`);
      if (outcome.refusal.status === 407) {
        const check = await checkTokenWithGateway(options.gateway, token, {
          audience: options.audience
        }).catch((error) => error);
        if (check instanceof TollgateError) log(`${check.code}: ${check.message}`);
      }
      return 1;
    }
    if (options.verbose) log(`${destination}: tunnel open`);
    return await carry(outcome.socket, outcome.head, input, output, log, destination);
  } catch (error) {
    log(
      `${destination}: ${error instanceof TollgateError ? `${error.code}: ${error.message}` : "internal error"}`
    );
    return 1;
  }
}
function carry(socket, head, input, output, log, destination) {
  return new Promise((resolve) => {
    let lost = false;
    socket.on("error", () => {
      lost = true;
    });
    output.on("error", () => socket.destroy());
    if (head.length > 0) output.write(head);
    input.pipe(socket);
    socket.pipe(output, { end: false });
    socket.once("close", () => {
      input.unpipe(socket);
      input.destroy();
      if (lost) log(`${destination}: the tunnel was cut`);
      output.end(() => resolve(lost ? 1 : 0));
    });
  });
}
async function runPipeCommand(options) {
  try {
    const destination = parsePipeDestination(options.target);
    const { gateway, tokens } = await prepareClient({ ...options.settings, checkToken: false });
    return await runPipe({
      gateway,
      tokens,
      audience: options.settings.audience,
      destination,
      input: options.input,
      output: options.output,
      log: options.log,
      verbose: options.verbose === true
    });
  } catch (error) {
    options.log(describeClientError(error));
    return error instanceof TollgateError && error.code === "TG_CONFIG_INVALID" ? 2 : 1;
  }
}

// src/client/local-proxy.ts
import { createServer, Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";

// node_modules/structured-headers/dist/util.js
var asciiRe = /^[\x20-\x7E]*$/;
var tokenRe = /^[a-zA-Z*][:/!#$%&'*+\-.^_`|~A-Za-z0-9]*$/;
function isAscii(str) {
  return asciiRe.test(str);
}
function isValidTokenStr(str) {
  return tokenRe.test(str);
}
function base64ToArrayBuffer(b64) {
  const binaryString = atob(b64);
  const len = binaryString.length;
  const bytes = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    bytes[i] = binaryString.charCodeAt(i);
  }
  return bytes.buffer;
}

// node_modules/structured-headers/dist/token.js
var Token = class {
  constructor(value) {
    if (!isValidTokenStr(value)) {
      throw new TypeError("Invalid character in Token string. Tokens must start with *, A-Z and the rest of the string may only contain a-z, A-Z, 0-9, :/!#$%&'*+-.^_`|~");
    }
    this.value = value;
  }
  toString() {
    return this.value;
  }
};

// node_modules/structured-headers/dist/displaystring.js
var DisplayString = class {
  constructor(value) {
    this.value = value;
  }
  toString() {
    return this.value;
  }
};

// node_modules/structured-headers/dist/parser.js
function parseList(input) {
  const parser = new Parser(input);
  return parser.parseList();
}
var ParseError = class extends Error {
  constructor(position, message) {
    super(`Parse error: ${message} at offset ${position}`);
  }
};
var Parser = class {
  constructor(input) {
    this.input = input;
    this.pos = 0;
  }
  parseDictionary() {
    this.skipWS();
    const dictionary = /* @__PURE__ */ new Map();
    while (!this.eof()) {
      const thisKey = this.parseKey();
      let member;
      if (this.lookChar() === "=") {
        this.pos++;
        member = this.parseItemOrInnerList();
      } else {
        member = [true, this.parseParameters()];
      }
      dictionary.set(thisKey, member);
      this.skipOWS();
      if (this.eof()) {
        return dictionary;
      }
      this.expectChar(",");
      this.pos++;
      this.skipOWS();
      if (this.eof()) {
        throw new ParseError(this.pos, "Dictionary contained a trailing comma");
      }
    }
    return dictionary;
  }
  parseList() {
    this.skipWS();
    const members = [];
    while (!this.eof()) {
      members.push(this.parseItemOrInnerList());
      this.skipOWS();
      if (this.eof()) {
        return members;
      }
      this.expectChar(",");
      this.pos++;
      this.skipOWS();
      if (this.eof()) {
        throw new ParseError(this.pos, "A list may not end with a trailing comma");
      }
    }
    return members;
  }
  parseItem(standaloneItem = true) {
    if (standaloneItem)
      this.skipWS();
    const result = [
      this.parseBareItem(),
      this.parseParameters()
    ];
    if (standaloneItem)
      this.checkTrail();
    return result;
  }
  parseItemOrInnerList() {
    if (this.lookChar() === "(") {
      return this.parseInnerList();
    } else {
      return this.parseItem(false);
    }
  }
  parseInnerList() {
    this.expectChar("(");
    this.pos++;
    const innerList = [];
    while (!this.eof()) {
      this.skipWS();
      if (this.lookChar() === ")") {
        this.pos++;
        return [
          innerList,
          this.parseParameters()
        ];
      }
      innerList.push(this.parseItem(false));
      const nextChar = this.lookChar();
      if (nextChar !== " " && nextChar !== ")") {
        throw new ParseError(this.pos, "Expected a whitespace or ) after every item in an inner list");
      }
    }
    throw new ParseError(this.pos, "Could not find end of inner list");
  }
  parseBareItem() {
    const char = this.lookChar();
    if (char === void 0) {
      throw new ParseError(this.pos, "Unexpected end of string");
    }
    if (char.match(/^[-0-9]/)) {
      return this.parseIntegerOrDecimal();
    }
    if (char === '"') {
      return this.parseString();
    }
    if (char.match(/^[A-Za-z*]/)) {
      return this.parseToken();
    }
    if (char === ":") {
      return this.parseByteSequence();
    }
    if (char === "?") {
      return this.parseBoolean();
    }
    if (char === "@") {
      return this.parseDate();
    }
    if (char === "%") {
      return this.parseDisplayString();
    }
    throw new ParseError(this.pos, "Unexpected input");
  }
  parseParameters() {
    const parameters = /* @__PURE__ */ new Map();
    while (!this.eof()) {
      const char = this.lookChar();
      if (char !== ";") {
        break;
      }
      this.pos++;
      this.skipWS();
      const key = this.parseKey();
      let value = true;
      if (this.lookChar() === "=") {
        this.pos++;
        value = this.parseBareItem();
      }
      parameters.set(key, value);
    }
    return parameters;
  }
  parseIntegerOrDecimal() {
    let type = "integer";
    let sign = 1;
    let inputNumber = "";
    if (this.lookChar() === "-") {
      sign = -1;
      this.pos++;
    }
    if (!isDigit(this.lookChar())) {
      throw new ParseError(this.pos, "Expected a digit (0-9)");
    }
    while (!this.eof()) {
      const char = this.getChar();
      if (isDigit(char)) {
        inputNumber += char;
      } else if (type === "integer" && char === ".") {
        if (inputNumber.length > 12) {
          throw new ParseError(this.pos, "Exceeded maximum decimal length");
        }
        inputNumber += ".";
        type = "decimal";
      } else {
        this.pos--;
        break;
      }
      if (type === "integer" && inputNumber.length > 15) {
        throw new ParseError(this.pos, "Exceeded maximum integer length");
      }
      if (type === "decimal" && inputNumber.length > 16) {
        throw new ParseError(this.pos, "Exceeded maximum decimal length");
      }
    }
    if (type === "integer") {
      return parseInt(inputNumber, 10) * sign;
    } else {
      if (inputNumber.endsWith(".")) {
        throw new ParseError(this.pos, "Decimal cannot end on a period");
      }
      if (inputNumber.split(".")[1].length > 3) {
        throw new ParseError(this.pos, "Number of digits after the decimal point cannot exceed 3");
      }
      return parseFloat(inputNumber) * sign;
    }
  }
  parseString() {
    let outputString = "";
    this.expectChar('"');
    this.pos++;
    while (!this.eof()) {
      const char = this.getChar();
      if (char === "\\") {
        if (this.eof()) {
          throw new ParseError(this.pos, "Unexpected end of input");
        }
        const nextChar = this.getChar();
        if (nextChar !== "\\" && nextChar !== '"') {
          throw new ParseError(this.pos, "A backslash must be followed by another backslash or double quote");
        }
        outputString += nextChar;
      } else if (char === '"') {
        return outputString;
      } else if (!isAscii(char)) {
        throw new ParseError(this.pos, "Strings must be in the ASCII range");
      } else {
        outputString += char;
      }
    }
    throw new ParseError(this.pos, "Unexpected end of input");
  }
  parseDisplayString() {
    const chars = this.getChars(2);
    if (chars !== '%"') {
      throw new ParseError(this.pos, "Unexpected character. Display strings should start with %=");
    }
    const result = [];
    while (!this.eof()) {
      const char = this.getChar();
      if (char.charCodeAt(0) <= 31 || char.charCodeAt(0) >= 127 && char.charCodeAt(0) <= 255) {
        throw new ParseError(this.pos, "Invalid char found in DisplayString. Did you forget to escape?");
      }
      if (char === "%") {
        const hexChars = this.getChars(2);
        if (/^[0-9a-f]{2}$/.test(hexChars)) {
          result.push(parseInt(hexChars, 16));
        } else {
          throw new ParseError(this.pos, `Unexpected sequence after % in DispalyString: "${hexChars}". Note that hexidecimals must be lowercase`);
        }
        continue;
      }
      if (char === '"') {
        const textDecoder = new TextDecoder("utf-8", {
          fatal: true
        });
        try {
          return new DisplayString(textDecoder.decode(new Uint8Array(result)));
        } catch {
          throw new ParseError(this.pos, "Fatal error decoding UTF-8 sequence in Display String");
        }
      }
      result.push(char.charCodeAt(0));
    }
    throw new ParseError(this.pos, "Unexpected end of input");
  }
  parseToken() {
    let outputString = "";
    while (!this.eof()) {
      const char = this.lookChar();
      if (char === void 0 || !/^[:/!#$%&'*+\-.^_`|~A-Za-z0-9]$/.test(char)) {
        return new Token(outputString);
      }
      outputString += this.getChar();
    }
    return new Token(outputString);
  }
  parseByteSequence() {
    this.expectChar(":");
    this.pos++;
    const endPos = this.input.indexOf(":", this.pos);
    if (endPos === -1) {
      throw new ParseError(this.pos, 'Could not find a closing ":" character to mark end of Byte Sequence');
    }
    const b64Content = this.input.substring(this.pos, endPos);
    this.pos += b64Content.length + 1;
    if (!/^[A-Za-z0-9+/=]*$/.test(b64Content)) {
      throw new ParseError(this.pos, "ByteSequence does not contain a valid base64 string");
    }
    try {
      return base64ToArrayBuffer(b64Content);
    } catch {
      throw new ParseError(this.pos, "ByteSequence does not contain a valid base64 string");
    }
  }
  parseBoolean() {
    this.expectChar("?");
    this.pos++;
    const char = this.getChar();
    if (char === "1") {
      return true;
    }
    if (char === "0") {
      return false;
    }
    throw new ParseError(this.pos, 'Unexpected character. Expected a "1" or a "0"');
  }
  parseDate() {
    this.expectChar("@");
    this.pos++;
    let sign = 1;
    let inputNumber = "";
    if (this.lookChar() === "-") {
      sign = -1;
      this.pos++;
    }
    if (!isDigit(this.lookChar())) {
      throw new ParseError(this.pos, "Expected a digit (0-9)");
    }
    while (!this.eof()) {
      const char = this.getChar();
      if (isDigit(char)) {
        inputNumber += char;
      } else {
        throw new ParseError(this.pos, "Expected a digit (0-9), whitespace or EOL");
      }
    }
    if (inputNumber.length > 15) {
      throw new ParseError(this.pos, "Exceeded max length for a date value");
    }
    return new Date(parseInt(inputNumber, 10) * sign * 1e3);
  }
  parseKey() {
    if (!this.lookChar()?.match(/^[a-z*]/)) {
      throw new ParseError(this.pos, "A key must begin with an asterisk or letter (a-z)");
    }
    let outputString = "";
    while (!this.eof()) {
      const char = this.lookChar();
      if (char === void 0 || !/^[a-z0-9_\-.*]$/.test(char)) {
        return outputString;
      }
      outputString += this.getChar();
    }
    return outputString;
  }
  /**
   * Looks at the next character without advancing the cursor.
   *
   * Returns undefined if we were at the end of the string.
   */
  lookChar() {
    return this.input[this.pos];
  }
  /**
   * Checks if the next character is 'char', and fail otherwise.
   */
  expectChar(char) {
    if (this.lookChar() !== char) {
      throw new ParseError(this.pos, `Expected ${char}`);
    }
  }
  getChar() {
    return this.input[this.pos++];
  }
  getChars(count) {
    const result = this.input.substr(this.pos, count);
    this.pos += count;
    return result;
  }
  eof() {
    return this.pos >= this.input.length;
  }
  // Advances the pointer to skip all whitespace.
  skipOWS() {
    while (true) {
      const c = this.input.substr(this.pos, 1);
      if (c === " " || c === "	") {
        this.pos++;
      } else {
        break;
      }
    }
  }
  // Advances the pointer to skip all spaces
  skipWS() {
    while (this.lookChar() === " ") {
      this.pos++;
    }
  }
  // At the end of parsing, we need to make sure there are no bytes after the
  // header except whitespace.
  checkTrail() {
    this.skipWS();
    if (!this.eof()) {
      throw new ParseError(this.pos, "Unexpected characters at end of input");
    }
  }
};
var isDigitRegex = /^[0-9]$/;
function isDigit(char) {
  if (char === void 0)
    return false;
  return isDigitRegex.test(char);
}

// src/lib/proxy-status.ts
var proxyStatusName = "tollgate";
function gatewayAnswer(field) {
  if (field === void 0) return false;
  let members;
  try {
    members = parseList(typeof field === "string" ? field : field.join(", "));
  } catch {
    return false;
  }
  const last = members.at(-1);
  if (last === void 0 || Array.isArray(last[0])) return false;
  const [name, parameters] = last;
  const named = name instanceof Token ? name.toString() : name;
  if (named !== proxyStatusName || !parameters.has("error")) return false;
  const details = parameters.get("details");
  return { code: typeof details === "string" && /^TG_[A-Z0-9_]{1,60}$/.test(details) ? details : void 0 };
}

// src/client/tunnel-dialer.ts
function createTunnelDialer(options) {
  return {
    gateway: options.gateway,
    async dial(authority, signal) {
      const token = await options.tokens.token();
      return openGatewayTunnel(options.gateway, authority, token, {
        ...options.timeoutMs === void 0 ? {} : { timeoutMs: options.timeoutMs },
        ...signal ? { signal } : {}
      });
    }
  };
}
function splice(local, remote) {
  return new Promise((resolve) => {
    let closed = 0;
    const onClose = () => {
      closed += 1;
      if (closed === 2) resolve();
    };
    const destroyBoth = () => {
      local.destroy();
      remote.destroy();
    };
    local.on("error", destroyBoth);
    remote.on("error", destroyBoth);
    local.once("close", () => {
      remote.end();
      onClose();
    });
    remote.once("close", () => {
      local.end();
      onClose();
    });
    local.pipe(remote);
    remote.pipe(local);
  });
}

// src/client/local-proxy.ts
var notForwarded = /* @__PURE__ */ new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "proxy-authorization",
  "proxy-authenticate",
  "gateway-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade"
]);
var authorityPattern = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;
async function startLocalProxy(options) {
  const listen = options.listen ?? { host: "127.0.0.1", port: 0 };
  assertListenAllowed(listen, options.allowRemote === true, "the proxy");
  const log = options.log ?? ((line) => process.stderr.write(`tollgate proxy: ${line}
`));
  const gatewayTimeoutMs = options.gatewayTimeoutMs ?? 6e4;
  const dialer = createTunnelDialer({
    gateway: options.gateway,
    tokens: options.tokens,
    timeoutMs: gatewayTimeoutMs
  });
  const agent = options.gateway.tls ? new HttpsAgent({ keepAlive: true, maxSockets: 64 }) : new HttpAgent({ keepAlive: true, maxSockets: 64 });
  const open = /* @__PURE__ */ new Set();
  const closing = new AbortController();
  const track = (socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  };
  const server = createServer((req, res) => {
    forwardRequest(req, res).catch((error) => {
      log(`${req.method} ${safeUrl(req.url ?? "")}: ${messageOf(error)}`);
      if (!res.headersSent) {
        const local = localErrorAnswer(error, localRequestId());
        res.writeHead(local.status, { "content-type": "application/json", connection: "close" });
        res.end(local.body);
      } else {
        res.destroy();
      }
    });
  });
  server.on("connection", track);
  server.on("connect", (req, socket, head) => {
    tunnel(req, socket, head).catch((error) => {
      log(`CONNECT ${req.url ?? ""}: ${messageOf(error)}`);
      socket.destroy();
    });
  });
  async function tunnel(req, client, head) {
    const authority = req.url ?? "";
    const requestId = localRequestId();
    client.on("error", () => client.destroy());
    const answer = (status, body) => {
      if (!client.destroyed) client.end(rawHttpAnswer(status, body));
    };
    if (!isValidAuthority(authority)) {
      answer(400, localErrorAnswer(badRequest("CONNECT needs a host:port target"), requestId).body);
      return;
    }
    try {
      const outcome = await dialer.dial(authority, closing.signal);
      if (!outcome.ok) {
        log(`CONNECT ${authority}: ${describeRefusal(outcome.refusal)}`);
        answer(outcome.refusal.status, refusalBody(outcome.refusal, requestId));
        return;
      }
      const remote = outcome.socket;
      track(remote);
      if (client.destroyed) {
        remote.destroy();
        return;
      }
      if (options.verbose) log(`CONNECT ${authority}: tunnel open`);
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (outcome.head.length > 0) client.write(outcome.head);
      if (head.length > 0) remote.write(head);
      await splice(client, remote);
    } catch (error) {
      log(`CONNECT ${authority}: ${messageOf(error)}`);
      const local = localErrorAnswer(error, requestId);
      answer(local.status, local.body);
    }
  }
  async function forwardRequest(req, res) {
    const requestId = localRequestId();
    const fail = (error) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const local = localErrorAnswer(error, requestId);
      res.writeHead(local.status, { "content-type": "application/json", connection: "close" });
      res.end(local.body);
    };
    const target = req.url ?? "";
    const absoluteForm = /^http:\/\//i.test(target);
    if (!absoluteForm && !target.startsWith("/")) {
      req.resume();
      fail(
        badRequest(
          /^https:\/\//i.test(target) ? "https:// URLs go through CONNECT: set HTTPS_PROXY, not HTTP_PROXY, for them" : "send absolute-form requests (HTTP_PROXY), CONNECT (HTTPS_PROXY), or /paths of the gateway's routes"
        )
      );
      return;
    }
    const refusal = absoluteForm ? void 0 : browserRefusal(req, options.allowRemote === true);
    if (refusal !== void 0) {
      log(`${req.method} ${safeUrl(target)}: refused (${refusal})`);
      req.resume();
      fail(badRequest(refusal));
      return;
    }
    let token;
    try {
      token = await options.tokens.token();
    } catch (error) {
      log(`${req.method} ${safeUrl(target)}: ${messageOf(error)}`);
      req.resume();
      fail(error);
      return;
    }
    const upstream = gatewayRequest(options.gateway, {
      ...gatewayRequestOptions(options.gateway),
      agent,
      method: req.method,
      path: target,
      // Absolute form: a forward-proxy request, credential for the proxy. Origin form: a request to one of
      // the gateway's own routes, credential in the header routes read, Host naming the gateway.
      headers: absoluteForm ? { ...forwardedHeaders(req), "proxy-authorization": `Bearer ${token}` } : {
        ...forwardedHeaders(req),
        host: options.gateway.authority,
        "gateway-authorization": `Bearer ${token}`
      }
    });
    upstream.setTimeout(
      gatewayTimeoutMs,
      () => upstream.destroy(new TollgateError("TG_CLIENT_GATEWAY_UNAVAILABLE", "no answer in time"))
    );
    upstream.on("error", (error) => {
      const wrapped = error instanceof TollgateError ? new TollgateError(error.code, `gateway ${options.gateway.origin}: ${error.message}`) : new TollgateError(
        "TG_CLIENT_GATEWAY_UNAVAILABLE",
        `gateway ${options.gateway.origin}: ${describeConnectionError(error)}`,
        { cause: error }
      );
      log(`${req.method} ${safeUrl(target)}: ${wrapped.message}`);
      fail(wrapped);
    });
    upstream.on("response", (response) => {
      upstream.setTimeout(0);
      const status = response.statusCode ?? 502;
      if (status >= 400) log(`${req.method} ${safeUrl(target)}: ${describeAnswer(response, absoluteForm)}`);
      else if (options.verbose) log(`${req.method} ${safeUrl(target)}: ${status}`);
      res.writeHead(status, responseHeaders(response));
      response.pipe(res);
      response.on("error", () => res.destroy());
    });
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  const address = { host: bound.address, port: bound.port };
  return {
    address,
    url: `http://${formatHostPort(address.host, address.port)}`,
    async close() {
      closing.abort();
      const stopped = new Promise((resolve) => server.close(() => resolve()));
      for (const socket of open) socket.destroy();
      agent.destroy();
      await stopped;
    }
  };
}
function isValidAuthority(authority) {
  const match = authorityPattern.exec(authority);
  if (match === null) return false;
  const port = Number(match[1]);
  return port >= 1 && port <= 65535;
}
function browserRefusal(req, allowRemote) {
  if (req.headers.origin !== void 0 || req.headers["sec-fetch-site"] !== void 0) {
    return "requests from a browser are not relayed to the gateway's routes";
  }
  if (allowRemote) return void 0;
  const host = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(req.headers.host ?? "");
  if (host === null || !isLoopbackHost(host[1] ?? host[2])) {
    return "requests for the gateway's routes must be addressed to the proxy's loopback address";
  }
  return void 0;
}
function badRequest(message) {
  return new TollgateError("TG_BAD_REQUEST", message);
}
function forwardedHeaders(req) {
  const named = new Set(
    (req.headers.connection ?? "").split(",").map((name) => name.trim().toLowerCase()).filter((name) => name.length > 0)
  );
  const headers = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === void 0 || notForwarded.has(name) || named.has(name)) continue;
    headers[name] = value;
  }
  return headers;
}
function responseHeaders(response) {
  const headers = {};
  for (const [name, values] of Object.entries(response.headersDistinct)) {
    if (values === void 0 || notForwarded.has(name)) continue;
    headers[name] = values;
  }
  return headers;
}
function describeAnswer(response, absoluteForm) {
  const status = response.statusCode ?? 502;
  const own = gatewayAnswer(response.headers["proxy-status"]);
  if (own === false) return `${absoluteForm ? "the destination" : "the route's upstream"} answered ${status}`;
  const requestId = response.headers["x-request-id"];
  return describeRefusal({
    status,
    code: own.code,
    message: void 0,
    requestId: typeof requestId === "string" && requestId.length <= 128 ? requestId : void 0
  });
}
function safeUrl(target) {
  if (target.startsWith("/")) return target.split("?")[0];
  try {
    const url = new URL(target);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return "(unparsable URL)";
  }
}
function messageOf(error) {
  return error instanceof TollgateError ? `${error.code}: ${error.message}` : "internal error";
}

// src/client/port-forward.ts
import { createServer as createServer2 } from "node:net";
function parseForwardSpec(text) {
  const invalid2 = (reason) => new TollgateError(
    "TG_CONFIG_INVALID",
    `forward ${JSON.stringify(text)}: ${reason} (expected LOCAL_PORT:HOST:PORT or LOCAL_ADDR:LOCAL_PORT:HOST:PORT)`
  );
  const parts = splitHostPortList(text.trim());
  if (parts === void 0 || parts.length !== 3 && parts.length !== 4) throw invalid2("wrong shape");
  const [localHost, localPort, host, port] = parts.length === 3 ? ["127.0.0.1", parts[0], parts[1], parts[2]] : [parts[0], parts[1], parts[2], parts[3]];
  const listenPort = parsePort(localPort, true);
  const destinationPort = parsePort(port, false);
  if (listenPort === void 0) throw invalid2(`local port ${localPort} is not a port number`);
  if (destinationPort === void 0) throw invalid2(`destination port ${port} is not a port number (1-65535)`);
  if (!/^[A-Za-z0-9._-]+$/.test(host) && !(host.includes(":") && /^[0-9A-Fa-f:.]+$/.test(host))) {
    throw invalid2(`destination host ${host} is not a host name or IP address`);
  }
  if (localHost.length === 0) throw invalid2("empty local address");
  return {
    listen: { host: localHost, port: listenPort },
    destination: formatHostPort(host, destinationPort)
  };
}
function splitHostPortList(text) {
  const parts = [];
  let index = 0;
  while (index <= text.length) {
    if (text[index] === "[") {
      const close = text.indexOf("]", index);
      if (close === -1) return void 0;
      parts.push(text.slice(index + 1, close));
      index = close + 1;
      if (index < text.length && text[index] !== ":") return void 0;
      index += 1;
      continue;
    }
    const next = text.indexOf(":", index);
    const end = next === -1 ? text.length : next;
    parts.push(text.slice(index, end));
    index = end + 1;
  }
  return parts.some((part) => part.length === 0) ? void 0 : parts;
}
function parsePort(text, allowZero) {
  if (!/^\d{1,5}$/.test(text)) return void 0;
  const port = Number(text);
  return port <= 65535 && (allowZero || port > 0) ? port : void 0;
}
async function startPortForwards(options) {
  for (const forward of options.forwards) {
    assertListenAllowed(
      forward.listen,
      options.allowRemote === true,
      `the forward to ${forward.destination}`
    );
  }
  const log = options.log ?? ((line) => process.stderr.write(`tollgate forward: ${line}
`));
  const dialer = createTunnelDialer({
    gateway: options.gateway,
    tokens: options.tokens,
    ...options.gatewayTimeoutMs === void 0 ? {} : { timeoutMs: options.gatewayTimeoutMs }
  });
  const open = /* @__PURE__ */ new Set();
  const closing = new AbortController();
  const track = (socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  };
  const servers = [];
  const listeners = [];
  async function carry2(client, destination, label) {
    track(client);
    client.on("error", () => client.destroy());
    try {
      const outcome = await dialer.dial(destination, closing.signal);
      if (!outcome.ok) {
        log(`${label}: ${describeRefusal(outcome.refusal)}; connection closed`);
        client.destroy();
        return;
      }
      track(outcome.socket);
      if (client.destroyed) {
        outcome.socket.destroy();
        return;
      }
      if (options.verbose) log(`${label}: tunnel open`);
      if (outcome.head.length > 0) client.write(outcome.head);
      const done = splice(client, outcome.socket);
      client.resume();
      await done;
    } catch (error) {
      log(
        `${label}: ${error instanceof TollgateError ? `${error.code}: ${error.message}` : "internal error"}`
      );
      client.destroy();
    }
  }
  try {
    for (const forward of options.forwards) {
      const server = createServer2({ allowHalfOpen: true, pauseOnConnect: true });
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(forward.listen.port, forward.listen.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
      const bound = server.address();
      const address = { host: bound.address, port: bound.port };
      const label = `${formatHostPort(address.host, address.port)} -> ${forward.destination}`;
      server.on("connection", (client) => {
        carry2(client, forward.destination, label).catch(() => client.destroy());
      });
      listeners.push({ address, destination: forward.destination });
    }
  } catch (error) {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    const code = error.code;
    throw new TollgateError(
      "TG_CONFIG_INVALID",
      `cannot listen for forward ${options.forwards[servers.length - 1]?.destination ?? ""}: ${code ?? "failed"}`,
      { cause: error }
    );
  }
  return {
    listeners,
    async close() {
      closing.abort();
      const stopped = Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
      for (const socket of open) socket.destroy();
      await stopped;
    }
  };
}

// src/client/workflow-commands.ts
import { randomUUID as randomUUID2 } from "node:crypto";
import { appendFileSync } from "node:fs";
function escapeCommandData(value) {
  return value.replaceAll("%", "%25").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
}
function annotationCommand(kind, message) {
  return `::${kind}::${escapeCommandData(message)}
`;
}
function environmentFileEntry(name, value) {
  if (name.length === 0 || /[=\r\n]/.test(name)) throw new Error(`invalid environment file name: ${name}`);
  const delimiter = `ghadelimiter_${randomUUID2()}`;
  if (name.includes(delimiter) || value.includes(delimiter)) {
    throw new Error("the value contains the delimiter");
  }
  return `${name}<<${delimiter}
${value}
${delimiter}
`;
}
function appendEnvironmentFile(env, variable, name, value) {
  const file = env[variable];
  if (file === void 0 || file.length === 0) return false;
  appendFileSync(file, environmentFileEntry(name, value), { encoding: "utf8" });
  return true;
}

export {
  TollgateError,
  actionsTokenEndpointFromEnv,
  parseGatewayUrl,
  parseListenAddress,
  formatHostPort,
  startLocalProxy,
  prepareClient,
  describeTokenCheck,
  describeClientError,
  runPipeCommand,
  parseForwardSpec,
  startPortForwards,
  annotationCommand,
  appendEnvironmentFile
};
