import { createLocalJWKSet, type JSONWebKeySet, type JWK } from "jose";
import { TollgateError } from "../errors/index.js";
import type { Clock } from "../lib/clock.js";
import { publishKeySetLoad } from "./diagnostics.js";
import { discoverKeySetUrl } from "./discovery.js";
import { type DocumentFetchOptions, fetchJsonDocument } from "./fetch-json-document.js";
import type { IssuerSettings, VerifierSettings } from "./types.js";

/** One loaded key set of an issuer. Replaced as a whole on every successful load, never mutated. */
export interface LoadedKeySet {
  /** jose key resolver over exactly these keys. */
  readonly resolve: ReturnType<typeof createLocalJWKSet>;
  readonly loadedAtMs: number;
  readonly keyCount: number;
}

/** The key cache of one issuer: loading, background refresh, unknown-`kid` refetch and stale tolerance. */
export interface IssuerKeyStore {
  /** The key set to verify with now; throws `TG_ISSUER_UNAVAILABLE` when there is none usable. */
  currentKeys(): Promise<LoadedKeySet>;
  /**
   * Called when a token's `kid` is not in `tried`. Returns a newer key set (loaded meanwhile, or fetched
   * now when the cooldown allows), or `undefined` when there is nothing newer to try.
   */
  keysAfterUnknownKid(tried: LoadedKeySet): Promise<LoadedKeySet | undefined>;
  /** First load plus the background refresh timer. Never rejects. */
  start(): Promise<void>;
  isReady(): boolean;
  status(): { issuer: string; ready: boolean; keysLoadedAtMs?: number; lastError?: string };
  close(): void;
}

type LoadReason = "initial" | "refresh" | "unknown-kid" | "on-demand";

// Members that only a private or symmetric JWK has: such a key in a published key set is a mistake at
// best, and must never become a verification key.
const privateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"];

/**
 * Creates the key store of one issuer. Timers are unref'd so an idle store never keeps the process alive;
 * the injected clock decides ages and cooldowns, so a test clock can drive refreshes deterministically.
 */
