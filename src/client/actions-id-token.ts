import { TollgateError } from "../errors/index.js";
import type { Clock } from "../lib/clock.js";
import { createTokenSource, type TokenSource } from "./token-source.js";

/** Where the runner's token endpoint is and how to authenticate to it (from the step's environment). */
export interface ActionsTokenEndpoint {
  /** `ACTIONS_ID_TOKEN_REQUEST_URL`: already carries a query (`?api-version=…`). */
  readonly requestUrl: string;
  /** `ACTIONS_ID_TOKEN_REQUEST_TOKEN`: a runtime credential, never logged. */
  readonly requestToken: string;
}

/** How one token request is made. */
export interface ActionsIdTokenRequest extends ActionsTokenEndpoint {
  /** The gateway's audience (`aud` of the minted token). */
  readonly audience: string;
  /** Default: the global fetch (undici). */
  readonly fetch?: typeof fetch;
  /** Per attempt (default 10 s). */
  readonly timeoutMs?: number;
  /** Waits between attempts after a network error or a 5xx/429 (default 0.5 s, 2 s). */
  readonly retryDelaysMs?: readonly number[];
}

const maxResponseBytes = 64 * 1024;
const permissionHint = "grant the job `permissions: id-token: write` (and run it on a GitHub Actions runner)";

/**
 * Reads the token endpoint from the environment the runner gives a step that may request OIDC tokens.
 * Throws `TG_CLIENT_TOKEN_UNAVAILABLE` with the fix when a variable is missing.
 *
 * @example
 * const endpoint = actionsTokenEndpointFromEnv(process.env);
 */
export function actionsTokenEndpointFromEnv(env: NodeJS.ProcessEnv): ActionsTokenEndpoint {
  const requestUrl = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const requestToken = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  const missing = [
    ...(requestUrl ? [] : ["ACTIONS_ID_TOKEN_REQUEST_URL"]),
    ...(requestToken ? [] : ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]),
  ];
  if (missing.length > 0 || requestUrl === undefined || requestToken === undefined) {
    throw new TollgateError(
      "TG_CLIENT_TOKEN_UNAVAILABLE",
      `${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not set: ${permissionHint}`,
    );
  }
  return { requestUrl, requestToken };
}

/**
 * The URL GitHub's own toolkit builds: the endpoint URL with `&audience=<URL-encoded audience>` appended
 * (`?` if the URL had no query). The existing query is left byte for byte as the runner wrote it.
 */
export function actionsTokenUrl(requestUrl: string, audience: string): string {
  return `${requestUrl}${requestUrl.includes("?") ? "&" : "?"}audience=${encodeURIComponent(audience)}`;
}

/**
 * Requests one OIDC token from the Actions token endpoint for `audience`. Retries network errors,
 * 5xx and 429 a couple of times; any failure is a `TG_CLIENT_TOKEN_UNAVAILABLE` that names the HTTP status
 * but never the response body or a credential.
 *
 * @example
 * const token = await requestActionsIdToken({ ...actionsTokenEndpointFromEnv(process.env), audience: "tollgate.example.com" });
 */
export async function requestActionsIdToken(request: ActionsIdTokenRequest): Promise<string> {
  if (request.audience.length === 0) {
    throw new TollgateError(
      "TG_CLIENT_TOKEN_UNAVAILABLE",
      "an audience is required (the gateway's audience)",
    );
  }
  const delays = request.retryDelaysMs ?? [500, 2000];
  let lastError: TollgateError | undefined;
  for (let attempt = 0; attempt <= delays.length; attempt += 1) {
    if (attempt > 0) await sleep(delays[attempt - 1]!);
    const outcome = await attemptOnce(request);
    if (typeof outcome === "string") return outcome;
    lastError = outcome.error;
    if (!outcome.retryable) break;
  }
  throw lastError!;
}

async function attemptOnce(
  request: ActionsIdTokenRequest,
): Promise<string | { error: TollgateError; retryable: boolean }> {
  const fail = (reason: string, retryable: boolean, cause?: unknown) => ({
    error: new TollgateError("TG_CLIENT_TOKEN_UNAVAILABLE", `the Actions token endpoint ${reason}`, {
      cause,
    }),
    retryable,
  });
  const doFetch = request.fetch ?? fetch;
  let response: Response;
  try {
    response = await doFetch(actionsTokenUrl(request.requestUrl, request.audience), {
      method: "GET",
      redirect: "error",
      headers: {
        authorization: `Bearer ${request.requestToken}`,
        accept: "application/json",
        "user-agent": "tollgate-client",
      },
      signal: AbortSignal.timeout(request.timeoutMs ?? 10_000),
    });
  } catch (cause) {
    return fail("could not be reached", true, cause);
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    const hint = response.status === 401 || response.status === 403 ? ` (${permissionHint})` : "";
    return fail(`answered HTTP ${response.status}${hint}`, response.status >= 500 || response.status === 429);
  }
  let text: string;
  try {
    text = await readCapped(response);
  } catch (cause) {
    return fail("answered a body that could not be read or was too large", false, cause);
  }
  let value: unknown;
  try {
    value = (JSON.parse(text) as { value?: unknown }).value;
  } catch {
    return fail("answered a body that is not JSON", false);
  }
  if (typeof value !== "string" || value.length === 0) {
    return fail("answered JSON without a `value` string", false);
  }
  return value;
}

async function readCapped(response: Response): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxResponseBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`body of ${declared} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body === null) return "";
  for await (const chunk of response.body) {
    total += chunk.byteLength;
    if (total > maxResponseBytes) throw new Error("body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What {@link createActionsTokenSource} needs: the endpoint, the audience, and the injectable outside world. */
export interface ActionsTokenSourceOptions {
  readonly endpoint: ActionsTokenEndpoint;
  readonly audience: string;
  readonly fetch?: typeof fetch;
  readonly clock?: Clock;
  readonly refreshMarginMs?: number;
  readonly retryDelaysMs?: readonly number[];
}

/**
 * A {@link TokenSource} backed by the Actions token endpoint: tokens cached and refreshed a minute
 * before they expire, so an hour-long job keeps working with five-minute tokens.
 *
 * @example
 * const tokens = createActionsTokenSource({ endpoint: actionsTokenEndpointFromEnv(process.env), audience: "tollgate.example.com" });
 */
export function createActionsTokenSource(options: ActionsTokenSourceOptions): TokenSource {
  return createTokenSource({
    fetchToken: () =>
      requestActionsIdToken({
        ...options.endpoint,
        audience: options.audience,
        ...(options.fetch ? { fetch: options.fetch } : {}),
        ...(options.retryDelaysMs ? { retryDelaysMs: options.retryDelaysMs } : {}),
      }),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.refreshMarginMs !== undefined ? { refreshMarginMs: options.refreshMarginMs } : {}),
  });
}
