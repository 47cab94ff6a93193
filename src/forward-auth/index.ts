export { createForwardAuthFeature, forwardAuthFeature } from "./forward-auth-feature.js";
export {
  compileForwardAuth,
  forwardAuthDefaults,
  forwardAuthSchema,
  type RawForwardAuth,
} from "./forward-auth-schema.js";
export { type OriginalRequest, originalRequest } from "./original-request.js";
export type { CompiledForwardAuth, ForwardAuthFeatureConfig } from "./types.js";
