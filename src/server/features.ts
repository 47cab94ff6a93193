import { createBrokerFeature } from "../broker/index.js";
import type { CompiledConfig } from "../config/types.js";
import { connectorFeature } from "../connector/index.js";
import { forwardAuthFeature } from "../forward-auth/index.js";
import type { FeatureFactory as FactoryOf } from "../pipeline/feature.js";
import { tunnelFeature } from "../tunnel/index.js";
import { whoamiFeature } from "../whoami/index.js";

/** A feature factory as the server calls it: with the whole compiled configuration. */
export type FeatureFactory = FactoryOf<CompiledConfig>;

/**
 * The built-in features, in the order they are asked to claim a request. Each feature folder exports
 * one factory; adding a feature is one line here.
 */
export const builtInFeatures: readonly FeatureFactory[] = [
  createBrokerFeature,
  connectorFeature,
  tunnelFeature,
  whoamiFeature,
  forwardAuthFeature,
];
