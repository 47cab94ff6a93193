/**
 * The runner token broker: a drop-in, safer github-runner-token-proxy. `POST /register`, `POST /remove`
 * and `POST /jitconfig`; strict scopes, anchored scope lists, OIDC grants; a PAT or a GitHub App
 * credential that never leaves the process; tokens cached per scope through the state store.
 */
export {
  type BrokerFeatureOptions,
  brokerPaths,
  createBrokerFeature,
  createBrokerFeatureFactory,
} from "./broker-feature.js";
export {
  type BrokerProblem,
  type BrokerWarning,
  brokerDefaults,
  type CompileBrokerOptions,
  checkApiUrl,
  compileBroker,
} from "./compile-broker.js";
export {
  type BrokerCredential,
  type CredentialReading,
  credentialVariables,
  hasCredentialEnvironment,
  readBrokerCredential,
} from "./credentials.js";
export { type BrokerExplanation, brokerActionNames, explainBrokerRequest } from "./explain-broker.js";
export {
  createGitHubApi,
  type GitHubApi,
  type GitHubApiOptions,
  type MintedRunnerToken,
} from "./github-api.js";
export { githubFault } from "./github-faults.js";
export { compileScopeTemplate, evaluateGrants, traceGrants } from "./grants.js";
export { maxBodyBytes, parseBrokerBody } from "./request-body.js";
export {
  type CachedRunnerToken,
  createRunnerTokenCache,
  type RunnerTokenCache,
} from "./runner-token-cache.js";
export { parseScope, runnersPath } from "./scope.js";
export { compileScopePatterns, evaluateScopeRules, matchPrefix, splitScopeList } from "./scope-rules.js";
export type * from "./types.js";
