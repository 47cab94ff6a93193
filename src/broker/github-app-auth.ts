import { createPrivateKey } from "node:crypto";
import { SignJWT } from "jose";
import type { Redactor } from "../audit/types.js";
import { TollgateError } from "../errors/index.js";
import type { Clock } from "../lib/clock.js";
import { createSingleFlight } from "../store/index.js";
import type { BrokerCredential } from "./credentials.js";
import type { ResponseHeaders } from "./github-faults.js";
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
  /** Drives the caches (installation tokens, installation lookups). */
  readonly clock: Clock;
  readonly redactor: Redactor;
  /** The retrying client: every GitHub call of the App goes through it (no redirect is followed). */
  readonly call: GitHubCall;
}

/**
 * A GitHub App's authorization for the broker's calls: the App JWT is signed with `jose` and exchanged
 * for installation tokens through the broker's own retrying client, and the tokens are cached in this
 * process only (they are the privileged credential) until five minutes before they expire; when no
 * installation id is configured, the installation of each scope's owner is looked up once and cached.
 * (It used `@octokit/auth-app`, whose private cache format and fetch had to be overridden to get
 * these; about forty lines here do it with public API.)
 *
 * @example
 * const app = createAppAuthorization({ credential, clock, redactor, call });
 * const header = await app.authorizationFor(scope); // "Bearer ghs_…"
 */
export function createAppAuthorization(options: AppAuthorizationOptions) {
  const { credential: appCredential, clock, redactor, call } = options;
  const signAppJwt = createAppJwtSigner(appCredential.appId, appCredential.privateKey);
  const installationTokens = new Map<number, { header: string; expiresAtMs: number }>();
  const exchanges = createSingleFlight();
  const lookups = createSingleFlight();
  const installationByOwner = new Map<string, { id: number; expiresAtMs: number }>();

  async function appJwt(): Promise<string> {
    const token = await signAppJwt();
    redactor.register(token);
    return `Bearer ${token}`;
  }

  /**
   * An installation token (cached until five minutes before `expires_at`, by the injected clock), from
   * `POST /app/installations/{id}/access_tokens` through the retrying client: transient failures are
   * retried there, and concurrent misses share one exchange.
   */
  async function installationToken(installationId: number): Promise<string> {
    const cached = installationTokens.get(installationId);
    if (cached !== undefined && cached.expiresAtMs - installationTokenMarginMs > clock())
      return cached.header;
    return exchanges.run(String(installationId), async () => {
      const path = `/app/installations/${installationId}/access_tokens`;
      let answer: Answer;
      try {
        answer = await call("POST", path, appJwt, { idempotent: true });
      } catch (error) {
        if (
          error instanceof TollgateError &&
          error.code === "TG_GITHUB_NOT_FOUND" &&
          appCredential.installationId !== undefined
        ) {
          // The configured installation does not exist (any more): no scope can work, so it is the
          // credential that is wrong, not the caller's scope.
          throw new TollgateError(
            "TG_GITHUB_CREDENTIAL_REJECTED",
            `${error.message}; check GITHUB_APP_INSTALLATION_ID`,
          );
        }
        throw error;
      }
      const body = answer.json as { token?: unknown; expires_at?: unknown } | null;
      const expiresAtMs = typeof body?.expires_at === "string" ? Date.parse(body.expires_at) : Number.NaN;
      if (typeof body?.token !== "string" || body.token.length === 0 || Number.isNaN(expiresAtMs)) {
        throw new TollgateError(
          "TG_GITHUB_UNAVAILABLE",
          `POST ${path}: the answer has no token or expires_at`,
        );
      }
      redactor.register(body.token);
      const header = `Bearer ${body.token}`;
      installationTokens.set(installationId, { header, expiresAtMs });
      return header;
    });
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

/** GitHub accepts App JWTs that live at most ten minutes; `iat` is set a minute back for clock drift. */
const appJwtBackdateSeconds = 60;
const appJwtLifetimeSeconds = 9 * 60;
/** A signed App JWT is reused until this long before it expires. */
const appJwtReuseMarginMs = 60_000;

/**
 * Signs the App's JWT (RS256, `iss` = the App id or client id), as GitHub documents it for
 * authenticating as an App, and reuses it until a minute before it expires. The times are the system
 * clock's, not an injected one: GitHub checks them against its own clock.
 */
function createAppJwtSigner(appId: string, privateKeyPem: string): () => Promise<string> {
  // PKCS#1 (what GitHub hands out) and PKCS#8 alike; credentials.ts has already proven the key parses.
  const key = createPrivateKey(privateKeyPem);
  let current: { jwt: string; expiresAtMs: number } | undefined;
  return async () => {
    const now = Date.now();
    if (current !== undefined && current.expiresAtMs - appJwtReuseMarginMs > now) return current.jwt;
    const issuedAt = Math.floor(now / 1000) - appJwtBackdateSeconds;
    const expiresAt = issuedAt + appJwtBackdateSeconds + appJwtLifetimeSeconds;
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: "RS256", typ: "JWT" })
      .setIssuer(appId)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(key);
    current = { jwt, expiresAtMs: expiresAt * 1000 };
    return jwt;
  };
}
