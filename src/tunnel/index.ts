/**
 * Tunnels: HTTP CONNECT and absolute-form forward proxying to allow-listed destinations. Destination
 * patterns are compiled once (by `config/`, with {@link parseDestinationPattern}); each request is decided
 * by credential, destination, policy and the resolved addresses, and dialled to exactly what was checked.
 */
export {
  type Admission,
  type AdmissionFindings,
  type AdmissionParts,
  admit,
  auditAdmission,
} from "./admission.js";
export {
  addressRefusal,
  type CheckedAddress,
  candidateTunnels,
  checkAddresses,
  parseAuthority,
  tunnelAdmitsAddress,
  tunnelAdmitsName,
} from "./destination-check.js";
export { parseDestinationPattern } from "./destination-pattern.js";
export {
  type DialAddress,
  dialChecked,
  type IpHost,
  resolveTarget,
  systemDial,
  systemLookup,
} from "./dial.js";
export { type ConnectExplanation, explainConnect } from "./explain-connect.js";
export { isAbsoluteForm, parseAbsoluteTarget } from "./forward-http.js";
export {
  alwaysDeniedRange,
  alwaysDeniedRanges,
  formatHostPort,
  normalizeAddress,
  normalizeHost,
} from "./ip-address.js";
export { proxyAuthenticateValue, proxyCredential } from "./proxy-credential.js";
export { attachRelay, ReadRelay, relayOf, tunnelQueueLimit } from "./read-relay.js";
export {
  closeTunnels,
  countTunnelBytesFrom,
  type SplicedTunnel,
  type SpliceOptions,
  spliceSockets,
  type TunnelCloseReason,
  type TunnelStats,
} from "./splice.js";
export {
  createTunnelFeature,
  createTunnelFeatureFactory,
  type TunnelFeatureOptions,
  tunnelFeature,
} from "./tunnel-feature.js";
export {
  type CompiledTunnel,
  type DeniedRange,
  type DestinationPattern,
  type DestinationProblem,
  type IpFamily,
  type LookupAll,
  type NormalizedHost,
  type ResolvedAddress,
  type TunnelTarget,
  tunnelDefaults,
} from "./types.js";
