import type { CompiledRoute } from "../proxy/types.js";

/** `server.forward_auth` compiled. Frozen with the rest of the configuration. */
export interface CompiledForwardAuth {
  /** The endpoint's path, exact (`/_tollgate/auth`); Envoy's `ext_authz` asks at `path` + original path. */
  readonly path: string;
  /** Longest an allowed answer may be cached by the ingress (ms); 0: never. */
  readonly maxAgeMs: number;
}

/** The part of the compiled configuration the forward-auth feature reads (`CompiledConfig` has it). */
export interface ForwardAuthFeatureConfig {
  readonly server: {
    /** `server.forward_auth`; absent: the feature is off. */
    readonly forwardAuth?: CompiledForwardAuth;
  };
  readonly routes: readonly CompiledRoute[];
}
