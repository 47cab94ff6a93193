import { createAppAuth } from "@octokit/auth-app";
import { request as octokitRequest } from "@octokit/request";
import type { Logger } from "pino";
import { type Dispatcher, fetch as undiciFetch } from "undici";
import type { Redactor } from "../audit/types.js";
import { TollgateError } from "../errors/index.js";
import type { Clock } from "../lib/clock.js";
import { createSingleFlight } from "../store/index.js";
import { backoff, sleep } from "./backoff.js";
import type { BrokerCredential } from "./credentials.js";
import { githubFault, isTransient, type ResponseHeaders, transportFault } from "./github-faults.js";
import type { Scope } from "./types.js";

export const userAgent = "tollgate-runner-broker";
export const apiVersion = "2022-11-28";

/** Installation tokens live an hour; a new one is fetched this long before the old one expires. */
const installationTokenMarginMs = 5 * 60_000;
/** Installations rarely move; the owner → installation id lookup is repeated after this long. */
const installationLookupTtlMs = 60 * 60_000;

/** One GitHub answer as the retrying client (github-api.ts) returns it. */
export interface Answer {
  status: number;
  headers: ResponseHeaders;
  json: unknown;
}

/** The retrying client's call: bounded retries for idempotent calls, every fault mapped. */
export type GitHubCall = (
  method: "GET" | "POST",
  path: string,
  authorization: () => Promise<string>,
  settings: { body?: unknown; idempotent: boolean },
) => Promise<Answer>;

/** What {@link createAppAuthorization} needs of the GitHub client it authorizes. */
export interface AppAuthorizationOptions {
  readonly credential: Extract<BrokerCredential, { kind: "app" }>;
  readonly apiUrl: string;
  readonly dispatcher: Dispatcher;
  readonly timeoutMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly redactor: Redactor;
  readonly maxRetries: number;
  readonly retryBaseMs: number;
  readonly call: GitHubCall;
}

/**
 * A GitHub App's authorization for the broker's calls: `@octokit/auth-app` signs the App JWT and
 * exchanges it for installation tokens, which are cached in this process only (they are the privileged
 * credential) until five minutes before they expire; when no installation id is configured, the
 * installation of each scope's owner is looked up once (through the retrying client) and cached.
 *
 * @example
 * const app = createAppAuthorization({ credential, apiUrl, dispatcher, timeoutMs, clock, logger, redactor, maxRetries, retryBaseMs, call });
 * const header = await app.authorizationFor(scope); // "Bearer ghs_…"
 */