export function createIssuerKeyStore(
  issuer: IssuerSettings,
  settings: VerifierSettings,
  clock: Clock,
  fetchOptions: DocumentFetchOptions,
): IssuerKeyStore {
  let keys: LoadedKeySet | undefined;
  let lastError: string | undefined;
  let inFlight: Promise<void> | undefined;
  let lastAttemptAtMs = Number.NEGATIVE_INFINITY;
  // Request-driven loads (unknown kid, or no usable keys) share one cooldown, so hostile traffic can make
  // us fetch at most once per `unknownKidCooldownMs`, whatever it sends.
  let lastRequestDrivenAtMs = Number.NEGATIVE_INFINITY;
  let discoveredJwksUri: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let started: Promise<void> | undefined;
  let closed = false;
  // Closing aborts a fetch under way, so a stopping gateway does not wait for a slow issuer.
  const lifetime = new AbortController();
  const fetchWithLifetime: DocumentFetchOptions = { ...fetchOptions, signal: lifetime.signal };

  const usable = (now: number): boolean =>
    keys !== undefined && now - keys.loadedAtMs <= settings.staleKeysMaxAgeMs;

  function load(reason: LoadReason): Promise<void> {
    if (inFlight) return inFlight;
    const begunAtMs = clock();
    lastAttemptAtMs = begunAtMs;
    inFlight = (async () => {
      try {
        const jwksUri =
          issuer.jwksUri ?? discoveredJwksUri ?? (await discoverKeySetUrl(issuer.issuer, fetchWithLifetime));
        let document: Record<string, unknown>;
        try {
          document = await fetchJsonDocument(jwksUri, fetchWithLifetime);
        } catch (error) {
          // The issuer may have moved its keys: discover again next time.
          discoveredJwksUri = undefined;
          throw error;
        }
        if (issuer.jwksUri === undefined) discoveredJwksUri = jwksUri;
        if (closed) return;
        const keySet = signingKeys(document, jwksUri);
        keys = Object.freeze({
          resolve: createLocalJWKSet(keySet),
          loadedAtMs: clock(),
          keyCount: keySet.keys.length,
        });
        lastError = undefined;
        publishKeySetLoad({
          issuer: issuer.name,
          reason,
          ok: true,
          keyCount: keySet.keys.length,
          durationMs: clock() - begunAtMs,
        });
      } catch (error) {
        if (closed) return;
        lastError = error instanceof Error ? error.message : String(error);
        publishKeySetLoad({
          issuer: issuer.name,
          reason,
          ok: false,
          error: lastError,
          durationMs: clock() - begunAtMs,
        });
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  }

  function unavailable(): TollgateError {
    const detail = lastError === undefined ? "no keys loaded yet" : lastError;
    const stale =
      keys === undefined ? "" : ` (last good keys loaded at ${new Date(keys.loadedAtMs).toISOString()})`;
    return new TollgateError(
      "TG_ISSUER_UNAVAILABLE",
      `keys of issuer ${issuer.name} are unavailable: ${detail}${stale}`,
    );
  }

  function scheduleRefresh(): void {
    if (closed) return;
    // After a failure retry sooner than the normal interval, so /readyz recovers without traffic.
    const delay =
      lastError === undefined
        ? settings.refreshIntervalMs
        : Math.min(settings.refreshIntervalMs, Math.max(settings.unknownKidCooldownMs, 1_000));
    timer = setTimeout(() => {
      void load("refresh").then(scheduleRefresh);
    }, delay);
    timer.unref();
  }

  return {
    async currentKeys() {
      const now = clock();
      if (keys !== undefined && usable(now)) {
        // A refresh is overdue when the timer could not run (suspended host, or a test clock): start one in
        // the background and keep serving the keys we have.
        if (
          now - keys.loadedAtMs >= settings.refreshIntervalMs &&
          now - lastAttemptAtMs >= settings.unknownKidCooldownMs
        ) {
          void load("refresh");
        }
        return keys;
      }
      if (inFlight === undefined && now - lastRequestDrivenAtMs < settings.unknownKidCooldownMs)
        throw unavailable();
      // Joining a fetch already under way counts too: the next request-driven fetch waits a full cooldown.
      lastRequestDrivenAtMs = now;
      await (inFlight ?? load("on-demand"));
      if (keys !== undefined && usable(clock())) return keys;
      throw unavailable();
    },

    async keysAfterUnknownKid(tried) {
      if (keys !== tried && keys !== undefined && usable(clock())) return keys;
      const now = clock();
      if (inFlight === undefined && now - lastRequestDrivenAtMs < settings.unknownKidCooldownMs)
        return undefined;
      lastRequestDrivenAtMs = now;
      await (inFlight ?? load("unknown-kid"));
      return keys !== tried && keys !== undefined && usable(clock()) ? keys : undefined;
    },

    start() {
      started ??= load("initial").then(scheduleRefresh);
      return started;
    },

    isReady: () => usable(clock()),

    status() {
      return {
        issuer: issuer.name,
        ready: usable(clock()),
        ...(keys === undefined ? {} : { keysLoadedAtMs: keys.loadedAtMs }),
        ...(lastError === undefined ? {} : { lastError }),
      };
    },

    close() {
      closed = true;
      lifetime.abort();
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

/** Keeps the public signing keys of a fetched JWKS; fails when none is left. */
function signingKeys(document: Record<string, unknown>, jwksUri: string): JSONWebKeySet {
  const fail = (reason: string) =>
    new TollgateError("TG_ISSUER_UNAVAILABLE", `key set at ${jwksUri} ${reason}`);
  if (!Array.isArray(document.keys)) throw fail("has no keys array");
  const keys = (document.keys as unknown[]).filter((candidate): candidate is JWK => {
    if (typeof candidate !== "object" || candidate === null || Array.isArray(candidate)) return false;
    const jwk = candidate as Record<string, unknown>;
    if (typeof jwk.kty !== "string" || jwk.kty === "oct") return false;
    if (jwk.use !== undefined && jwk.use !== "sig") return false;
    return !privateMembers.some((member) => Object.hasOwn(jwk, member));
  });
  if (keys.length === 0) throw fail("has no public signing keys");
  return { keys };
}
