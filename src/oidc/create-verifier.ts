import {
  type CryptoKey,
  decodeJwt,
  decodeProtectedHeader,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  type JWTVerifyResult,
  errors as joseErrors,
  jwtVerify,
  type ProtectedHeaderParameters,
} from "jose";
import { TollgateError } from "../errors/index.js";
import { systemClock } from "../lib/clock.js";
import { sha256Hex } from "../lib/sha256.js";
import { isForbiddenAlgorithm, validateAlgorithms } from "./algorithms.js";
import { checkIssuerUrl, checkKeySetUrl } from "./issuer-presets.js";
import { createIssuerKeyStore, type IssuerKeyStore, type LoadedKeySet } from "./key-store.js";
import { type CachedVerification, createVerifiedTokenCache } from "./token-cache.js";
import { quote, type TokenErrorContext, toTokenError } from "./token-errors.js";
import type {
  IssuerSettings,
  TokenVerifier,
  VerifiedToken,
  VerifierDependencies,
  VerifierSettings,
} from "./types.js";

/**
 * Seams for tests only: `jwtVerify` lets a test count signature checks (and so prove that a cache hit
 * runs none). Production code passes nothing here.
 */
export interface VerifierTestHooks {
  jwtVerify?: typeof jwtVerify;
}

// Header parameters that carry or point to a key. A verifier that honoured them would let the token
// choose its own key; we only ever use the issuer's published key set. `crit` is refused because we
// implement no critical extension (and `b64: false` payloads need it).
const refusedHeaderParameters = ["jwk", "jku", "x5u", "x5c", "crit"] as const;

interface Issuer {
  readonly settings: IssuerSettings;
  readonly keys: IssuerKeyStore;
  readonly options: JWTVerifyOptions;
}

/**
 * Creates the verifier of raw OIDC tokens for the configured issuers. The issuer is chosen by the token's
 * unverified `iss` compared as an exact string with the configured ones (a token never makes us fetch
 * anything from a URL of its choosing), then the token is verified with jose against that issuer's cached
 * key set, its algorithm allow-list, audiences, and time claims. Verified tokens are cached by SHA-256
 * until they expire, so a reused token costs one hash instead of a signature check.
 *
 * Throws `TG_CONFIG_INVALID` at creation when an issuer's settings are unsafe (http issuer, HMAC or `none`
 * algorithm, no audience).
 *
 * @example
 * const verifier = createTokenVerifier(config.issuers, config.verifier);
 * await verifier.start();
 * const token = await verifier.verify(rawToken); // throws TollgateError("TG_TOKEN_…")
 */
