import type { Logger } from "pino";
import type { CompiledConfig } from "../config/types.js";
import type { AbuseControls } from "../limits/index.js";
import type { TokenVerifier } from "../oidc/types.js";
import type { FeatureDependencies, GatewayFeature } from "../pipeline/feature.js";
import { createRouteTable, type RouteTable } from "../proxy/index.js";
import type { FeatureFactory } from "./features.js";

/** What a request is served under: swapped as one object, so no request sees half of two configurations. */
export interface ActiveState {
  readonly config: CompiledConfig;
  readonly verifier: TokenVerifier;
  readonly routeTable: RouteTable;
  readonly features: readonly GatewayFeature[];
  /** Rate limits, single use and failed-authentication throttling, counted in the shared store. */
  readonly controls: AbuseControls;
}

/** Abuse controls with the store they count in, which the lifecycle closes when it replaces them. */
export interface OwnedControls {
  readonly controls: AbuseControls;
  close(): Promise<void>;
}

/** What {@link createGatewayLifecycle} builds verifiers and features with. */
export interface LifecycleOptions {
  /** A new, unstarted verifier for a configuration's issuers. */
  readonly createVerifier: (config: CompiledConfig) => TokenVerifier;
  readonly factories: readonly FeatureFactory[];
  /**
   * New abuse controls for a configuration's `store` and `listen.auth_failures` (built again only when
   * those change, so counts kept in memory survive a reload).
   */
  readonly createControls: (config: CompiledConfig) => OwnedControls;
  /** What every feature factory gets, but the verifier and controls (the lifecycle passes its own). */
  readonly dependencies: Omit<FeatureDependencies, "verifier" | "controls">;
  readonly logger: Logger;
}

/**
 * The one owner of what a configuration brings to life and what a reload or a stop takes away: the
 * token verifier, the features (broker, tunnels), the route table and the abuse controls with their
 * store. Requests read {@link active}.
 */
export interface GatewayLifecycle {
  /** The state requests are served under; replaced whole by {@link reload}. */
  readonly active: ActiveState;
  /**
   * Builds what `next` needs — a new verifier only when its issuers or verifier settings changed, and
   * started and ready before anything changes; new features — then swaps it in. Features it replaced are
   * retired once their requests have finished (those without `retire`, tunnels, stay open under their
   * old rules until the stop); a replaced verifier is closed. Refused, and what it built closed, once a
   * stop has begun, or when the new issuers' keys cannot be loaded (the old state stays).
   */
  reload(next: CompiledConfig): Promise<{ verifierReplaced: boolean }>;
  /** The gateway began to stop: reloads from now on are refused. */
  stopping(): void;
  /** After the stop's grace: closes every feature ever served and the verifier. */
  close(): Promise<void>;
}

/**
 * Builds the first state (verifier created, not started: the caller starts it once listening) and the
 * lifecycle that owns it from then on.
 *
 * @example
 * const lifecycle = await createGatewayLifecycle(config, { createVerifier, factories, dependencies, logger });
 * const gateway = createGateway({ lifecycle, auditLog, logger });
 * await lifecycle.reload(nextConfig); // on SIGHUP
 */
export async function createGatewayLifecycle(
  config: CompiledConfig,
  options: LifecycleOptions,
): Promise<GatewayLifecycle> {
  const { logger } = options;
  const buildFeatures = async (
    forConfig: CompiledConfig,
    verifier: TokenVerifier,
    controls: AbuseControls,
  ) => {
    const dependencies = { ...options.dependencies, verifier, controls };
    const built = await Promise.all(options.factories.map((factory) => factory(forConfig, dependencies)));
    return built.filter((feature): feature is GatewayFeature => feature !== undefined);
  };
  const stateOf = (
    forConfig: CompiledConfig,
    verifier: TokenVerifier,
    features: readonly GatewayFeature[],
    controls: AbuseControls,
  ): ActiveState => ({
    config: forConfig,
    verifier,
    routeTable: createRouteTable(forConfig.routes),
    features,
    controls,
  });

  const firstVerifier = options.createVerifier(config);
  let owned = options.createControls(config);
  let active = stateOf(
    config,
    firstVerifier,
    await buildFeatures(config, firstVerifier, owned.controls),
    owned.controls,
  );
  // Features replaced by a reload keep serving what they started (open tunnels) until the stop.
  const everyFeature = new Set<GatewayFeature>(active.features);
  let stopped = false;

  return {
    get active() {
      return active;
    },

    async reload(next) {
      const current = active;
      const sameIssuers =
        JSON.stringify([next.issuers, next.verifier]) ===
        JSON.stringify([current.config.issuers, current.config.verifier]);
      let verifier = current.verifier;
      if (!sameIssuers) {
        verifier = options.createVerifier(next);
        await verifier.start();
        if (!verifier.isReady()) {
          verifier.close();
          throw new Error(
            "the new configuration's issuer keys could not be loaded; keeping the old configuration",
          );
        }
      }
      const sameControls = controlsSignature(next) === controlsSignature(current.config);
      const nextOwned = sameControls ? owned : options.createControls(next);
      const features = await buildFeatures(next, verifier, nextOwned.controls);
      if (stopped) {
        // A reload that finishes after a stop began would add what the stop no longer closes (an open
        // Redis connection alone keeps the process from exiting).
        for (const feature of features) void feature.close?.();
        if (verifier !== current.verifier) verifier.close();
        if (nextOwned !== owned) void nextOwned.close();
        throw new Error("the gateway is stopping; the reload was not applied");
      }
      for (const feature of features) everyFeature.add(feature);
      active = stateOf(next, verifier, features, nextOwned.controls);
      if (nextOwned !== owned) {
        // Requests already past their checks may still be counting in the old store: close it a little later.
        const replaced = owned;
        setTimeout(() => void replaced.close(), replacedStoreGraceMs).unref();
        owned = nextOwned;
      }
      for (const feature of current.features) {
        if (feature.retire === undefined || features.includes(feature)) continue;
        feature.retire().then(
          () => everyFeature.delete(feature),
          (error: unknown) =>
            logger.error({ err: error, feature: feature.name }, "retiring a replaced feature failed"),
        );
      }
      if (verifier !== current.verifier) current.verifier.close();
      return { verifierReplaced: !sameIssuers };
    },

    stopping() {
      stopped = true;
    },

    async close() {
      stopped = true;
      await Promise.all([...everyFeature].map((feature) => feature.close?.()));
      active.verifier.close();
      await owned.close();
    },
  };
}

/** How long a replaced store stays open for requests that were already counting in it. */
const replacedStoreGraceMs = 5_000;

/** What the abuse controls are built from: a change means new controls (and a new store connection). */
function controlsSignature(config: CompiledConfig): string {
  return JSON.stringify([config.store, config.authFailures ?? null, maxClockSkewMs(config)]);
}

/** The largest clock skew any issuer tolerates (single-use tokens are remembered that much past `exp`). */
export function maxClockSkewMs(config: CompiledConfig): number {
  return Math.max(0, ...config.issuers.map((issuer) => issuer.clockSkewMs));
}
