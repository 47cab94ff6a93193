import type { Logger } from "pino";
import { Agent, type Dispatcher, EnvHttpProxyAgent, request } from "undici";
import type { Redactor } from "../audit/types.js";
import { TollgateError } from "../errors/index.js";
import { type Clock, systemClock } from "../lib/clock.js";
import { backoff, sleep } from "./backoff.js";
import type { BrokerCredential } from "./credentials.js";
import { type Answer, apiVersion, createAppAuthorization, userAgent } from "./github-app-auth.js";
import { githubFault, isTransient, neverSent, transportFault } from "./github-faults.js";
import { runnersPath } from "./scope.js";
import type { JitConfig, JitConfigRequest, RunnerToken, RunnerTokenKind, Scope } from "./types.js";

/** Options of {@link createGitHubApi}. */
export interface GitHubApiOptions {
  /** Base URL without a trailing slash: https://api.github.com or https://HOST/api/v3. */
  apiUrl: string;
  credential: BrokerCredential;
  /** Deadline of one attempt, connection included (ms). */
  timeoutMs: number;
  logger: Logger;
  /** Every installation token and minted runner token is registered here before it is used. */
  redactor: Redactor;
  clock?: Clock;
  /** Proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`) are read from here, as Go's client does. */
  env?: NodeJS.ProcessEnv;
  /** Retries of idempotent calls after a 5xx, a timeout or a failed connection. Default 2. */
  maxRetries?: number;
  /** First backoff (ms), doubled per retry, with jitter. Default 250. */
  retryBaseMs?: number;
  /** Test seam: the dispatcher used for every call. */
  dispatcher?: Dispatcher;
}

/** A minted runner token with its expiry in milliseconds, for the cache. */
export interface MintedRunnerToken extends RunnerToken {
  readonly expiresAtMs: number;
}

/** The GitHub calls the broker makes. Every failure is a `TollgateError` with a `TG_GITHUB_*` code. */
export interface GitHubApi {
  /** `POST …/actions/runners/registration-token` or `…/remove-token` for the scope. */
  createRunnerToken(scope: Scope, kind: RunnerTokenKind): Promise<MintedRunnerToken>;
  /** `POST …/actions/runners/generate-jitconfig`. Never retried after it may have reached GitHub. */
  generateJitConfig(scope: Scope, settings: JitConfigRequest): Promise<JitConfig>;
  /** Proves the credential works: `GET /rate_limit` with a PAT, `GET /app` with an App's JWT. */
  checkCredential(): Promise<void>;
  close(): Promise<void>;
}

/** GitHub answers are small; a larger one is not GitHub's and is not read further. */
const maxResponseBytes = 1024 * 1024;

/**
 * The broker's GitHub client on undici: bounded timeouts, bounded retries with jittered backoff for
 * idempotent calls, and every GitHub error mapped by {@link githubFault} (never echoed). With a GitHub
 * App, the authorization of each call comes from github-app-auth.ts (App JWT, installation tokens).
 *
 * @example
 * const api = createGitHubApi({ apiUrl: "https://api.github.com", credential, timeoutMs: 10_000, logger, redactor });
 * const { token, expires_at } = await api.createRunnerToken(scope, "registration");
 */