export function createTokenVerifier(
  issuers: readonly IssuerSettings[],
  settings: VerifierSettings,
  deps: VerifierDependencies & VerifierTestHooks = {},
): TokenVerifier {
  const clock = deps.clock ?? systemClock;
  const verifyJwt = deps.jwtVerify ?? jwtVerify;
  const fetchOptions = {
    fetch: deps.fetch ?? globalThis.fetch,
    timeoutMs: settings.fetchTimeoutMs,
    maxBytes: settings.maxDocumentBytes,
  };
  const byIss = new Map<string, Issuer>();
  for (const settingsOfIssuer of issuers) {
    assertUsableIssuer(settingsOfIssuer, byIss);
    byIss.set(settingsOfIssuer.issuer, {
      settings: settingsOfIssuer,
      keys: createIssuerKeyStore(settingsOfIssuer, settings, clock, fetchOptions),
      options: Object.freeze({
        issuer: settingsOfIssuer.issuer,
        audience: [...settingsOfIssuer.audiences],
        algorithms: [...settingsOfIssuer.algorithms],
        requiredClaims: ["exp"],
        clockTolerance: settingsOfIssuer.clockSkewMs / 1000,
        ...(settingsOfIssuer.maxTokenAgeMs === undefined
          ? {}
          : { maxTokenAge: settingsOfIssuer.maxTokenAgeMs / 1000 }),
      }),
    });
  }
  const stores = [...byIss.values()].map((issuer) => issuer.keys);
  const cache = createVerifiedTokenCache(settings.tokenCacheSize);
  // The last token each connection presented, with its cache entry. Keyed weakly by the connection, so an
  // entry goes with its socket; a verifier replaced by a reload takes its memos with it.
  const lastTokenOf = new WeakMap<
    object,
    { readonly rawToken: string; readonly entry: CachedVerification }
  >();
  // Parallel jobs often present the same new token at once: verify it once and share the result.
  const pending = new Map<string, Promise<VerifiedToken>>();

  async function verifyUncached(rawToken: string, tokenSha256: string): Promise<VerifiedToken> {
    let header: ProtectedHeaderParameters;
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(rawToken);
      claims = decodeJwt(rawToken);
    } catch (cause) {
      throw new TollgateError(
        "TG_TOKEN_MALFORMED",
        "token is not a compact JWS with JSON header and claims",
        {
          cause,
        },
      );
    }
    const alg = header.alg;
    if (typeof alg !== "string" || alg.length === 0) {
      throw new TollgateError("TG_TOKEN_MALFORMED", "token header has no alg");
    }
    if (isForbiddenAlgorithm(alg)) {
      throw new TollgateError("TG_TOKEN_ALGORITHM_FORBIDDEN", `alg ${quote(alg)} is never accepted`);
    }
    for (const name of refusedHeaderParameters) {
      if (Object.hasOwn(header, name)) {
        throw new TollgateError("TG_TOKEN_INVALID", `token header parameter ${quote(name)} is refused`);
      }
    }
    if (typeof claims.iss !== "string") {
      throw new TollgateError("TG_TOKEN_ISSUER_UNKNOWN", `token iss ${quote(claims.iss)} is not a string`);
    }
    const issuer = byIss.get(claims.iss);
    if (issuer === undefined) {
      throw new TollgateError(
        "TG_TOKEN_ISSUER_UNKNOWN",
        `token iss ${quote(claims.iss)} is not a configured issuer`,
      );
    }
    const { settings: issuerSettings } = issuer;
    if (!issuerSettings.algorithms.includes(alg)) {
      throw new TollgateError(
        "TG_TOKEN_ALGORITHM_FORBIDDEN",
        `alg ${quote(alg)} is not in the allow-list ${quote(issuerSettings.algorithms)} of issuer ${issuerSettings.name}`,
      );
    }
    const context: TokenErrorContext = {
      issuerName: issuerSettings.name,
      alg,
      kid: typeof header.kid === "string" ? header.kid : undefined,
      audiences: issuerSettings.audiences,
      claims,
    };

    const keySet = await issuer.keys.currentKeys();
    const now = clock();
    let result: JWTVerifyResult;
    try {
      result = await verifyWithKeys(rawToken, issuer, keySet, {
        ...issuer.options,
        currentDate: new Date(now),
      });
    } catch (error) {
      throw toTokenError(error, context);
    }
    const payload = result.payload;
    // jose checks a future `iat` only together with maxTokenAge; a token minted in the future is as
    // suspicious as one with a future `nbf`.
    if (typeof payload.iat === "number" && payload.iat * 1000 > now + issuerSettings.clockSkewMs) {
      throw toTokenError(
        new joseErrors.JWTClaimValidationFailed('"iat" claim in the future', payload, "iat", "check_failed"),
        context,
      );
    }
    const expiresAtMs = (payload.exp as number) * 1000;
    const validUntilMs =
      issuerSettings.maxTokenAgeMs === undefined || typeof payload.iat !== "number"
        ? expiresAtMs
        : Math.min(expiresAtMs, payload.iat * 1000 + issuerSettings.maxTokenAgeMs);
    const verified: VerifiedToken = Object.freeze({
      issuer: issuerSettings.name,
      claims: deepFreeze(payload as Record<string, unknown>),
      tokenSha256,
      expiresAtMs,
      cached: false,
    });
    cache.set(verified, validUntilMs, now);
    return verified;
  }

  async function verifyWithKeys(
    rawToken: string,
    issuer: Issuer,
    keySet: LoadedKeySet,
    options: JWTVerifyOptions,
  ): Promise<JWTVerifyResult> {
    const getKey: JWTVerifyGetKey = async (header, token) => {
      try {
        return await keySet.resolve(header, token);
      } catch (error) {
        if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
        // Keys rotate: one refetch per cooldown, shared by concurrent misses.
        const newer = await issuer.keys.keysAfterUnknownKid(keySet);
        if (newer === undefined) throw error;
        return newer.resolve(header, token);
      }
    };
    try {
      return await verifyJwt(rawToken, getKey, options);
    } catch (error) {
      // Several keys match (no kid, or a reused kid): jose hands us the candidates to try one by one.
      if (!(error instanceof joseErrors.JWKSMultipleMatchingKeys)) throw error;
      let lastError: unknown = new joseErrors.JWSSignatureVerificationFailed();
      for await (const key of error as joseErrors.JWKSMultipleMatchingKeys & AsyncIterable<CryptoKey>) {
        try {
          return await verifyJwt(rawToken, key, options);
        } catch (attempt) {
          lastError = attempt;
          if (!(attempt instanceof joseErrors.JWSSignatureVerificationFailed)) break;
        }
      }
      throw lastError;
    }
  }

  return {
    async verify(rawToken, connection) {
      if (connection !== undefined) {
        // The exact same bytes as last time on this connection, still within their validity: the same
        // answer as the cache would give, without hashing 1–2 KB of token.
        const last = lastTokenOf.get(connection);
        if (last !== undefined && last.rawToken === rawToken && clock() < last.entry.validUntilMs) {
          return last.entry.hit;
        }
      }
      if (typeof rawToken !== "string" || rawToken.length === 0) {
        throw new TollgateError("TG_TOKEN_MALFORMED", "token is empty");
      }
      // UTF-8 never takes fewer bytes than UTF-16 code units, so the length test alone rejects huge input
      // before it is even measured.
      if (rawToken.length > settings.maxTokenBytes || Buffer.byteLength(rawToken) > settings.maxTokenBytes) {
        throw new TollgateError(
          "TG_TOKEN_TOO_LARGE",
          `token exceeds the ${settings.maxTokenBytes}-byte limit`,
        );
      }
      const tokenSha256 = sha256Hex(rawToken);
      const entry = cache.entry(tokenSha256, clock());
      if (entry !== undefined) {
        if (connection !== undefined) lastTokenOf.set(connection, { rawToken, entry });
        return entry.hit;
      }
      const shared = pending.get(tokenSha256);
      if (shared !== undefined) return shared;
      const verification = verifyUncached(rawToken, tokenSha256).finally(() => pending.delete(tokenSha256));
      pending.set(tokenSha256, verification);
      return verification;
    },

    async start() {
      await Promise.all(stores.map((store) => store.start()));
    },

    isReady: () => stores.every((store) => store.isReady()),

    status: () => stores.map((store) => store.status()),

    close() {
      for (const store of stores) store.close();
    },
  };
}

