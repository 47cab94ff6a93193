import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { type AddressInfo, connect as connectTcp } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as connectTls } from "node:tls";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";
import { startGateway } from "../../src/server/index.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { createTestCertificates, type TestCertificates } from "../helpers/tls-fixture.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";

const run = promisify(execFile);

/** curl with no proxy from the environment; resolves with the body and the status (0: no HTTP answer). */
async function curl(
  args: string[],
  statusVariable = "http_code",
): Promise<{ body: string; status: number; stderr: string }> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/_proxy$/i.test(name)),
  ) as NodeJS.ProcessEnv;
  const { stdout, stderr } = await run(
    "curl",
    ["-sS", "--max-time", "10", "-w", `\n%{${statusVariable}}`, ...args],
    {
      env: clean,
    },
  ).catch((error: { stdout?: string; stderr?: string }) => ({
    stdout: error.stdout ?? "",
    stderr: error.stderr ?? "",
  }));
  const cut = stdout.lastIndexOf("\n");
  return { body: stdout.slice(0, cut), status: Number(stdout.slice(cut + 1)), stderr };
}

/** The SHA-256 fingerprint of the certificate the gateway presents to a new connection. */
async function servedFingerprint(port: number, cas: string[]): Promise<string> {
  const socket = connectTls({ host: "127.0.0.1", port, servername: "localhost", ca: cas });
  try {
    await once(socket, "secureConnect");
    return socket.getPeerX509Certificate()!.fingerprint256;
  } finally {
    socket.destroy();
  }
}

describe("listen.tls: the gateway speaks HTTPS itself", () => {
  let first: TestCertificates;
  let renewed: TestCertificates;
  let stranger: TestCertificates;
  let dir: string;
  let certFile: string;
  let keyFile: string;
  let upstream: RecordingUpstream;
  let echo: Server;
  let harness: GatewayHarness;
  let token: string;
  const portOf = (server: Server) => (server.address() as AddressInfo).port;
  const gatewayPort = () => harness.running.address.port;

  beforeAll(async () => {
    [first, renewed, stranger] = await Promise.all([
      createTestCertificates(),
      createTestCertificates(),
      createTestCertificates(),
    ]);
    dir = await mkdtemp(join(tmpdir(), "tollgate-listen-tls-"));
    certFile = join(dir, "fullchain.pem");
    keyFile = join(dir, "privkey.pem");
    await writeFile(certFile, first.certPem);
    await writeFile(keyFile, first.keyPem);
    upstream = await startRecordingUpstream();
    echo = createHttpServer((req, res) => res.end(`echo ${req.url}`));
    echo.listen(0, "127.0.0.1");
    await once(echo, "listening");
    harness = await startGatewayHarness(
      (issuerUrl) => `listen:
  tls:
    cert: ${certFile}
    key: ${keyFile}
${devIssuerYaml(issuerUrl)}
policies:
  ci: { claims: { repository_owner_id: 65 } }
routes:
  - name: artifacts
    path_prefix: /artifacts/
    upstream: ${upstream.url}
    allow: [ci]
tunnels:
  - name: local
    destinations: ["127.0.0.1:${portOf(echo)}"]
    allow: [ci]
`,
      // One second instead of the default ten, so the stalled-handshake test need not wait ten.
      { tlsHandshakeTimeoutMs: 1_000 },
    );
    token = await harness.mint();
  });
  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
    echo?.close();
    await Promise.all([first, renewed, stranger].map((certs) => certs?.close()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("serves a route over HTTPS, and tells the upstream the client spoke https", async () => {
    const result = await curl([
      "--cacert",
      first.caFile,
      "-H",
      `Gateway-Authorization: Bearer ${token}`,
      `https://127.0.0.1:${gatewayPort()}/artifacts/latest`,
    ]);
    expect(result).toMatchObject({ body: "hello from upstream", status: 200 });
    expect(upstream.seen.at(-1)?.headers["x-forwarded-proto"]).toBe("https");
  });

  it("the policy still decides over HTTPS: a look-alike owner gets 403", async () => {
    const lookalike = await harness.mint({ repository_owner_id: 999 });
    const before = upstream.seen.length;
    const result = await curl([
      "--cacert",
      first.caFile,
      "-H",
      `Gateway-Authorization: Bearer ${lookalike}`,
      `https://127.0.0.1:${gatewayPort()}/artifacts/latest`,
    ]);
    expect(result.status).toBe(403);
    expect(upstream.seen.length).toBe(before);
  });

  it("plain HTTP on the TLS port gets no HTTP answer, and nothing reaches the upstream", async () => {
    const before = upstream.seen.length;
    const result = await curl([
      "-H",
      `Gateway-Authorization: Bearer ${token}`,
      `http://127.0.0.1:${gatewayPort()}/artifacts/latest`,
    ]);
    expect(result.status).toBe(0);
    expect(upstream.seen.length).toBe(before);
  });

  it("a client that does not speak TLS is dropped at once, not left waiting for a handshake", async () => {
    const socket = connectTcp(gatewayPort(), "127.0.0.1");
    await once(socket, "connect");
    socket.on("error", () => {});
    socket.write("GET /artifacts/latest HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    const closedInTime = await Promise.race([
      once(socket, "close").then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3_000)),
    ]);
    socket.destroy();
    expect(closedInTime).toBe(true);
  });

  it("a handshake that stalls half-way is cut after the handshake timeout, and the socket really closes", async () => {
    const socket = connectTcp(gatewayPort(), "127.0.0.1");
    await once(socket, "connect");
    socket.on("error", () => {});
    const closed = once(socket, "close");
    // The first bytes of a ClientHello record, then silence.
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01]));
    const started = Date.now();
    const closedInTime = await Promise.race([
      closed.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 8_000)),
    ]);
    socket.destroy();
    expect(closedInTime).toBe(true);
    // Not before the timeout (1 s here; 10 s by default, defaultTlsHandshakeTimeoutMs).
    expect(Date.now() - started).toBeGreaterThan(800);
  });

  it("carries a CONNECT tunnel over TLS to the proxy (curl --proxy https://…)", async () => {
    const result = await curl([
      "--proxy",
      `https://127.0.0.1:${gatewayPort()}`,
      "--proxy-cacert",
      first.caFile,
      "--proxy-header",
      `Proxy-Authorization: Bearer ${token}`,
      "--proxytunnel",
      `http://127.0.0.1:${portOf(echo)}/through-tls`,
    ]);
    expect(result).toMatchObject({ body: "echo /through-tls", status: 200 });
    // The twin: a destination the tunnel does not list is refused over TLS too.
    const refused = await curl(
      [
        "--proxy",
        `https://127.0.0.1:${gatewayPort()}`,
        "--proxy-cacert",
        first.caFile,
        "--proxy-header",
        `Proxy-Authorization: Bearer ${token}`,
        "--proxytunnel",
        `http://127.0.0.1:${portOf(echo) === 1 ? 2 : 1}/nowhere`,
      ],
      "http_connect",
    );
    expect(refused.status).toBe(403);
  });

  it("a reload picks up a renewed certificate at the same paths; a key that does not fit is refused", async () => {
    const cas = [first.caPem, renewed.caPem, stranger.caPem];
    expect(await servedFingerprint(gatewayPort(), cas)).toBe(
      new X509Certificate(first.certPem).fingerprint256,
    );

    await writeFile(certFile, renewed.certPem);
    await writeFile(keyFile, renewed.keyPem);
    const outcome = await harness.running.reload(harness.config);
    expect(outcome.restartNeeded).toEqual([]);
    expect(await servedFingerprint(gatewayPort(), cas)).toBe(
      new X509Certificate(renewed.certPem).fingerprint256,
    );

    // The twin: a key of another certificate makes the reload fail, and the renewed pair stays in use.
    await copyFile(stranger.dir + "/server.key", keyFile);
    await expect(harness.running.reload(harness.config)).rejects.toMatchObject({
      code: "TG_CONFIG_INVALID",
      message: expect.stringContaining("does not belong to the certificate"),
    });
    expect(await servedFingerprint(gatewayPort(), cas)).toBe(
      new X509Certificate(renewed.certPem).fingerprint256,
    );
    await writeFile(keyFile, renewed.keyPem);
  });
});

