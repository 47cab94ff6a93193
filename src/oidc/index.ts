export { isForbiddenAlgorithm, supportedAlgorithms, validateAlgorithms } from "./algorithms.js";
export { createTokenVerifier, type VerifierTestHooks } from "./create-verifier.js";
export { defaultAlgorithms, defaultClockSkewMs, defaultVerifierSettings } from "./defaults.js";
export { type KeySetLoadEvent, oidcChannels } from "./diagnostics.js";
export { discoveryUrl } from "./discovery.js";
export {
  checkIssuerUrl,
  checkKeySetUrl,
  expandIssuerPreset,
  githubActionsIssuer,
  isLoopbackHostname,
  issuerPresetForms,
} from "./issuer-presets.js";
export type {
  IssuerSettings,
  TokenVerifier,
  VerifiedToken,
  VerifierDependencies,
  VerifierSettings,
} from "./types.js";
