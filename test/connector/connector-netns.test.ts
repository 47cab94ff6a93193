import { type ChildProcess, execFile, execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateConnectorKey } from "../../src/connector/index.js";
import { runTool, startCli } from "../client/client-harness.js";
import { createBareRepository, gitEnv } from "../client/git-http-server.js";
import { type ActionsTokenEndpoint, startActionsTokenEndpoint } from "../helpers/actions-token-endpoint.js";
import {
  devIssuerYaml,
  type GatewayHarness,
  startGatewayHarness,
  testAudience,
} from "../helpers/gateway-harness.js";
import { cliPath, repositoryRoot } from "../helpers/run-cli.js";
import { closed, echoRoundTrip, eventually, rawConnect } from "../tunnel/helpers.js";
import { type StartedProcess, startProcess } from "./helpers.js";

/**
 * Proof that the connector needs no inbound path: the private service and the connector live in a network
 * namespace of their own, joined to the edge's side by one veth pair. The service's address (10.78.X.1,
 * on the namespace's loopback) has no route from the edge's side — the test asserts the edge cannot
 * reach it — yet a workflow's CONNECT through the edge reaches it through the connector, which dialled
 * out to the edge. A workflow's own clients use it unchanged: curl through a route, redis-cli through
 * `tollgate forward`, and `git clone` through `tollgate proxy` from a git server inside.
 *
 * Needs root and iproute2 (`ip netns`), as CI has; elsewhere the test says so and skips.
 */

const runFile = promisify(execFile);

const canUseNamespaces = (() => {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const suffix = `${process.pid % 10_000}${Math.floor(Math.random() * 100)}`;
const namespace = `tgc${suffix}`;
const edgeSide = `tge${suffix}`;
const connectorSide = `tgn${suffix}`;
// 10.77.X.0/30 between the two sides; X from the pid so parallel runs do not collide.
const subnet = `10.77.${process.pid % 250}`;
const edgeAddress = `${subnet}.1`;
const connectorAddress = `${subnet}.2`;
// Per process too: the unreachable route for it is the host's, shared by concurrent runs.
const serviceAddress = `10.78.${process.pid % 250}.1`;
const servicePort = 7007;
const webPort = 8088;
const redisPort = 6379;
const gitPort = 8089;

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: "ignore" });
}

/**
 * Whether this (the edge's) side reaches the echo service at `host:port`: a connection that opens *and*
 * echoes a probe within `timeoutMs` (a middlebox that accepts any connection does not echo).
 */
function reachable(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (result: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once("connect", () => socket.write("probe"));
    socket.on("data", (chunk: Buffer) => {
      if (chunk.toString("utf8").includes("probe")) done(true);
    });
    socket.once("error", () => done(false));
  });
}