export function createGitHubApi(options: GitHubApiOptions): GitHubApi {
  const clock = options.clock ?? systemClock;
  const { apiUrl, timeoutMs, logger, redactor, credential } = options;
  const maxRetries = options.maxRetries ?? 2;
  const retryBaseMs = options.retryBaseMs ?? 250;
  const dispatcher = options.dispatcher ?? createDispatcher(timeoutMs, options.env ?? {});
  const ownDispatcher = options.dispatcher === undefined;

  async function callOnce(
    method: "GET" | "POST",
    path: string,
    authorization: string,
    body?: unknown,
  ): Promise<Answer> {
    const what = `${method} ${path}`;
    let response: Dispatcher.ResponseData;
    try {
      // undici's request() never follows a redirect (that takes its redirect interceptor, not composed
      // here), so GitHub's 301/307 for a renamed or transferred repository reaches `githubFault`, which
      // refuses it: following it would act on a repository under a name the scope lists never saw.
      response = await request(`${apiUrl}${path}`, {
        method,
        dispatcher,
        signal: AbortSignal.timeout(timeoutMs),
        headers: {
          accept: "application/vnd.github+json",
          authorization,
          "user-agent": userAgent,
          "x-github-api-version": apiVersion,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      throw transportFault(error, what);
    }
    let text: string;
    try {
      text = await readLimited(response.body);
    } catch (error) {
      throw transportFault(error, what);
    }
    let json: unknown;
    if (response.statusCode < 300) {
      try {
        json = JSON.parse(text);
      } catch {
        throw new TollgateError(
          "TG_GITHUB_UNAVAILABLE",
          `${what}: GitHub answered ${response.statusCode} with a body that is not JSON`,
        );
      }
    }
    return { status: response.statusCode, headers: response.headers, json };
  }

  /** One call, retried while the failure is transient and the call may be repeated. */
  async function call(
    method: "GET" | "POST",
    path: string,
    authorization: () => Promise<string>,
    settings: { body?: unknown; idempotent: boolean },
  ): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      // Outside the retry: an App's installation-token exchange already retries its own transient
      // failures, so retrying it here too would multiply the attempts (3 × 3 exchanges, and as many
      // timeouts, before the caller heard back).
      const header = await authorization();
      try {
        const answer = await callOnce(method, path, header, settings.body);
        if (answer.status >= 300)
          throw githubFault(answer.status, answer.headers, `${method} ${path}`, clock());
        return answer;
      } catch (error) {
        const repeatable = settings.idempotent ? isTransient(error) : neverSent(error);
        if (!repeatable || attempt >= maxRetries) throw error;
        const delay = backoff(attempt, retryBaseMs);
        logger.warn(
          {
            call: `${method} ${path}`,
            attempt: attempt + 1,
            delay_ms: delay,
            error: (error as Error).message,
          },
          "GitHub call failed; retrying",
        );
        await sleep(delay);
      }
    }
  }

  const app =
    credential.kind === "app" ? createAppAuthorization({ credential, clock, redactor, call }) : undefined;

  async function authorizationFor(scope: Scope): Promise<string> {
    if (credential.kind === "pat") return `Bearer ${credential.token}`;
    return app!.authorizationFor(scope);
  }

  async function scoped<T>(scope: Scope, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      // A 404 with a looked-up installation may mean the App was uninstalled there; look it up again next time.
      if (app !== undefined && error instanceof TollgateError && error.code === "TG_GITHUB_NOT_FOUND")
        app.forget(scope);
      throw error;
    }
  }

  return {
    createRunnerToken(scope, kind) {
      const path = `${runnersPath(scope)}/${kind === "registration" ? "registration-token" : "remove-token"}`;
      return scoped(scope, async () => {
        // Minting a registration or removal token twice is harmless (GitHub hands out an equivalent one),
        // so the call counts as idempotent for retries.
        const answer = await call("POST", path, () => authorizationFor(scope), { idempotent: true });
        const body = answer.json as { token?: unknown; expires_at?: unknown } | null;
        const token = body?.token;
        const expiresAt = body?.expires_at;
        const expiresAtMs = typeof expiresAt === "string" ? Date.parse(expiresAt) : Number.NaN;
        if (
          typeof token !== "string" ||
          token.length === 0 ||
          token.length > 1024 ||
          Number.isNaN(expiresAtMs)
        ) {
          throw new TollgateError(
            "TG_GITHUB_UNAVAILABLE",
            `POST ${path}: the answer has no token or expires_at`,
          );
        }
        redactor.register(token);
        return { token, expires_at: expiresAt as string, expiresAtMs };
      });
    },

    generateJitConfig(scope, settings) {
      const path = `${runnersPath(scope)}/generate-jitconfig`;
      return scoped(scope, async () => {
        const answer = await call("POST", path, () => authorizationFor(scope), {
          idempotent: false,
          body: {
            name: settings.name,
            runner_group_id: settings.runnerGroupId,
            labels: settings.labels,
            work_folder: settings.workFolder,
          },
        });
        const body = answer.json as { runner?: unknown; encoded_jit_config?: unknown } | null;
        const runner = body?.runner;
        const encoded = body?.encoded_jit_config;
        if (
          typeof runner !== "object" ||
          runner === null ||
          Array.isArray(runner) ||
          typeof encoded !== "string" ||
          encoded.length === 0
        ) {
          throw new TollgateError(
            "TG_GITHUB_UNAVAILABLE",
            `POST ${path}: the answer has no runner or encoded_jit_config`,
          );
        }
        return { runner: runner as Record<string, unknown>, encoded_jit_config: encoded };
      });
    },

    async checkCredential() {
      if (credential.kind === "pat") {
        await call("GET", "/rate_limit", async () => `Bearer ${credential.token}`, { idempotent: true });
        return;
      }
      await call("GET", "/app", app!.appJwt, { idempotent: true });
      if (credential.installationId !== undefined) await app!.installationToken(credential.installationId);
    },

    async close() {
      if (ownDispatcher) await dispatcher.close();
    },
  };
}

/**
 * The dispatcher of every GitHub call: connection and response timeouts bounded by the call's deadline,
 * and the proxy variables honoured (github-runner-token-proxy uses Go's `ProxyFromEnvironment`).
 */
function createDispatcher(timeoutMs: number, env: NodeJS.ProcessEnv): Dispatcher {
  const timeouts = {
    connect: { timeout: Math.min(timeoutMs, 10_000) },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  };
  const httpsProxy = env.HTTPS_PROXY ?? env.https_proxy;
  const httpProxy = env.HTTP_PROXY ?? env.http_proxy;
  if ((httpsProxy ?? "") === "" && (httpProxy ?? "") === "") return new Agent(timeouts);
  return new EnvHttpProxyAgent({
    ...timeouts,
    ...(httpsProxy ? { httpsProxy } : {}),
    ...(httpProxy ? { httpProxy } : {}),
    noProxy: env.NO_PROXY ?? env.no_proxy ?? "",
  });
}

async function readLimited(body: Dispatcher.ResponseData["body"]): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > maxResponseBytes) {
      body.destroy();
      throw new TollgateError("TG_GITHUB_UNAVAILABLE", `GitHub's answer exceeds ${maxResponseBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
