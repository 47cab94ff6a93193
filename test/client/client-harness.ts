import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, connect, createServer as createNetServer } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { fileURLToPath } from "node:url";
import type { FeatureFactory } from "../../src/server/index.js";
import { type ActionsTokenEndpoint, startActionsTokenEndpoint } from "../helpers/actions-token-endpoint.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";

export const root = fileURLToPath(new URL("../../", import.meta.url));
export const cliPath = `${root}bin/tollgate.js`;

/** The policy every client test's tunnel allows: pushes to main of octo-org/octo-repo (the default claims). */
export const policiesYaml = `policies:
  ci:
    claims:
      repository_owner_id: 65
      repository_id: 74
      ref: refs/heads/main
      event_name: { not: [pull_request_target, workflow_run] }
  releases-only:
    claims:
      repository_owner_id: 65
      repository_id: 74
      ref: refs/heads/release
`;

/** A real gateway (dev issuer, tunnel feature) allowing `destinations`, plus the Actions token stand-in. */
export interface TunnelSetup {
  readonly gateway: GatewayHarness;
  readonly tokenEndpoint: ActionsTokenEndpoint;
  /** A minimal environment for a client process: PATH, a HOME, the token endpoint, no proxy variables. */
  clientEnv(extra?: Record<string, string>): Record<string, string>;
  close(): Promise<void>;
}

/**
 * `features` replaces the gateway's built-in features (to inject the tunnel feature's resolver and dialer,
 * so a host name such as `git.internal` reaches a server on loopback).
 */
export async function startTunnelSetup(
  destinations: string[],
  routesYaml = "",
  options: { features?: FeatureFactory[] } = {},
): Promise<TunnelSetup> {
  const gateway = await startGatewayHarness(
    (issuerUrl) =>
      `${devIssuerYaml(issuerUrl)}${policiesYaml}tunnels:
  - name: private
    destinations: [${destinations.map((destination) => JSON.stringify(destination)).join(", ")}]
    allow: [ci]
${routesYaml}`,
    options.features === undefined ? {} : { features: options.features },
  );
  const tokenEndpoint = await startActionsTokenEndpoint(gateway.issuer);
  return {
    gateway,
    tokenEndpoint,
    clientEnv: (extra = {}) => ({
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? "/tmp",
      ...tokenEndpoint.env(),
      ...extra,
    }),
    async close() {
      await tokenEndpoint.close();
      await gateway.close();
    },
  };
}

/** A running CLI process with its output so far. */
export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `tollgate <args>` and waits (bounded) until stdout has `lines` complete lines, or fails with
 * the process's stderr when it exits or takes too long.
 */
export async function startCli(args: string[], env: Record<string, string>, lines = 1): Promise<CliProcess> {
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    out += chunk.toString("utf8");
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    err += chunk.toString("utf8");
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`tollgate ${args[0]} did not get ready; stderr: ${err}`));
    }, 15_000);
    const check = () => {
      if (out.split("\n").length > lines) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`tollgate ${args[0]} exited with ${code}; stderr: ${err}`));
    });
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

/** Runs a command to completion (bounded) and returns its exit code and output, never throwing. */
export function runTool(
  command: string,
  args: string[],
  env: Record<string, string>,
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { env, cwd: options.cwd ?? root, timeout: options.timeoutMs ?? 20_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/**
 * A plain HTTP server on loopback that answers `hello over http <path>` and records request headers.
 * `/status/NNN` answers status NNN instead, and `/forged/NNN` answers NNN dressed as a gateway refusal
 * (a `Proxy-Status` member named tollgate with an error, a JSON error body), as another tollgate would.
 */
export async function startHttpTarget(): Promise<{
  port: number;
  seen: IncomingHttpHeaders[];
  server: Server;
}> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(req.headers);
    const status = /\/(status|forged)\/(\d{3})$/.exec(req.url ?? "");
    if (status?.[1] === "forged") {
      res.writeHead(Number(status[2]), {
        "content-type": "application/json",
        "proxy-status": 'tollgate;error=http_request_denied;details="TG_POLICY_DENIED"',
        "x-request-id": "from-the-destination",
      });
      res.end('{"error":{"code":"TG_POLICY_DENIED","message":"not me","request_id":"from-the-destination"}}');
      return;
    }
    res.writeHead(status === null ? 200 : Number(status[2]), { "content-type": "text/plain" });
    res.end(`hello over http ${req.url}`);
  });
  return { port: await listenLoopback(server), seen, server };
}

/** An HTTPS server on loopback with the test certificate, answering `hello over tls <path>`. */
export async function startHttpsTarget(
  certPem: string,
  keyPem: string,
): Promise<{ port: number; server: Server }> {
  const server = createHttpsServer({ cert: certPem, key: keyPem }, (req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`hello over tls ${req.url}`);
  });
  return { port: await listenLoopback(server), server };
}

/** A TLS terminator in front of the gateway (what a load balancer does), so the client sees https. */
export async function startTlsFront(
  certPem: string,
  keyPem: string,
  backendPort: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<{ destroy(): void }>();
  const server = createTlsServer({ cert: certPem, key: keyPem }, (socket) => {
    const backend = connect(backendPort, "127.0.0.1");
    sockets.add(socket);
    sockets.add(backend);
    const destroy = () => {
      socket.destroy();
      backend.destroy();
    };
    socket.on("error", destroy);
    backend.on("error", destroy);
    socket.on("close", destroy);
    backend.on("close", destroy);
    socket.pipe(backend).pipe(socket);
  });
  const port = await listenLoopback(server);
  return {
    port,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback port that nothing listens on right now (for a destination the gateway must refuse). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  const port = await listenLoopback(server);
  await closeServer(server);
  return port;
}

export async function listenLoopback(server: {
  listen(port: number, host: string, callback: () => void): unknown;
  address(): AddressInfo | string | null;
}): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

export function closeServer(server: {
  close(callback: () => void): unknown;
  closeAllConnections?: () => void;
}) {
  server.closeAllConnections?.();
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Every JWT-shaped string in a text (three base64url parts, the first one a JSON header). */
export function jwtsIn(text: string): string[] {
  return text.match(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g) ?? [];
}
