export { type ExtractedToken, extractToken } from "./extract-token.js";
export type { FeatureContext, FeatureDependencies, FeatureFactory, GatewayFeature } from "./feature.js";
