import type { IncomingMessage, ServerResponse } from "node:http";
import type { Dispatcher } from "undici";
import type { AuditEvent, AuditEventName } from "../audit/types.js";
import { isTollgateError, TollgateError } from "../errors/index.js";
// The leaf module, not server/index.js: server/ imports this folder for its feature list.
import { admitBody } from "../lib/expect-continue.js";
import { sha256Hex } from "../lib/sha256.js";
import type { VerifiedToken } from "../oidc/types.js";
import { type Authentication, auditAuthentication, authenticate } from "../pipeline/authenticate.js";
import { type ExtractedToken, extractToken } from "../pipeline/extract-token.js";
import type {
  FeatureContext,
  FeatureDependencies,
  FeatureFactory,
  GatewayFeature,
} from "../pipeline/feature.js";
import { answeredFor, auditFailure } from "../pipeline/outcome.js";
import { sendJson } from "../pipeline/send-json.js";
import { createSingleFlight, createStateStore, redisUrlPassword } from "../store/index.js";
import { readBrokerCredential } from "./credentials.js";
import { createGitHubApi } from "./github-api.js";
import { evaluateGrants } from "./grants.js";
import { bodyTimeoutMs, parseBrokerBody, readRequestBody } from "./request-body.js";
import { createRunnerTokenCache } from "./runner-token-cache.js";
import { parseScope } from "./scope.js";
import { evaluateScopeRules } from "./scope-rules.js";
import type { BrokerAction, CompiledBroker, RunnerTokenKind } from "./types.js";

/** The broker's endpoints, as github-runner-token-proxy serves them, plus JIT runner configs. */
export const brokerPaths: Readonly<Record<string, BrokerAction>> = Object.freeze({
  "/register": "register",
  "/remove": "remove",
  "/jitconfig": "jitconfig",
});

const auditEventOf: Readonly<Record<BrokerAction, AuditEventName>> = {
  register: "runner.registration_token",
  remove: "runner.remove_token",
  jitconfig: "runner.jitconfig",
};

const tokenKindOf: Readonly<Record<"register" | "remove", RunnerTokenKind>> = {
  register: "registration",
  remove: "remove",
};

/** Tuning and test seams of the broker feature; the defaults are what `serve` runs. */
export interface BrokerFeatureOptions {
  /** Retries of idempotent GitHub calls. Default 2. */
  maxRetries?: number;
  /** First retry backoff (ms). Default 250. */
  retryBaseMs?: number;
  /** A cached token is refreshed this long before it expires. Default 5 min. */
  freshMarginMs?: number;
  /** First delay before the credential is checked again after a failed check (ms); doubles up to 60 s. Default 5 s. */
  recheckMs?: number;
  /** Longest a request body may take to arrive, whole (ms). Default 10 s ({@link bodyTimeoutMs}). */
  bodyTimeoutMs?: number;
  dispatcher?: Dispatcher;
}

/** Readiness of the broker's credential. */
type CredentialState = "checking" | "ok" | "rejected" | "unreachable";

/**
 * Builds the broker feature factory. The broker answers `POST /register`, `POST /remove` (the
 * github-runner-token-proxy surface, plus `expires_at`) and `POST /jitconfig` whenever a `broker`
 * section (or, with no configuration file, the reference project's environment) is configured.
 *
 * Per request: method → caller's token (with `authorization: oidc`) → body → scope validation → global
 * scope lists → grants → cache or GitHub → one audit event, for success and failure alike.
 *
 * @example
 * startGateway(config, { features: [createBrokerFeatureFactory({ retryBaseMs: 10 })] });
 */
export function createBrokerFeatureFactory(
  options: BrokerFeatureOptions = {},
): FeatureFactory<BrokerFeatureConfig> {
  return async (config, dependencies) => {
    const broker = config.compiledBroker;
    if (broker === undefined) return undefined;
    return buildBroker(broker, config.store, dependencies, options);
  };
}

/** The broker feature with default settings, as listed in the server's built-in features. */
export const createBrokerFeature: FeatureFactory<BrokerFeatureConfig> = createBrokerFeatureFactory();

