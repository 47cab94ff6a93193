export { type ExtractedToken, extractToken } from "../pipeline/extract-token.js";
export type { FeatureContext, FeatureDependencies, GatewayFeature } from "../pipeline/feature.js";
export { createGateway, type Gateway, type GatewayOptions } from "./create-gateway.js";
export { builtInFeatures, type FeatureFactory } from "./features.js";
export { type RunningGateway, type StartGatewayOptions, startGateway } from "./start-gateway.js";
