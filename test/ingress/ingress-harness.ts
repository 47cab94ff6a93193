import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { sha256Hex } from "../../src/lib/sha256.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";

// Runs the configurations in examples/ingress/ as they are, with only their addresses (and, in tollgate's,
// the issuer and owner id of the dev issuer's tokens, and one audit line per denial) rewritten: what these
// tests prove is what users copy.

export const examplesDir = new URL("../../examples/ingress/", import.meta.url);

/** The first of `names` that exists, searching PATH and the sbin folders (nginx lives in /usr/sbin). */
export function findBinary(...names: string[]): string | undefined {
  const folders = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/local/sbin", "/sbin"];
  for (const name of names) {
    for (const folder of folders) {
      if (folder !== "" && existsSync(join(folder, name))) return join(folder, name);
    }
  }
  return undefined;
}

/** tollgate with examples/ingress/tollgate.yaml, trusting the dev issuer instead of GitHub's. */
export async function startExampleTollgate(): Promise<GatewayHarness> {
  const example = await readFile(new URL("tollgate.yaml", examplesDir), "utf8");
  const issuersAt = example.indexOf("issuers:\n");
  const serverAt = example.indexOf("server:\n");
  if (issuersAt < 0 || serverAt < issuersAt || !example.includes("repository_owner_id: 5678")) {
    throw new Error("examples/ingress/tollgate.yaml changed shape: update test/ingress/ingress-harness.ts");
  }
  return startGatewayHarness((issuerUrl) =>
    `${example.slice(0, issuersAt)}${devIssuerYaml(issuerUrl)}${example.slice(serverAt)}`
      // The dev issuer's GitHub-like tokens are from owner 65.
      .replace("repository_owner_id: 5678", "repository_owner_id: 65")
      // One audit line per denial (not folded into counted lines), so the tests can count tollgate's answers.
      .concat("audit:\n  denials: { window: 0s }\n"),
  );
}

/** A free loopback port (closed again at once; the server started next binds it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A server process the test started, killed (TERM) by `stop`. */
export interface ServerProcess {
  readonly port: number;
  readonly dir: string;
  output(): string;
  stop(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}): ${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`server did not listen on ${port}: ${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function startServer(command: string, args: string[], env = process.env) {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env });
  let text = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    text = (text + chunk.toString()).slice(-8192);
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    text = (text + chunk.toString()).slice(-8192);
  });
  return { child, output: () => text };
}

async function stopServer(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    // TERM, not KILL: nginx's master stops its worker on TERM; a killed master leaves the worker behind.
    child.kill("SIGTERM");
    await exited;
  }
  await rm(dir, { recursive: true, force: true });
}

/**
 * Debian's nginx with examples/ingress/nginx/tollgate-auth.conf included in a minimal http {} block of a
 * temporary prefix, the example's addresses replaced by the test's.
 */
export async function startExampleNginx(
  binary: string,
  ports: { tollgate: number; upstream: number },
  variant: { example: string; mainContext: string } = { example: "tollgate-auth.conf", mainContext: "" },
): Promise<ServerProcess> {
  const dir = await mkdtemp(join(tmpdir(), "tollgate-nginx-"));
  const port = await freePort();
  const example = await readFile(new URL(`nginx/${variant.example}`, examplesDir), "utf8");
  const cacheDir = join(dir, "auth-cache");
  const conf = replaceAll(example, {
    // The Lua variant keeps decisions in memory and has no cache folder.
    ...(example.includes("proxy_cache_path") ? { "/var/cache/nginx/tollgate-auth": cacheDir } : {}),
    "server 127.0.0.1:8080;": `server 127.0.0.1:${ports.tollgate};`,
    "server 127.0.0.1:9000;": `server 127.0.0.1:${ports.upstream};`,
    "listen 80;": `listen 127.0.0.1:${port};`,
  });
  await writeFile(join(dir, "tollgate-auth.conf"), conf);
  const temp = ["client_body", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"];
  await writeFile(
    join(dir, "nginx.conf"),
    `${variant.mainContext}worker_processes 1;
daemon off;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 256; }
http {
  access_log off;
${temp.map((name) => `  ${name === "client_body" ? "client_body_temp" : name}_path ${join(dir, name)};`).join("\n")}
  include ${join(dir, "tollgate-auth.conf")};
}
`,
  );
  // As root, nginx's workers run as nobody: the cache and temporary folders must be theirs (and the
  // temporary prefix, 0700 from mkdtemp, traversable).
  if (process.getuid?.() === 0) await chmod(dir, 0o755);
  for (const folder of [cacheDir, ...temp.map((name) => join(dir, name))]) {
    await mkdir(folder, { recursive: true });
    if (process.getuid?.() === 0) await chown(folder, 65534, 65534);
  }
  const { child, output } = startServer(binary, [
    "-p",
    dir,
    "-c",
    join(dir, "nginx.conf"),
    "-e",
    join(dir, "early.log"),
  ]);
  const errors = async () => output() + (await readFile(join(dir, "error.log"), "utf8").catch(() => ""));
  await waitForPort(port, child, output).catch(async (error: Error) => {
    await stopServer(child, dir);
    throw new Error(`${error.message}\n${await errors()}`);
  });
  return { port, dir, output, stop: () => stopServer(child, dir) };
}

/** Debian's caddy with examples/ingress/caddy/Caddyfile, the example's addresses replaced by the test's. */
export async function startExampleCaddy(
  binary: string,
  ports: { tollgate: number; upstream: number },
): Promise<ServerProcess> {
  const dir = await mkdtemp(join(tmpdir(), "tollgate-caddy-"));
  const port = await freePort();
  const example = await readFile(new URL("caddy/Caddyfile", examplesDir), "utf8");
  const caddyfile = replaceAll(example, {
    ":80 {": `http://127.0.0.1:${port} {`,
    "forward_auth 127.0.0.1:8080": `forward_auth 127.0.0.1:${ports.tollgate}`,
    "reverse_proxy 127.0.0.1:9000": `reverse_proxy 127.0.0.1:${ports.upstream}`,
  });
  await writeFile(join(dir, "Caddyfile"), caddyfile);
  // Caddy keeps its state under HOME / XDG folders: the temporary folder, not the user's.
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
  const { child, output } = startServer(
    binary,
    ["run", "--config", join(dir, "Caddyfile"), "--adapter", "caddyfile"],
    env,
  );
  await waitForPort(port, child, output).catch(async (error: Error) => {
    await stopServer(child, dir);
    throw error;
  });
  return { port, dir, output, stop: () => stopServer(child, dir) };
}