/** What the broker reads of the compiled configuration: its own section and the shared store. */
export interface BrokerFeatureConfig {
  /** Present exactly when a `broker` section (or the environment-only mode) configures the broker. */
  readonly compiledBroker?: CompiledBroker;
  readonly store: StoreSettings;
}

/** `store` of the configuration: where state shared between instances lives. */
export interface StoreSettings {
  readonly kind: "memory" | "redis";
  readonly url?: string;
}

async function buildBroker(
  broker: CompiledBroker,
  storeSettings: StoreSettings,
  dependencies: FeatureDependencies,
  options: BrokerFeatureOptions,
): Promise<GatewayFeature> {
  const { logger, redactor, clock, controls } = dependencies;
  const reading = await readBrokerCredential(dependencies.env);
  for (const secret of reading.secrets) redactor.register(secret);
  for (const warning of reading.warnings) logger.warn({ component: "broker" }, warning);
  const { credential } = reading;
  if (broker.scopes.allow.length === 0) {
    logger.warn(
      { component: "broker", list: broker.scopes.allowOrigin },
      "no scope is allowed (nothing is allowed by default), so the broker refuses every request; set ALLOWED_SCOPES or broker.allowed_scopes, e.g. octo-org;match:octo-org/.*",
    );
  }
  if (credential.kind === "app" && credential.installationId === undefined) {
    const enterprise = broker.scopes.allow.find((pattern) =>
      pattern.source.toLowerCase().startsWith("enterprise:"),
    );
    if (enterprise !== undefined) {
      logger.warn(
        { component: "broker", entry: enterprise.source },
        "enterprise scopes need a classic PAT with manage_runners:enterprise; GitHub App installation tokens cannot manage enterprise runners",
      );
    }
  }

  // A Redis password in store.url is a secret like the credential: never in a log line.
  const storePassword = storeSettings.url === undefined ? "" : redisUrlPassword(storeSettings.url);
  if (storePassword !== "") redactor.register(storePassword);
  const store = createStateStore(storeSettings, { clock, logger });
  const api = createGitHubApi({
    apiUrl: broker.apiUrl,
    credential,
    timeoutMs: broker.timeoutMs,
    logger,
    redactor,
    clock,
    env: dependencies.env,
    ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
    ...(options.retryBaseMs === undefined ? {} : { retryBaseMs: options.retryBaseMs }),
    ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
  });
  const cache = createRunnerTokenCache({
    store,
    flights: createSingleFlight(),
    clock,
    logger,
    // The shared store puts `tollgate:` before every key itself.
    keyPrefix: `broker:v1:${sha256Hex(broker.apiUrl).slice(0, 12)}`,
    ...(options.freshMarginMs === undefined ? {} : { freshMarginMs: options.freshMarginMs }),
  });

  let credentialState: CredentialState = "checking";
  let lastError: string | undefined;
  let recheck: NodeJS.Timeout | undefined;
  let failedChecks = 0;
  let closed = false;
  /** Requests being answered now, and who waits for there to be none (a reload retiring this broker). */
  let answering = 0;
  const whenIdle: (() => void)[] = [];
  const recheckBaseMs = options.recheckMs ?? 5_000;

  function noteFailure(error: unknown): void {
    if (!isTollgateError(error)) return;
    if (error.code === "TG_GITHUB_CREDENTIAL_REJECTED") {
      credentialState = "rejected";
      lastError = error.code;
      scheduleCheck();
    }
  }

  function scheduleCheck(): void {
    if (closed || recheck !== undefined) return;
    const delay = Math.min(60_000, recheckBaseMs * 2 ** Math.min(failedChecks, 6));
    recheck = setTimeout(() => {
      recheck = undefined;
      void checkCredential();
    }, delay);
    recheck.unref();
  }

  async function checkCredential(): Promise<void> {
    try {
      await api.checkCredential();
      if (credentialState !== "ok") {
        logger.info(
          { component: "broker", credential: credential.kind, api_url: broker.apiUrl },
          "GitHub credential works",
        );
      }
      credentialState = "ok";
      lastError = undefined;
      failedChecks = 0;
    } catch (error) {
      failedChecks++;
      const code = isTollgateError(error) ? error.code : "TG_INTERNAL";
      credentialState = code === "TG_GITHUB_CREDENTIAL_REJECTED" ? "rejected" : "unreachable";
      lastError = code;
      logger.error(
        { component: "broker", credential: credential.kind, error: code, detail: (error as Error).message },
        "GitHub credential check failed; the broker is not ready",
      );
      scheduleCheck();
    }
  }
  void checkCredential();

  return {
    name: "broker",

    claimsRequest(req) {
      const url = req.url ?? "";
      const end = url.indexOf("?");
      return Object.hasOwn(brokerPaths, end === -1 ? url : url.slice(0, end));
    },

    async handleRequest(req, res, context) {
      answering += 1;
      try {
        await answerRequest(req, res, context);
      } finally {
        answering -= 1;
        if (answering === 0) for (const idle of whenIdle.splice(0)) idle();
      }
    },

    readiness() {
      return {
        ready: credentialState === "ok",
        detail: {
          credential: credential.kind,
          state: credentialState,
          authorization: broker.authorization,
          ...(lastError === undefined ? {} : { error: lastError }),
        },
      };
    },

    async retire() {
      // Requests already here finish with this broker's GitHub pool and store; then both are released.
      if (answering > 0) await new Promise<void>((resolve) => whenIdle.push(resolve));
      await close();
    },

    close,
  };

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    if (recheck !== undefined) clearTimeout(recheck);
    await api.close();
    await store.close();
  }

  /** One broker request, audited whatever its outcome. */
  async function answerRequest(
    req: IncomingMessage,
    res: ServerResponse,
    context: FeatureContext,
  ): Promise<void> {
    const url = req.url ?? "";
    const end = url.indexOf("?");
    const action = brokerPaths[end === -1 ? url : url.slice(0, end)]!;
    const event: AuditEvent = {
      event: auditEventOf[action],
      request_id: context.requestId,
      decision: "deny",
      reason: "",
      client_ip: context.clientIp,
      method: req.method ?? "",
      path: action === "register" ? "/register" : action === "remove" ? "/remove" : "/jitconfig",
    };
    // What serving found out, written into the audit line whatever the outcome (serve never sees it).
    const findings: BrokerFindings = {};
    // Read once: `serve` checks it (with `authorization: oidc`), and the audit line redacts it in any field.
    const presented = extractToken(req.headers, true);
    try {
      const answer = await serve(action, req, res, context, presented, findings);
      auditBrokerFindings(event, findings);
      event.status = answer.status;
      sendJson(res, answer.status, answer.body, {
        "cache-control": "no-store",
        "x-request-id": context.requestId,
      });
    } catch (error) {
      auditBrokerFindings(event, findings);
      auditFailure(event, error, answeredFor(error, context.requestId));
      noteFailure(error);
      throw error;
    } finally {
      event.duration_ms = clock() - context.startedMs;
      // The broker's audited path is fixed text, but the token stays a secret of its line in any field.
      context.auditLog.emit(event, presented?.token);
    }
  }

  async function serve(
    action: BrokerAction,
    req: IncomingMessage,
    res: ServerResponse,
    context: FeatureContext,
    presented: ExtractedToken | undefined,
    findings: BrokerFindings,
  ): Promise<{ status: number; body: unknown }> {
    if (req.method !== "POST") {
      throw new TollgateError("TG_METHOD_NOT_ALLOWED", `method ${req.method} not allowed on the broker`, {
        headers: { allow: "POST" },
      });
    }
    let verified: VerifiedToken | undefined;
    if (broker.authorization === "oidc") {
      if (presented === undefined) throw new TollgateError("TG_TOKEN_MISSING", "no bearer token presented");
      const authentication = await authenticate(
        context.verifier,
        presented.token,
        undefined,
        controls.authFailures,
        context.clientIp,
      );
      findings.authentication = authentication;
      if (!authentication.ok) throw authentication.error;
      verified = authentication.verified;
    }

    // The scope is in the body, so the body is invited once the caller is authenticated (or, in
    // environment-only mode, where scope lists are the only check, at once).
    admitBody(res);
    const body = parseBrokerBody(action, await readRequestBody(req, options.bodyTimeoutMs ?? bodyTimeoutMs));
    const parsed = parseScope(body.scope);
    if (parsed.problem !== undefined) throw new TollgateError("TG_SCOPE_INVALID", parsed.problem);
    const scope = parsed.scope;
    findings.scope = scope.text;

    const scopeDecision = evaluateScopeRules(broker.scopes, scope);
    if (!scopeDecision.allowed)
      throw new TollgateError("TG_SCOPE_DENIED", `${scopeDecision.reason}: ${scopeDecision.detail}`);
    if (verified !== undefined) {
      const identity = { issuer: verified.issuer, claims: verified.claims };
      const grant = evaluateGrants(broker.grants, action, scope, identity);
      if (grant.policy !== undefined) findings.policy = grant.policy;
      if (!grant.allowed)
        throw new TollgateError(
          "TG_POLICY_DENIED",
          `${grant.reason} (action ${action}, scope ${scope.text})`,
        );
      const admitting = broker.grants.find((candidate) => candidate.index === grant.grant);
      if (admitting?.rateLimit !== undefined) {
        const refusal = await controls.rateLimit(admitting.rateLimit, verified.claims, context.clientIp);
        if (refusal !== undefined) {
          findings.limit = admitting.rateLimit.id;
          throw refusal;
        }
      }
      if (admitting?.singleUse !== undefined) {
        const refusal = await controls.useOnce(admitting.singleUse, verified);
        if (refusal !== undefined) {
          findings.limit = "single_use";
          throw refusal;
        }
      }
      findings.allowedBy = `allowed-by-grant[${grant.grant}]`;
    } else {
      findings.allowedBy = "allowed-by-scope-list";
    }

    if (action === "jitconfig") {
      const settings = body.jit!;
      findings.runnerName = settings.name;
      const jit = await api.generateJitConfig(scope, settings);
      noteSuccess();
      return { status: 201, body: { runner: jit.runner, encoded_jit_config: jit.encoded_jit_config } };
    }
    const kind = tokenKindOf[action];
    const answer = await cache.get(kind, scope, () => api.createRunnerToken(scope, kind));
    findings.cacheHit = answer.cached;
    if (!answer.cached) noteSuccess();
    return { status: 200, body: { token: answer.token.token, expires_at: answer.token.expires_at } };
  }

  function noteSuccess(): void {
    // A call that GitHub answered proves the credential, whatever the last check said.
    if (credentialState !== "ok") {
      credentialState = "ok";
      lastError = undefined;
      failedChecks = 0;
    }
  }
}

