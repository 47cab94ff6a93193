/**
 * Connectors: outbound-only links from inside a private network to the edge. The edge side (a feature
 * that accepts connectors into pools, and the registry `via` tunnels open streams on) and the connector
 * side (`tollgate connector`: keys, the link, the streams it carries).
 */
export { type ConnectorOptions, type RunningConnector, startConnector } from "./connector-client.js";
export { type ConnectorFeatureConfig, connectorFeature } from "./connector-feature.js";
export {
  generateConnectorKey,
  keyId,
  parsePrivateKey,
  parsePublicKey,
  publicKeyOf,
} from "./connector-keys.js";
export { createConnectorPools } from "./connector-pools.js";
export {
  type CompiledConnectorPool,
  compileConnectorPool,
  connectorPoolSchema,
  type RawConnectorPool,
} from "./connector-schema.js";