function replaceAll(text: string, replacements: Record<string, string>): string {
  let out = text;
  for (const [from, to] of Object.entries(replacements)) {
    if (!out.includes(from)) throw new Error(`the example no longer contains ${JSON.stringify(from)}`);
    out = out.split(from).join(to);
  }
  return out;
}

/** An upstream, tollgate and an ingress in front of them, started by {@link useIngress} for one suite. */
export interface IngressSetup {
  readonly tollgate: GatewayHarness;
  readonly upstream: RecordingUpstream;
  /** A request to the ingress. */
  send(
    path: string,
    headers: Record<string, string>,
    method?: string,
  ): Promise<{ status: number; headers: Headers; text: string }>;
  /** The forward-auth subrequests tollgate answered for this token (its audit lines). */
  askedFor(token: string): Promise<number>;
}

/**
 * Starts a recording upstream, tollgate with the example configuration and the ingress (`start`) before
 * the suite's tests, and stops them after; the returned object reads them once started.
 */
export function useIngress(
  start: (ports: { tollgate: number; upstream: number }) => Promise<ServerProcess>,
): IngressSetup {
  let tollgate: GatewayHarness | undefined;
  let upstream: RecordingUpstream | undefined;
  let proxy: ServerProcess | undefined;
  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    tollgate = await startExampleTollgate();
    proxy = await start({ tollgate: tollgate.running.address.port, upstream: upstream.port });
  });
  afterAll(async () => {
    await proxy?.stop();
    await tollgate?.close();
    await upstream?.close();
  });
  return {
    get tollgate() {
      return tollgate!;
    },
    get upstream() {
      return upstream!;
    },
    async send(path, headers, method = "GET") {
      const response = await fetch(`http://127.0.0.1:${proxy!.port}${path}`, { method, headers });
      return { status: response.status, headers: response.headers, text: await response.text() };
    },
    async askedFor(token) {
      const hash = sha256Hex(token);
      const lines = await tollgate!.auditEvents();
      return lines.filter((line) => line.forward_auth === true && line.token_sha256 === hash).length;
    },
  };
}

