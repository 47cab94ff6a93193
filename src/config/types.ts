import type { CompiledBroker } from "../broker/types.js";
import type { CompiledConnectorPool } from "../connector/connector-schema.js";
import type { CompiledForwardAuth } from "../forward-auth/types.js";
import type { AuthFailureSpec } from "../limits/types.js";
import type { IssuerSettings, VerifierSettings } from "../oidc/types.js";
import type { CompiledPolicy, PolicyWarning } from "../policy/types.js";
import type { CompiledRoute } from "../proxy/types.js";
import type { CompiledTunnel } from "../tunnel/types.js";

// The compiled route is the reverse proxy's contract, as tunnels' and the broker's are theirs.
export type { CompiledRoute } from "../proxy/types.js";

/** The configuration after validation and compilation: everything request handling needs, frozen. */
export interface CompiledConfig {
  readonly listen: {
    readonly host: string;
    readonly port: number;
    /** `listen.tls`: serve HTTPS with the PEM files at these paths (read by `startGateway`). */
    readonly tls?: { readonly certFile: string; readonly keyFile: string };
  };
  readonly issuers: readonly IssuerSettings[];
  readonly verifier: VerifierSettings;
  readonly policies: ReadonlyMap<string, CompiledPolicy>;
  readonly routes: readonly CompiledRoute[];
  /** `tunnels` compiled: destination patterns parsed, policies resolved, timeouts in ms. */
  readonly compiledTunnels: readonly CompiledTunnel[];
  /**
   * The `broker` section compiled: `GITHUB_API_URL`, `ALLOWED_SCOPES` and `DENIED_SCOPES` applied, scope
   * lists and grants built. Present exactly when `broker` is; this is what the broker feature serves.
   */
  readonly compiledBroker?: CompiledBroker;
  /** `connectors`: the pools this edge accepts connectors into, keys parsed. */
  readonly connectors: readonly CompiledConnectorPool[];
  /**
   * `flushIntervalMs`: the longest an audit line waits before it is written (`audit.flush_interval`);
   * `denials`: how repeated denials are folded into counted lines (`audit.denials`).
   */
  readonly audit: {
    readonly sink: string;
    readonly flushIntervalMs: number;
    readonly denials: { readonly windowMs: number; readonly maxSources: number };
  };
  readonly store: { readonly kind: "memory" | "redis"; readonly url?: string };
  /** `listen.auth_failures`: throttling of client addresses whose tokens keep failing. */
  readonly authFailures?: AuthFailureSpec;
  readonly server: {
    /** Largest total request header size accepted (bytes); larger requests get 431 from Node. */
    readonly maxHeaderBytes: number;
    /** How long a graceful stop waits for in-flight requests before closing them (ms). */
    readonly shutdownGraceMs: number;
    /** Trust `X-Forwarded-For` from the peer (behind a load balancer). Default false. */
    readonly trustProxy: boolean;
    /** Serve Prometheus metrics at `GET /metrics`. Default true. */
    readonly metrics: boolean;
    /** `server.forward_auth`: the endpoint an ingress asks (src/forward-auth/); absent: off. */
    readonly forwardAuth?: CompiledForwardAuth;
  };
  /** Risky-but-legal findings, printed by `check` and logged at start-up. */
  readonly warnings: readonly PolicyWarning[];
}

/** One configuration problem with where it is and how to fix it. */
export interface ConfigProblem {
  /** Dotted path, e.g. `routes[0].upstream`. */
  path: string;
  /** 1-based line in the YAML file, when known. */
  line?: number;
  message: string;
  /** What to write instead. */
  fix?: string;
}

/** A risky-but-legal finding, with the 1-based line it is about when known. */
export interface ConfigWarning extends PolicyWarning {
  line?: number;
}