/** Runs a command inside the namespace; resolves once `ready` appears on its output (bounded). */
function startInNamespace(command: string[], ready: RegExp): Promise<StartedProcess> {
  return startProcess(["ip", "netns", "exec", namespace, ...command], ready);
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

describe.skipIf(!canUseNamespaces)("connector across a network namespace (no inbound path)", () => {
  const key = generateConnectorKey();
  let dir: string;
  let harness: GatewayHarness;
  let service: ChildProcess | undefined;
  let webService: ChildProcess | undefined;
  let redis: ChildProcess | undefined;
  let tokenEndpoint: ActionsTokenEndpoint | undefined;
  let gitServer: ChildProcess | undefined;
  let repository: Awaited<ReturnType<typeof createBareRepository>> | undefined;
  let connector: StartedProcess | undefined;

  beforeAll(async () => {
    ip("netns", "add", namespace);
    ip("link", "add", edgeSide, "type", "veth", "peer", "name", connectorSide);
    ip("link", "set", connectorSide, "netns", namespace);
    ip("addr", "add", `${edgeAddress}/30`, "dev", edgeSide);
    ip("link", "set", edgeSide, "up");
    ip("netns", "exec", namespace, "ip", "addr", "add", `${connectorAddress}/30`, "dev", connectorSide);
    ip("netns", "exec", namespace, "ip", "link", "set", connectorSide, "up");
    ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up");
    // The private service's address exists only inside the namespace. The edge's side has no route to it:
    // this machine's default route would hand it to a gateway, so the private range is made unreachable
    // here, as it is for an edge on a public network.
    ip("netns", "exec", namespace, "ip", "addr", "add", `${serviceAddress}/32`, "dev", "lo");
    ip("route", "add", "unreachable", `${serviceAddress}/32`);

    dir = await mkdtemp(join(tmpdir(), "tollgate-netns-"));
    const keyFile = join(dir, "connector.key");
    await writeFile(keyFile, key.privateKeyPem, { mode: 0o600 });
    const echo = `require("node:net").createServer((s) => s.pipe(s)).listen(${servicePort}, "${serviceAddress}", () => console.log("echo ready"))`;
    service = (await startInNamespace([process.execPath, "-e", echo], /echo ready/)).child;
    const web = `require("node:http").createServer((req, res) => res.end("inside: " + req.method + " " + req.url)).listen(${webPort}, "${serviceAddress}", () => console.log("web ready"))`;
    webService = (await startInNamespace([process.execPath, "-e", web], /web ready/)).child;
    // Protected mode refuses clients from a non-loopback address without a password, and the connector is
    // one; the namespace reaches nothing else, so the test turns it off rather than set a password.
    redis = (
      await startInNamespace(
        [
          "redis-server",
          "--port",
          String(redisPort),
          "--bind",
          serviceAddress,
          "--protected-mode",
          "no",
          "--save",
          "",
          "--appendonly",
          "no",
        ],
        /Ready to accept connections/,
      )
    ).child;

    // The git server is a program of its own inside the namespace: the tests' git http-backend server,
    // bundled (node runs JavaScript), behind the private address.
    repository = await createBareRepository("cloned from inside the namespace\n");
    const gitServerBundle = join(dir, "namespace-git-server.mjs");
    await build({
      entryPoints: [join(repositoryRoot, "test/connector/namespace-git-server.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile: gitServerBundle,
      // Bundled dependencies written as CommonJS call require(), which an ES module must be given.
      banner: {
        js: 'import { createRequire } from "node:module"; const require = createRequire(import.meta.url);',
      },
      logLevel: "silent",
    });
    gitServer = (
      await startInNamespace(
        [process.execPath, gitServerBundle, repository.root, serviceAddress, String(gitPort)],
        /git ready/,
      )
    ).child;

    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}policies:
  ci: { claims: { repository_owner_id: 65 } }
connectors:
  - name: dc1
    public_keys: ["${key.publicKey}"]
tunnels:
  - name: private
    destinations: ["${serviceAddress}:${servicePort}", "${serviceAddress}:${redisPort}", "${serviceAddress}:${gitPort}"]
    allow: [ci]
    via: dc1
routes:
  - name: inside
    path_prefix: /inside/
    upstream: http://${serviceAddress}:${webPort}
    allow: [ci]
    via: dc1
`,
      { host: edgeAddress },
    );
    connector = await startInNamespace(
      [
        process.execPath,
        cliPath,
        "connector",
        "--edge",
        harness.url,
        "--pool",
        "dc1",
        "--key",
        keyFile,
        "--allow",
        `${serviceAddress}:${servicePort}`,
        "--allow",
        `${serviceAddress}:${webPort}`,
        "--allow",
        `${serviceAddress}:${redisPort}`,
        "--allow",
        `${serviceAddress}:${gitPort}`,
      ],
      /connected to the edge/,
    );
  }, 60_000);

  afterAll(async () => {
    await stop(connector?.child);
    await stop(service);
    await stop(webService);
    await stop(redis);
    await stop(gitServer);
    await repository?.close();
    await tokenEndpoint?.close();
    await harness?.close();
    try {
      ip("route", "del", "unreachable", `${serviceAddress}/32`);
    } catch {
      // Not added (setup failed before it).
    }
    try {
      ip("netns", "del", namespace);
    } catch {
      // Already gone (the veth pair goes with it).
    }
    try {
      ip("link", "del", edgeSide);
    } catch {
      // Deleted with the namespace.
    }
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it("the edge's side cannot reach the private service directly; inside the namespace it answers", async () => {
    expect(await reachable(serviceAddress, servicePort, 1_500)).toBe(false);
    // Twin: the service is there, for whoever is inside.
    const inside = execFileSync(
      "ip",
      [
        "netns",
        "exec",
        namespace,
        process.execPath,
        "-e",
        `const s = require("node:net").connect(${servicePort}, "${serviceAddress}", () => s.write("probe")); s.on("data", (d) => { process.stdout.write(d); s.destroy(); });`,
      ],
      { encoding: "utf8", timeout: 10_000 },
    );
    expect(inside).toBe("probe");
  });

  it("a workflow's CONNECT through the edge reaches it through the connector, which dialled out", async () => {
    const token = await harness.mint();
    const answer = await rawConnect(
      Number(new URL(harness.url).port),
      `${serviceAddress}:${servicePort}`,
      { "proxy-authorization": `Bearer ${token}` },
      edgeAddress,
    );
    expect(answer.status).toBe(200);
    expect(await echoRoundTrip(answer.socket, "no inbound path", answer.rest)).toBe("no inbound path");
    answer.socket.end();
    await closed(answer.socket);
    const events = await eventually(
      () => harness.auditEvents(),
      (list) => list.some((event) => event.event === "tunnel.close"),
    );
    expect(events.find((event) => event.event === "tunnel.open" && event.decision === "allow")).toMatchObject(
      {
        connector_pool: "dc1",
        upstream: `${serviceAddress}:${servicePort} via dc1`,
      },
    );
    // The connector's own line names the destination and the workflow behind it.
    await eventually(
      async () => connector!.output(),
      (text) => text.includes('"event":"connector.stream"') && text.includes("octo-org/octo-repo"),
    );
    expect(connector!.output()).toContain(`"destination":"${serviceAddress}:${servicePort}"`);
  });

  it("curl through a route reaches the web service inside, through the connector", async () => {
    const token = await harness.mint();
    // Asynchronously: the edge runs in this process and must answer while curl waits.
    const { stdout: output } = await runFile(
      "curl",
      [
        "-sS",
        "-H",
        `Gateway-Authorization: Bearer ${token}`,
        "-w",
        "\\n%{http_code}",
        `${harness.url}/inside/hello`,
      ],
      { encoding: "utf8", timeout: 15_000 },
    );
    expect(output).toBe("inside: GET /inside/hello\n200");
  });

  it("redis-cli through `tollgate forward` (a workflow's client, its token from the Actions endpoint) reaches redis-server inside", async () => {
    tokenEndpoint = await startActionsTokenEndpoint(harness.issuer);
    const forward = await startCli(
      ["forward", `0:${serviceAddress}:${redisPort}`, "--gateway", harness.url, "--audience", testAudience],
      { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...tokenEndpoint.env() },
    );
    try {
      const local = /^127\.0\.0\.1:(\d+) -> /.exec(forward.stdout())?.[1];
      expect(local).toBeDefined();
      const cli = (...args: string[]) =>
        runTool("redis-cli", ["-h", "127.0.0.1", "-p", local!, ...args], { PATH: process.env.PATH ?? "" });
      expect((await cli("SET", "connector", "outbound-only")).stdout.trim()).toBe("OK");
      expect((await cli("GET", "connector")).stdout.trim()).toBe("outbound-only");
    } finally {
      await forward.stop();
    }
  });

  it("git clone through `tollgate proxy` (http_proxy) reaches the git server inside, through the connector", async () => {
    tokenEndpoint ??= await startActionsTokenEndpoint(harness.issuer);
    const proxy = await startCli(
      ["proxy", "--gateway", harness.url, "--audience", testAudience],
      { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...tokenEndpoint.env() },
      2,
    );
    const work = await mkdtemp(join(tmpdir(), "tollgate-netns-clone-"));
    try {
      const proxyUrl = /^HTTPS_PROXY=(\S+)$/m.exec(proxy.stdout())?.[1];
      expect(proxyUrl).toBeDefined();
      const url = `http://${serviceAddress}:${gitPort}/repo.git`;
      const clone = await runTool(
        "git",
        ["clone", "-q", url, join(work, "repo")],
        gitEnv(work, { http_proxy: proxyUrl! }),
        {
          timeoutMs: 30_000,
        },
      );
      expect(clone.stderr).toBe("");
      expect(clone.code).toBe(0);
      expect(await readFile(join(work, "repo/README.md"), "utf8")).toBe("cloned from inside the namespace\n");
      // The edge forwarded git's requests through the pool, never to the address itself.
      const events = await harness.auditEvents();
      expect(events).toContainEqual(
        expect.objectContaining({
          event: "gateway.request",
          decision: "allow",
          destination: `${serviceAddress}:${gitPort}`,
          connector_pool: "dc1",
        }),
      );
      // Twin: the same clone without the proxy has no path from this side.
      const direct = await runTool("git", ["clone", "-q", url, join(work, "direct")], gitEnv(work), {
        timeoutMs: 30_000,
      });
      expect(direct.code).not.toBe(0);
    } finally {
      await proxy.stop();
      await rm(work, { recursive: true, force: true });
    }
  });

  it("twin: with the connector gone, the same CONNECT is 502 TG_CONNECTOR_UNAVAILABLE (the edge never dials itself)", async () => {
    await stop(connector?.child);
    await eventually(
      async () => JSON.stringify(await fetch(`${harness.url}/readyz`).then((res) => res.json())),
      (text) => text.includes('"dc1":0'),
    );
    const token = await harness.mint();
    const answer = await rawConnect(
      Number(new URL(harness.url).port),
      `${serviceAddress}:${servicePort}`,
      { "proxy-authorization": `Bearer ${token}` },
      edgeAddress,
    );
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body).error.code).toBe("TG_CONNECTOR_UNAVAILABLE");
  });
});

if (!canUseNamespaces) {
  describe("connector across a network namespace", () => {
    it.skip("needs root and iproute2 (ip netns) — skipped here; CI runs it as root", () => undefined);
  });
}
