import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { compileConfigText } from "../../src/config/index.js";
import type { CompiledConfig } from "../../src/config/types.js";
import { createDevIssuer, type DevIssuer, githubLikeClaims } from "../../src/dev/dev-issuer.js";
import { type FeatureFactory, type RunningGateway, startGateway } from "../../src/server/index.js";

export const testAudience = "tollgate.test";

/** A real dev issuer, a real gateway on loopback, and captured audit and operational logs. */
export interface GatewayHarness {
  issuer: DevIssuer;
  /** The compiled configuration the gateway started with (hand it to `running.reload` to reload it). */
  config: CompiledConfig;
  running: RunningGateway;
  url: string;
  auditFile: string;
  /** Everything written so far to the audit file and the operational log. */
  allOutput(): Promise<string>;
  auditEvents(): Promise<Record<string, unknown>[]>;
  /** A token with GitHub-like claims (push to main of octo-org/octo-repo) plus overrides. */
  mint(overrides?: Record<string, unknown>, options?: Parameters<DevIssuer["mint"]>[1]): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts a gateway whose configuration is `configYaml(issuerUrl)`. The issuer is named `dev` and
 * expects audience {@link testAudience}.
 */
export async function startGatewayHarness(
  configYaml: (issuerUrl: string) => string,
  options: {
    secrets?: string[];
    waitForKeys?: boolean;
    features?: FeatureFactory[];
    env?: NodeJS.ProcessEnv;
    tlsHandshakeTimeoutMs?: number;
    /** The address to listen on; default 127.0.0.1. */
    host?: string;
    /** The port to listen on; default 0 (a free one). */
    port?: number;
  } = {},
): Promise<GatewayHarness> {
  const dir = await mkdtemp(join(tmpdir(), "tollgate-test-"));
  const issuer = await createDevIssuer({ host: "127.0.0.1", port: 0 });
  const compiled = compileConfigText(configYaml(issuer.issuerUrl), { env: {}, sourceName: "test.yaml" });
  if (compiled.config === undefined) {
    await issuer.close();
    throw new Error(`test configuration invalid: ${JSON.stringify(compiled.problems, null, 2)}`);
  }
  const auditFile = join(dir, "audit.jsonl");
  const logChunks: Buffer[] = [];
  const logStream = new PassThrough();
  logStream.on("data", (chunk: Buffer) => logChunks.push(chunk));
  const running = await startGateway(compiled.config, {
    listen: { host: options.host ?? "127.0.0.1", port: options.port ?? 0 },
    auditSink: auditFile,
    logDestination: logStream,
    logLevel: "debug",
    ...(options.secrets ? { secrets: options.secrets } : {}),
    ...(options.features ? { features: options.features } : {}),
    ...(options.env ? { env: options.env } : {}),
    ...(options.tlsHandshakeTimeoutMs ? { tlsHandshakeTimeoutMs: options.tlsHandshakeTimeoutMs } : {}),
  });
  if (options.waitForKeys !== false) await running.keysLoaded;
  const harness: GatewayHarness = {
    issuer,
    config: compiled.config,
    running,
    url: `http://${options.host ?? "127.0.0.1"}:${running.address.port}`,
    auditFile,
    async allOutput() {
      await running.auditLog.flush();
      const audit = await readFile(auditFile, "utf8").catch(() => "");
      return audit + Buffer.concat(logChunks).toString("utf8");
    },
    async auditEvents() {
      await running.auditLog.flush();
      const audit = await readFile(auditFile, "utf8").catch(() => "");
      return audit
        .split("\n")
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    mint: (overrides = {}, mintOptions = {}) =>
      issuer.mint(githubLikeClaims(overrides), { audience: testAudience, ...mintOptions }),
    async close() {
      await running.close();
      await issuer.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** The issuer block every test configuration uses. */
export function devIssuerYaml(issuerUrl: string): string {
  return `issuers:
  - name: dev
    issuer: ${issuerUrl}
    audiences: [${testAudience}]
`;
}
