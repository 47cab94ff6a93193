import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { createSecureContext } from "node:tls";
import type { Logger } from "pino";
import { createAuditLog, createLogger, createRedactor } from "../audit/index.js";
import type { AuditLog, Redactor } from "../audit/types.js";
import type { CompiledConfig } from "../config/types.js";
import { createConnectorPools } from "../connector/connector-pools.js";
import { TollgateError } from "../errors/index.js";
import { type Clock, systemClock } from "../lib/clock.js";
import { createAbuseControls } from "../limits/index.js";
import { createMetrics } from "../metrics/metrics.js";
import { createTokenVerifier } from "../oidc/index.js";
import type { TokenVerifier } from "../oidc/types.js";
import { createStateStore, redisUrlPassword } from "../store/index.js";
import { createGateway, type Gateway, type TlsMaterial } from "./create-gateway.js";
import type { FeatureFactory } from "./features.js";
import { builtInFeatures } from "./features.js";
import { createGatewayLifecycle, maxClockSkewMs } from "./gateway-lifecycle.js";

/**
 * Entries the controls' in-memory store keeps (with `store.kind: memory`): used single-use tokens until
 * they expire. About 100 bytes each; at GitHub's 5-minute tokens, room for 300 single-use requests a
 * second. A full store refuses further single-use tokens rather than forget used ones.
 */
const controlsMemoryEntries = 100_000;

/** Everything `serve` (and `dev`, and the integration tests) run: the parts wired together. */
export interface RunningGateway {
  readonly gateway: Gateway;
  readonly verifier: TokenVerifier;
  readonly auditLog: AuditLog;
  readonly logger: Logger;
  readonly redactor: Redactor;
  readonly address: AddressInfo;
  /** Resolves once every issuer's key set was loaded or failed to load (never rejects). */
  readonly keysLoaded: Promise<void>;
  /**
   * Applies a new configuration (SIGHUP). When the issuers changed, a new verifier loads their keys
   * first and takes over only when ready, so a reload never opens a window without keys.
   * Returns what changed, for the log.
   */
  reload(next: CompiledConfig): Promise<{ verifierReplaced: boolean; restartNeeded: string[] }>;
  /** Graceful stop (drain, close, flush). */
  close(): Promise<void>;
}

export interface StartGatewayOptions {
  /** Overrides `config.listen` (tests use port 0). */
  listen?: { host?: string; port?: number };
  /** Operational log destination; default stderr. */
  logDestination?: NodeJS.WritableStream;
  logLevel?: string;
  /** Overrides `config.audit.sink`. */
  auditSink?: string;
  clock?: Clock;
  fetch?: typeof fetch;
  /** Secrets to redact from every log line in addition to the built-in JWT-shape rule. */
  secrets?: readonly string[];
  /** Feature factories; default {@link builtInFeatures}. */
  features?: readonly FeatureFactory[];
  /** Environment the features read credentials from; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** With `listen.tls`: how long a client has to finish its handshake (default 10 s; tests shorten it). */
  tlsHandshakeTimeoutMs?: number;
}

/**
 * Wires a compiled configuration into a listening gateway: redactor → loggers → verifier → server.
 * Starts listening at once; `/readyz` reports 503 until every issuer's keys are loaded.
 */
