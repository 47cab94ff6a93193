import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { AuditLog, Redactor } from "../audit/types.js";
import type { Clock } from "../lib/clock.js";
import type { AbuseControls } from "../limits/index.js";
import type { TokenVerifier } from "../oidc/types.js";
import type { ConnectorPools } from "./connectors.js";

/**
 * What a feature gets for one request or CONNECT: identity of the request and the shared parts it reads.
 * A feature's own configuration comes to its factory, once per (re)load, not with every request.
 */
export interface FeatureContext {
  readonly requestId: string;
  readonly clientIp: string;
  /** `clock()` when the request arrived. */
  readonly startedMs: number;
  readonly verifier: TokenVerifier;
  readonly auditLog: AuditLog;
  readonly logger: Logger;
  readonly clock: Clock;
}

/**
 * A job of the gateway beside the reverse-proxy routes: the runner token broker (`POST /register` …),
 * CONNECT tunnels and absolute-form forward proxying. The server owns the socket, `/healthz`,
 * `/readyz` and the error mapping; a feature owns its decisions and emits its own audit events.
 */
export interface GatewayFeature {
  readonly name: string;
  /**
   * Whether this feature answers this (non-CONNECT) request. Checked after `/healthz` and `/readyz`,
   * before routes; must be cheap (it runs on every request).
   */
  claimsRequest?(req: IncomingMessage): boolean;
  /**
   * Answers a claimed request. A thrown `TollgateError` is answered by the server with the catalogue's
   * status and JSON body (the feature must have audited the decision before throwing).
   */
  handleRequest?(req: IncomingMessage, res: ServerResponse, context: FeatureContext): Promise<void>;
  /** Handles an HTTP CONNECT. The feature owns the socket from here on, including every error answer. */
  handleConnect?(req: IncomingMessage, socket: Duplex, head: Buffer, context: FeatureContext): void;
  /**
   * Whether this feature takes this CONNECT (cheap; checked in feature order). A feature with
   * `handleConnect` and without it takes every CONNECT that reaches it: the connector feature, first,
   * claims only its reserved authority, and tunnels take the rest.
   */
  claimsConnect?(req: IncomingMessage): boolean;
  /** Part of `/readyz` (for example: the broker's credential works). */
  readiness?(): { ready: boolean; detail?: Record<string, unknown> };
  /**
   * A reload replaced this feature: no new request reaches it from now on. Resolves once it has let the
   * requests it is answering finish and released what it holds (connection pools, a Redis connection),
   * so that reloads do not pile those up. A feature without it (tunnels: open ones run on under the
   * rules they were opened with) is closed at shutdown, as is every feature.
   */
  retire?(): Promise<void>;
  /** Graceful stop, after the HTTP server stopped accepting: close tunnels, flush caches. */
  close?(): Promise<void>;
}

/** What a feature factory may use; created once per (re)loaded configuration. */
export interface FeatureDependencies {
  readonly verifier: TokenVerifier;
  readonly auditLog: AuditLog;
  readonly logger: Logger;
  readonly redactor: Redactor;
  readonly clock: Clock;
  /** The process environment (credentials such as GITHUB_TOKEN come from here, never from YAML). */
  readonly env: NodeJS.ProcessEnv;
  /** Rate limits, single use and failed-authentication throttling (one set per gateway and store). */
  readonly controls: AbuseControls;
  /** The connectors connected to this edge, by pool (one registry for the gateway's life). */
  readonly connectorPools: ConnectorPools;
}

/**
 * Builds a feature from the part of the compiled configuration it reads (`Config`: each feature names
 * its own, so this contract does not depend on `config/`, which composes the features' sections), or
 * returns `undefined` when the configuration does not use it. May throw a
 * `TollgateError("TG_CONFIG_INVALID")` for problems only visible at start-up (an unreadable credential
 * file). The server hands every factory the whole `CompiledConfig`, which has every feature's part.
 */
export type FeatureFactory<Config> = (
  config: Config,
  dependencies: FeatureDependencies,
) => GatewayFeature | undefined | Promise<GatewayFeature | undefined>;