/** A request without a token gets 401 with tollgate's Bearer challenge, and never reaches the upstream. */
export async function expectMissingTokenChallenged(setup: IngressSetup): Promise<void> {
  const seen = setup.upstream.seen.length;
  const answer = await setup.send("/artifacts/build.zip", {});
  expect(answer.status).toBe(401);
  expect(answer.headers.get("www-authenticate")).toContain("Bearer");
  expect(setup.upstream.seen.length).toBe(seen);
}

/**
 * An ingress that keeps tollgate's answers asks once per credential, route and method: the same token
 * four times is one question; another token (the deny twin: never answered from another's entry) and
 * another method are asked again. Every caching ingress example must pass this.
 */
export async function expectAnswersKeptPerCredential(
  setup: IngressSetup,
  runIds: [string, string],
): Promise<void> {
  const first = await setup.tollgate.mint({ run_id: runIds[0] });
  const second = await setup.tollgate.mint({ run_id: runIds[1] });
  const withToken = (token: string) => ({ "gateway-authorization": `Bearer ${token}` });
  for (let i = 0; i < 4; i++)
    expect((await setup.send(`/artifacts/k${i}`, withToken(first))).status).toBe(200);
  expect(await setup.askedFor(first)).toBe(1);
  expect((await setup.send("/artifacts/k0", withToken(second))).status).toBe(200);
  expect(await setup.askedFor(second)).toBe(1);
  expect(
    setup.upstream.seen.filter((request) => request.headers["tollgate-claim-run_id"] === runIds[1]),
  ).toHaveLength(1);
  // The method is part of the key: a PUT is decided on its own.
  expect((await setup.send("/artifacts/k0", withToken(first), "PUT")).status).toBe(200);
  expect(await setup.askedFor(first)).toBe(2);
}

/**
 * A client's own Tollgate-Claim-* headers never reach the upstream: one the token has a claim for is
 * replaced by tollgate's value, one it has no claim for is dropped. Every ingress example must pass this.
 */
export async function expectClientClaimsReplaced(setup: IngressSetup): Promise<void> {
  const withoutRunId = await setup.tollgate.mint({ run_id: undefined });
  const answer = await setup.send("/artifacts/spoof", {
    "gateway-authorization": `Bearer ${withoutRunId}`,
    "tollgate-claim-repository": "octo-org/admin-tools",
    "tollgate-claim-run_id": "1",
  });
  expect(answer.status).toBe(200);
  const request = setup.upstream.seen.at(-1)!;
  expect(request.url).toBe("/artifacts/spoof");
  expect(request.headers["tollgate-claim-repository"]).toBe("octo-org/octo-repo");
  expect(request.headers["tollgate-claim-run_id"]).toBeUndefined();
}

/**
 * A client cannot have tollgate decide on another request than the one the ingress carries: headers of
 * the other ingresses' conventions it adds (the ingress passes them on) make tollgate refuse, and the
 * request never reaches the upstream. The route allows GET, HEAD and PUT; the client sends DELETE and
 * claims GET, and claims a path under the route for a path outside it.
 */
export async function expectClientCannotRenameRequest(setup: IngressSetup): Promise<void> {
  const token = await setup.tollgate.mint();
  const seen = setup.upstream.seen.length;
  const claims: Record<string, string>[] = [
    { "x-original-method": "GET", "x-forwarded-method": "GET" },
    {
      "x-original-uri": "/artifacts/a",
      "x-forwarded-uri": "/artifacts/a",
      "x-original-url": "http://h/artifacts/a",
    },
  ];
  for (const headers of claims) {
    const answer = await setup.send(
      "/artifacts/a",
      { "gateway-authorization": `Bearer ${token}`, ...headers },
      "DELETE",
    );
    expect(answer.status).toBeGreaterThanOrEqual(400);
  }
  expect(setup.upstream.seen.length).toBe(seen);
  // Allow twin: the same token and path with an allowed method passes.
  expect(
    (await setup.send("/artifacts/a", { "gateway-authorization": `Bearer ${token}` }, "PUT")).status,
  ).toBe(200);
  expect(setup.upstream.seen.length).toBe(seen + 1);
}
