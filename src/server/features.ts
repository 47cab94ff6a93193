import { createBrokerFeature } from "../broker/index.js";
import { tunnelFeature } from "../tunnel/index.js";
import type { FeatureFactory } from "./feature.js";

/**
 * The built-in features, in the order they are asked to claim a request. Each feature folder exports
 * one factory; adding a feature is one line here.
 */
export const builtInFeatures: readonly FeatureFactory[] = [createBrokerFeature, tunnelFeature];
