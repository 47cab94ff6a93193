import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CliProcess,
  closeServer,
  listenLoopback,
  runTool,
  startCli,
  startTunnelSetup,
  type TunnelSetup,
} from "./client-harness.js";

// `npm install` of a package from a private registry, through `tollgate proxy` and the gateway: the
// "private package registry" of the workflow the issue describes. The registry is a loopback stand-in
// that answers the two requests npm makes (the package document and the tarball), as the npm registry
// API documents them.

interface Registry {
  readonly port: number;
  readonly requests: string[];
  close(): Promise<void>;
}

async function startRegistry(tarball: Buffer): Promise<Registry> {
  const requests: string[] = [];
  const integrity = `sha512-${createHash("sha512").update(tarball).digest("base64")}`;
  let port = 0;
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.url === "/private-lib") {
      const body = JSON.stringify({
        name: "private-lib",
        "dist-tags": { latest: "1.0.0" },
        versions: {
          "1.0.0": {
            name: "private-lib",
            version: "1.0.0",
            dist: { tarball: `http://127.0.0.1:${port}/private-lib/-/private-lib-1.0.0.tgz`, integrity },
          },
        },
      });
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    } else if (req.url === "/private-lib/-/private-lib-1.0.0.tgz") {
      res.writeHead(200, { "content-type": "application/octet-stream" }).end(tarball);
    } else {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
    }
  });
  port = await listenLoopback(server);
  return { port, requests, close: () => closeServer(server) };
}

let work: string;
let registry: Registry;
let unlisted: Registry;
let setup: TunnelSetup;
let proxy: CliProcess;
let proxyUrl: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "tollgate-npm-"));
  const library = join(work, "library");
  await mkdir(library);
  await writeFile(join(library, "package.json"), JSON.stringify({ name: "private-lib", version: "1.0.0" }));
  await writeFile(join(library, "index.js"), 'module.exports = "private package content";\n');
  const packed = await runTool("npm", ["pack", "--silent", "--pack-destination", work], npmEnv({}), {
    cwd: library,
    timeoutMs: 60_000,
  });
  expect(packed.code, packed.stderr).toBe(0);
  const tarball = await readFile(join(work, "private-lib-1.0.0.tgz"));
  registry = await startRegistry(tarball);
  unlisted = await startRegistry(tarball);
  setup = await startTunnelSetup([`127.0.0.1:${registry.port}`]);
  proxy = await startCli(
    ["proxy", "--gateway", setup.gateway.url, "--audience", "tollgate.test"],
    setup.clientEnv(),
    2,
  );
  proxyUrl = /^HTTP_PROXY=(\S+)$/m.exec(proxy.stdout())![1]!;
}, 90_000);

afterAll(async () => {
  await proxy?.stop();
  await setup?.close();
  await Promise.all([registry, unlisted].filter(Boolean).map((server) => server.close()));
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * npm's environment: its own configuration and cache, nothing from this machine's. Each install gets a
 * fresh cache (`npm pack` filled the shared one), so the tarball must come through the proxy.
 */
function npmEnv(extra: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    HOME: work,
    npm_config_cache: join(work, "npm-cache"),
    npm_config_userconfig: join(work, "npmrc"),
    npm_config_update_notifier: "false",
    npm_config_fund: "false",
    npm_config_audit: "false",
    ...extra,
  };
}

async function install(project: string, registryPort: number) {
  const dir = join(work, project);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "package.json"),
    JSON.stringify({
      name: project,
      version: "1.0.0",
      private: true,
      dependencies: { "private-lib": "1.0.0" },
    }),
  );
  const result = await runTool(
    "npm",
    ["install", "--registry", `http://127.0.0.1:${registryPort}/`, "--fetch-retries", "0"],
    // npm takes its proxy from `proxy`/`https-proxy` configuration, which the environment sets here as a
    // workflow step's `env:` would; there is no token anywhere in it.
    npmEnv({
      npm_config_proxy: proxyUrl,
      npm_config_https_proxy: proxyUrl,
      npm_config_cache: join(dir, ".npm-cache"),
    }),
    { cwd: dir, timeoutMs: 90_000 },
  );
  return { dir, ...result };
}

describe("npm install through tollgate proxy", () => {
  it("installs a package from a private registry the tunnel lists, with no token in npm's environment", async () => {
    const result = await install("app", registry.port);
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(result.dir, "node_modules/private-lib/index.js"), "utf8")).toContain(
      "private package content",
    );
    expect(registry.requests).toContain("GET /private-lib/-/private-lib-1.0.0.tgz");
    const events = await setup.gateway.auditEvents();
    expect(events).toContainEqual(
      expect.objectContaining({ decision: "allow", destination: `127.0.0.1:${registry.port}` }),
    );
  }, 120_000);

  it("cannot install from a registry the tunnel does not list: npm fails and the registry sees nothing", async () => {
    const result = await install("forbidden-app", unlisted.port);
    expect(result.code).not.toBe(0);
    expect(unlisted.requests).toEqual([]);
    const events = await setup.gateway.auditEvents();
    expect(events).toContainEqual(
      expect.objectContaining({ decision: "deny", destination: `127.0.0.1:${unlisted.port}` }),
    );
  }, 120_000);
});