describe("listen.tls and a graceful stop", () => {
  it("a client that connected and never began its handshake does not hold the stop open", async () => {
    const certs = await createTestCertificates();
    const harness = await startGatewayHarness(
      (issuerUrl) => `listen:
  tls: { cert: ${join(certs.dir, "server.pem")}, key: ${join(certs.dir, "server.key")} }
server: { shutdown_grace: 500ms }
${devIssuerYaml(issuerUrl)}`,
    );
    const silent = connectTcp(harness.running.address.port, "127.0.0.1");
    silent.on("error", () => {});
    try {
      await once(silent, "connect");
      const dropped = once(silent, "close");
      const started = Date.now();
      await harness.close();
      expect(Date.now() - started).toBeLessThan(5_000);
      await dropped;
    } finally {
      silent.destroy();
      await certs.close();
    }
  });
});

describe("listen.tls problems stop the start, naming the setting and never the files' content", () => {
  let certs: TestCertificates;
  let other: TestCertificates;
  beforeAll(async () => {
    [certs, other] = await Promise.all([createTestCertificates(), createTestCertificates()]);
  });
  afterAll(async () => {
    await Promise.all([certs?.close(), other?.close()]);
  });

  const configWith = (cert: string, key: string) => {
    const compiled = compileConfigText(
      `listen:
  tls: { cert: ${cert}, key: ${key} }
${devIssuerYaml("http://127.0.0.1:9")}
`,
      { env: {}, sourceName: "test.yaml" },
    );
    if (compiled.config === undefined) throw new Error(JSON.stringify(compiled.problems));
    return compiled.config;
  };

  it("a missing certificate file", async () => {
    const missing = join(certs.dir, "no-such.pem");
    await expect(
      startGateway(configWith(missing, join(certs.dir, "server.key")), {
        listen: { host: "127.0.0.1", port: 0 },
      }),
    ).rejects.toMatchObject({
      code: "TG_CONFIG_INVALID",
      message: `listen.tls.cert: cannot read ${missing} (ENOENT)`,
    });
  });

  it("a key that belongs to another certificate, without either file's content in the message", async () => {
    const failure = await startGateway(
      configWith(join(certs.dir, "server.pem"), join(other.dir, "server.key")),
      { listen: { host: "127.0.0.1", port: 0 } },
    ).then(
      async (running) => {
        await running.close();
        throw new Error("the gateway started with a key that does not fit its certificate");
      },
      (error: unknown) => error as Error & { code: string },
    );
    expect(failure).toMatchObject({ code: "TG_CONFIG_INVALID" });
    expect(failure.message).toContain("does not belong to the certificate");
    expect(failure.message).not.toContain("BEGIN");
    expect(failure.message).not.toContain(other.keyPem.split("\n")[1]!);
  });
});