export async function startGateway(
  config: CompiledConfig,
  options: StartGatewayOptions = {},
): Promise<RunningGateway> {
  // First: a certificate that cannot be used stops the start before anything is opened.
  const tls = config.listen.tls === undefined ? undefined : await readTlsMaterial(config.listen.tls);
  const redactor = createRedactor();
  for (const secret of options.secrets ?? []) redactor.register(secret);
  const logger = createLogger({
    redactor,
    level: options.logLevel ?? process.env.LOG_LEVEL ?? "info",
    ...(options.logDestination ? { destination: options.logDestination } : {}),
  });
  // Every decision is audited, so a sink that cannot be opened stops the start (exit 2 from `serve`);
  // later trouble (a full disk) goes to the operational log, at most once a minute.
  const auditSink = options.auditSink ?? config.audit.sink;
  let sinkProblem: Error | undefined;
  let starting = true;
  let lastAuditReportMs = Number.NEGATIVE_INFINITY;
  const auditLog = createAuditLog({
    sink: auditSink,
    flushIntervalMs: config.audit.flushIntervalMs,
    denials: config.audit.denials,
    redactor,
    onError: (error) => {
      if (starting) {
        sinkProblem ??= error;
        return;
      }
      if (Date.now() - lastAuditReportMs < 60_000) return;
      lastAuditReportMs = Date.now();
      logger.error({ err: error }, "audit log sink failed; audit lines may be lost");
    },
  });
  starting = false;
  if (sinkProblem !== undefined) {
    const code = (sinkProblem as NodeJS.ErrnoException).code ?? "unusable";
    throw new TollgateError("TG_CONFIG_INVALID", `audit.sink: cannot open ${auditSink} (${code})`);
  }
  const clock = options.clock ?? systemClock;
  // Connectors stay connected across reloads: one registry for the gateway's life.
  const connectorPools = createConnectorPools();
  // Subscribed before the lifecycle builds anything: the first key load and each pool's first
  // connector count (0) are counted.
  const metrics = createMetrics();
  // A start that fails here (a feature's credential file unreadable) must not leave metrics subscribed.
  const lifecycle = await createGatewayLifecycle(config, {
    createVerifier: (forConfig) =>
      createTokenVerifier(forConfig.issuers, forConfig.verifier, {
        ...(options.clock ? { clock: options.clock } : {}),
        ...(options.fetch ? { fetch: options.fetch } : {}),
      }),
    factories: options.features ?? builtInFeatures,
    createControls: (forConfig) => {
      // A Redis password in store.url is a secret like any credential: never in a log line.
      const password = forConfig.store.url === undefined ? "" : redisUrlPassword(forConfig.store.url);
      if (password !== "") redactor.register(password);
      const store = createStateStore(forConfig.store, { clock, logger, maxEntries: controlsMemoryEntries });
      const controls = createAbuseControls({
        store,
        logger,
        clock,
        authFailures: forConfig.authFailures,
        maxClockSkewMs: maxClockSkewMs(forConfig),
      });
      return { controls, close: () => store.close() };
    },
    dependencies: { auditLog, logger, redactor, clock, env: options.env ?? process.env, connectorPools },
    logger,
  }).catch((error: unknown) => {
    metrics.close();
    throw error;
  });
  const verifier = lifecycle.active.verifier;
  const gateway = createGateway({
    lifecycle,
    auditLog,
    logger,
    metrics,
    connectorPools,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.listen ? { listen: options.listen } : {}),
    ...(tls ? { tls } : {}),
    ...(options.tlsHandshakeTimeoutMs === undefined
      ? {}
      : { tlsHandshakeTimeoutMs: options.tlsHandshakeTimeoutMs }),
  });
  for (const warning of config.warnings)
    logger.warn({ path: warning.path, warning: warning.id }, warning.message);
  let address: AddressInfo;
  try {
    address = await gateway.listen();
  } catch (error) {
    // Nothing may stay behind a start that failed (a broker's pools and timers would keep the process
    // alive), and the reason is the operator's to fix, like a configuration error.
    await gateway.close().catch(() => {});
    metrics.close();
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    const host = options.listen?.host ?? config.listen.host;
    const port = options.listen?.port ?? config.listen.port;
    const hint = listenHints[code] === undefined ? "" : `: ${listenHints[code]}`;
    throw new TollgateError("TG_CONFIG_INVALID", `listen: cannot listen on ${host}:${port} (${code})${hint}`);
  }
  const keysLoaded = verifier.start().then(() => {
    for (const state of verifier.status()) {
      if (state.ready) logger.info({ issuer: state.issuer }, "issuer keys loaded");
      else logger.error({ issuer: state.issuer, error: state.lastError }, "issuer keys could not be loaded");
    }
  });
  logger.info(
    { host: address.address, port: address.port, routes: config.routes.length },
    "tollgate listening",
  );
  async function reload(next: CompiledConfig) {
    const current = lifecycle.active.config;
    const restartNeeded: string[] = [];
    if (JSON.stringify(next.listen) !== JSON.stringify(current.listen)) restartNeeded.push("listen");
    if (next.audit.sink !== current.audit.sink) restartNeeded.push("audit.sink");
    if (next.audit.flushIntervalMs !== current.audit.flushIntervalMs) {
      restartNeeded.push("audit.flush_interval");
    }
    if (JSON.stringify(next.audit.denials) !== JSON.stringify(current.audit.denials)) {
      restartNeeded.push("audit.denials");
    }
    if (JSON.stringify(next.server) !== JSON.stringify(current.server)) restartNeeded.push("server");
    // A renewed certificate at the same paths is read again (and checked) before anything changes; other
    // listen changes need a restart.
    const renewedTls =
      tls !== undefined &&
      next.listen.tls !== undefined &&
      JSON.stringify(next.listen.tls) === JSON.stringify(current.listen.tls)
        ? await readTlsMaterial(next.listen.tls)
        : undefined;
    const { verifierReplaced } = await lifecycle.reload(next);
    if (renewedTls !== undefined) gateway.updateTls(renewedTls);
    for (const warning of next.warnings)
      logger.warn({ path: warning.path, warning: warning.id }, warning.message);
    return { verifierReplaced, restartNeeded };
  }
  return {
    gateway,
    get verifier() {
      return lifecycle.active.verifier;
    },
    auditLog,
    logger,
    redactor,
    address,
    keysLoaded,
    reload,
    close: async () => {
      await gateway.close();
      metrics.close();
    },
  };
}

/** What a failed listen most often means, by its error code. */
const listenHints: Readonly<Record<string, string>> = {
  EADDRINUSE: "the port is in use",
  EACCES: "not allowed (ports below 1024 need privileges)",
  EADDRNOTAVAIL: "no interface of this machine has that address",
};

/**
 * Reads `listen.tls`'s PEM files and checks that they make a usable pair. Problems are configuration
 * errors naming the setting and the path; nothing of the files' content is ever put in a message.
 */
async function readTlsMaterial(files: NonNullable<CompiledConfig["listen"]["tls"]>): Promise<TlsMaterial> {
  const read = async (path: string, setting: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
      throw new TollgateError("TG_CONFIG_INVALID", `${setting}: cannot read ${path} (${code})`);
    }
  };
  const material = {
    cert: await read(files.certFile, "listen.tls.cert"),
    key: await read(files.keyFile, "listen.tls.key"),
  };
  try {
    createSecureContext(material);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new TollgateError(
      "TG_CONFIG_INVALID",
      code === "ERR_OSSL_X509_KEY_VALUES_MISMATCH"
        ? `listen.tls: the key in ${files.keyFile} does not belong to the certificate in ${files.certFile}`
        : `listen.tls: ${files.certFile} and ${files.keyFile} are not a PEM certificate chain and its key (${typeof code === "string" ? code : "unusable"})`,
    );
  }
  return material;
}