export function createAppAuthorization(options: AppAuthorizationOptions) {
  const { credential: appCredential, apiUrl, dispatcher, timeoutMs, clock, logger, redactor, call } = options;
  const { maxRetries, retryBaseMs } = options;
  const installationTokens = new Map<string, string>();
  const auth = createAppAuth({
    appId: appCredential.appId,
    privateKey: appCredential.privateKey,
    request: octokitRequest.defaults({
      baseUrl: apiUrl,
      headers: { "user-agent": userAgent, "x-github-api-version": apiVersion },
      request: {
        fetch: async (url: string, init: RequestInit) => {
          const what = "POST /app/installations/{id}/access_tokens";
          let response: Awaited<ReturnType<typeof undiciFetch>>;
          try {
            response = await undiciFetch(url, {
              ...(init as object),
              // Octokit leaves fetch's default, `follow`; no GitHub call of the broker follows a redirect.
              redirect: "manual",
              dispatcher,
              signal: AbortSignal.timeout(timeoutMs),
            } as never);
          } catch (error) {
            // Octokit wraps what fetch throws; the cause is unwrapped again in `installationToken`.
            throw transportFault(error, what);
          }
          if (response.status >= 300 && response.status < 400 && response.status !== 304) {
            await response.body?.cancel();
            throw new TollgateError(
              "TG_GITHUB_UNAVAILABLE",
              `${what}: GitHub answered ${response.status} (a redirect, not followed)`,
            );
          }
          return response;
        },
      },
    }),
    // Octokit's own cache keeps tokens 59 minutes by the wall clock; this one honours `expires_at` and
    // the injected clock, and never leaves the process.
    cache: {
      get: (key: string) => {
        const value = installationTokens.get(key);
        const expiresAt = value === undefined ? Number.NaN : Date.parse(value.split("|")[2] ?? "");
        if (value !== undefined && expiresAt - installationTokenMarginMs > clock()) return value;
        installationTokens.delete(key);
        return undefined as unknown as string;
      },
      set: (key: string, value: string) => {
        installationTokens.set(key, value);
      },
    },
    log: {
      warn: (message: string) => logger.warn({ component: "github-app-auth" }, message),
      debug: () => {},
      info: () => {},
      error: (message: string) => logger.error({ component: "github-app-auth" }, message),
    },
  });
  const lookups = createSingleFlight();
  const installationByOwner = new Map<string, { id: number; expiresAtMs: number }>();

  async function appJwt(): Promise<string> {
    const { token } = await auth({ type: "app" });
    redactor.register(token);
    return `Bearer ${token}`;
  }

  async function installationToken(installationId: number): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        const { token } = await auth({ type: "installation", installationId });
        redactor.register(token);
        return `Bearer ${token}`;
      } catch (error) {
        let mapped = octokitFault(error, `POST /app/installations/${installationId}/access_tokens`, clock());
        if (mapped.code === "TG_GITHUB_NOT_FOUND" && appCredential.installationId !== undefined) {
          // The configured installation does not exist (any more): no scope can work, so it is the
          // credential that is wrong, not the caller's scope.
          mapped = new TollgateError(
            "TG_GITHUB_CREDENTIAL_REJECTED",
            `${mapped.message}; check GITHUB_APP_INSTALLATION_ID`,
          );
        }
        if (!isTransient(mapped) || attempt >= maxRetries) throw mapped;
        await sleep(backoff(attempt, retryBaseMs));
      }
    }
  }

  async function installationFor(scope: Scope): Promise<number> {
    if (appCredential.installationId !== undefined) return appCredential.installationId;
    if (scope.kind === "enterprise") {
      throw new TollgateError(
        "TG_GITHUB_NOT_FOUND",
        "GitHub App installation tokens cannot manage enterprise runners; enterprise scopes need a classic PAT with manage_runners:enterprise",
      );
    }
    const known = installationByOwner.get(scope.owner);
    if (known !== undefined && known.expiresAtMs > clock()) return known.id;
    return lookups.run(scope.owner, async () => {
      const path =
        scope.kind === "repo"
          ? `/repos/${encodeURIComponent(scope.owner)}/${encodeURIComponent(scope.repo ?? "")}/installation`
          : `/orgs/${encodeURIComponent(scope.owner)}/installation`;
      const answer = await call("GET", path, appJwt, { idempotent: true });
      const id = (answer.json as { id?: unknown } | null)?.id;
      if (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0) {
        throw new TollgateError("TG_GITHUB_UNAVAILABLE", `GET ${path}: the answer has no installation id`);
      }
      installationByOwner.set(scope.owner, { id, expiresAtMs: clock() + installationLookupTtlMs });
      return id;
    });
  }

  return {
    appJwt,
    installationToken,
    async authorizationFor(scope: Scope): Promise<string> {
      return installationToken(await installationFor(scope));
    },
    forget(scope: Scope): void {
      installationByOwner.delete(scope.owner);
    },
  };
}

/** An error from `@octokit/auth-app` (a `RequestError` with status and headers, or a wrapped fetch failure). */
function octokitFault(error: unknown, what: string, nowMs: number): TollgateError {
  if (error instanceof TollgateError) return error;
  const cause = (error as { cause?: unknown } | null)?.cause;
  if (cause instanceof TollgateError) return cause;
  const status = (error as { status?: unknown } | null)?.status;
  const headers = (error as { response?: { headers?: ResponseHeaders } } | null)?.response?.headers;
  if (typeof status === "number" && headers !== undefined) return githubFault(status, headers, what, nowMs);
  return transportFault(error, what);
}
