export { createGateway, type Gateway, type GatewayOptions } from "./create-gateway.js";
export { type ExtractedToken, extractToken } from "./extract-token.js";
export type { FeatureContext, FeatureDependencies, FeatureFactory, GatewayFeature } from "./feature.js";
export { builtInFeatures } from "./features.js";
export { type RunningGateway, type StartGatewayOptions, startGateway } from "./start-gateway.js";