function assertUsableIssuer(issuer: IssuerSettings, seen: ReadonlyMap<string, Issuer>): void {
  const problems: string[] = [];
  const urlProblem = checkIssuerUrl(issuer.issuer);
  if (urlProblem !== undefined) problems.push(urlProblem);
  if (issuer.jwksUri !== undefined) {
    const jwksProblem = checkKeySetUrl(issuer.jwksUri);
    if (jwksProblem !== undefined) problems.push(jwksProblem);
  }
  const algorithmProblem = validateAlgorithms(issuer.algorithms);
  if (algorithmProblem !== undefined) problems.push(algorithmProblem);
  if (
    issuer.audiences.length === 0 ||
    issuer.audiences.some((audience) => typeof audience !== "string" || audience === "")
  ) {
    problems.push("audiences must list at least one non-empty audience");
  }
  if (!(issuer.clockSkewMs >= 0)) problems.push("clock skew must be zero or more");
  if (issuer.maxTokenAgeMs !== undefined && !(issuer.maxTokenAgeMs > 0))
    problems.push("max token age must be positive");
  if (seen.has(issuer.issuer)) problems.push(`issuer ${issuer.issuer} is configured twice`);
  if (problems.length > 0) {
    throw new TollgateError("TG_CONFIG_INVALID", `issuer ${issuer.name}: ${problems.join("; ")}`);
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}
