/**
 * The workflow side of tollgate: OIDC tokens from the Actions runner (cached, refreshed before they
 * expire), a local forward proxy and local port forwards that carry traffic through the gateway's
 * CONNECT tunnels, one tunnel on standard input and output (`pipe`, for ssh's ProxyCommand), and the
 * gateway's answer to "does it take this token?" (`whoami`). Used by `tollgate token | proxy | forward |
 * pipe | whoami` and by the GitHub Action in `action/`.
 */
export {
  type ActionsIdTokenRequest,
  type ActionsTokenEndpoint,
  type ActionsTokenSourceOptions,
  actionsTokenEndpointFromEnv,
  actionsTokenUrl,
  createActionsTokenSource,
  requestActionsIdToken,
} from "./actions-id-token.js";
export { type GatewayTarget, parseGatewayUrl } from "./gateway-target.js";
export {
  type GatewayRefusal,
  type GatewayTunnelOptions,
  openGatewayTunnel,
  type TunnelOutcome,
} from "./gateway-tunnel.js";
export {
  checkTokenWithGateway,
  type GatewayIdentity,
  type TokenCheck,
  type TokenCheckOptions,
  whoamiPath,
} from "./gateway-whoami.js";
export {
  assertListenAllowed,
  formatHostPort,
  isLoopbackHost,
  type ListenAddress,
  parseListenAddress,
} from "./listen-address.js";
export { type ClientLog, type LocalProxy, type LocalProxyOptions, startLocalProxy } from "./local-proxy.js";
export {
  type PipeCommandOptions,
  type PipeOptions,
  parsePipeDestination,
  runPipe,
  runPipeCommand,
} from "./pipe.js";
export {
  type ForwardSpec,
  type PortForwardOptions,
  type PortForwards,
  parseForwardSpec,
  startPortForwards,
} from "./port-forward.js";
export {
  type ClientSettings,
  describeClientError,
  describeTokenCheck,
  type PreparedClient,
  prepareClient,
} from "./prepare-client.js";
export { createTokenSource, type TokenSource, type TokenSourceOptions } from "./token-source.js";
export { createTunnelDialer, splice, type TunnelDialer } from "./tunnel-dialer.js";
export {
  addMaskCommand,
  annotationCommand,
  appendEnvironmentFile,
  environmentFileEntry,
  escapeCommandData,
  inGitHubActions,
} from "./workflow-commands.js";
