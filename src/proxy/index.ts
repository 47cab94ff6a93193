export { clientAddress, peerAddress, socketAddress } from "./client-address.js";
export {
  createUpstreamForwarder,
  type ForwardContext,
  type ForwardResult,
  type UpgradedExchange,
  type UpstreamForwarder,
  type UpstreamForwarderOptions,
} from "./forwarder.js";
export { hopByHopHeaders } from "./headers.js";
export { type NormalizedTarget, normalizeRequestPath } from "./normalize-path.js";
export { createRouteTable, normalizeHost, type RouteTable, upstreamPathFor } from "./route-table.js";