/**
 * What serving a broker request found out, whatever its outcome, for the audit line: the caller, the
 * scope, the grant's policy, what allowed the request, the runner created and whether the cache answered.
 * `serve` records here; `answerRequest` writes it into the event with {@link auditBrokerFindings}.
 */
interface BrokerFindings {
  authentication?: Authentication;
  scope?: string;
  policy?: string;
  /** Set once the request is allowed: `allowed-by-grant[N]` or `allowed-by-scope-list`. */
  allowedBy?: string;
  runnerName?: string;
  cacheHit?: boolean;
  /** The abuse control that refused: the grant's rate limit (`grant:N`), or `single_use`. */
  limit?: string;
}

function auditBrokerFindings(event: AuditEvent, findings: BrokerFindings): void {
  if (findings.authentication !== undefined) auditAuthentication(event, findings.authentication);
  if (findings.scope !== undefined) event.scope = findings.scope;
  if (findings.policy !== undefined) event.policy = findings.policy;
  if (findings.allowedBy !== undefined) {
    event.decision = "allow";
    event.reason = findings.allowedBy;
  }
  if (findings.runnerName !== undefined) event.runner_name = findings.runnerName;
  if (findings.cacheHit !== undefined) event.cache_hit = findings.cacheHit;
  if (findings.limit !== undefined) event.limit = findings.limit;
}

/** The password of a `redis://user:password@host` URL (decoded), or `""`. */
