import { execFile } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer as createHttpServer, request, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { eventually } from "./helpers.js";

const run = promisify(execFile);

/**
 * Real clients through the real gateway: curl through HTTPS_PROXY (CONNECT, then TLS end to end with a
 * certificate generated here) and through http_proxy (absolute-form forward proxying), against loopback
 * servers. The gateway uses the built-in feature with the system resolver.
 */
describe("curl through the gateway", () => {
  let harness: GatewayHarness;
  let dir: string;
  let tls: Server;
  let plain: Server;
  let unnamed: Server;
  let token: string;
  const seen: {
    method?: string;
    url?: string;
    headers: Record<string, string | string[] | undefined>;
    body: string;
  }[] = [];

  const portOf = (server: Server) => (server.address() as AddressInfo).port;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tollgate-tunnel-tls-"));
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ]);
    tls = createHttpsServer(
      { key: await readFile(join(dir, "key.pem")), cert: await readFile(join(dir, "cert.pem")) },
      (req, res) => res.end(`tls ok ${req.url}`),
    );
    const record = (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (chunk: string) => (body += chunk));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, headers: req.headers, body });
        res.setHeader("x-upstream", "plain");
        res.setHeader("connection", "keep-alive, x-hop");
        res.setHeader("x-hop", "must not reach the client");
        res.end(`plain ok ${req.url}`);
      });
    };
    plain = createHttpServer(record);
    unnamed = createHttpServer(record);
    for (const server of [tls, plain, unnamed]) {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
    }
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  ci: { claims: { repository_owner_id: 65 } }
tunnels:
  - name: local
    destinations: ["127.0.0.1:${portOf(tls)}", "127.0.0.1:${portOf(plain)}"]
    allow: [ci]
`,
    );
    token = await harness.mint();
  });
  afterAll(async () => {
    await harness?.close();
    for (const server of [tls, plain, unnamed]) server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const gateway = () => `127.0.0.1:${harness.running.address.port}`;
  /** curl with a clean proxy environment plus `env`; resolves with stdout, the status code last. */
  async function curl(
    args: string[],
    env: Record<string, string> = {},
    statusVariable = "http_code",
  ): Promise<{ body: string; status: number }> {
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !/_proxy$/i.test(name)),
    ) as NodeJS.ProcessEnv;
    const { stdout } = await run(
      "curl",
      ["-sS", "--max-time", "10", "-w", `\n%{${statusVariable}}`, ...args],
      {
        env: { ...clean, ...env },
      },
    ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? "" }));
    const cut = stdout.lastIndexOf("\n");
    return { body: stdout.slice(0, cut), status: Number(stdout.slice(cut + 1)) };
  }

  it("carries HTTPS through HTTPS_PROXY with the token as the proxy password (Basic)", async () => {
    const result = await curl(
      ["--cacert", join(dir, "cert.pem"), `https://127.0.0.1:${portOf(tls)}/secure?x=1`],
      {
        HTTPS_PROXY: `http://oidc:${token}@${gateway()}`,
      },
    );
    expect(result).toEqual({ body: "tls ok /secure?x=1", status: 200 });
  });

  it("carries HTTPS with -x and --proxy-header Proxy-Authorization: Bearer", async () => {
    const result = await curl([
      "-x",
      `http://${gateway()}`,
      "--proxy-header",
      `Proxy-Authorization: Bearer ${token}`,
      "--cacert",
      join(dir, "cert.pem"),
      `https://127.0.0.1:${portOf(tls)}/`,
    ]);
    expect(result).toEqual({ body: "tls ok /", status: 200 });
  });

  it("fails the CONNECT with 407 when curl has no credential (the twin)", async () => {
    const result = await curl(
      ["-x", `http://${gateway()}`, "-k", `https://127.0.0.1:${portOf(tls)}/`],
      {},
      "http_connect",
    );
    expect(result.status).toBe(407);
  });

  it("forwards plain HTTP in absolute form through http_proxy, stripping proxy credentials and hop-by-hop headers", async () => {
    seen.length = 0;
    const result = await curl(
      [
        "-H",
        "Authorization: Bearer for-the-destination",
        "-H",
        "Connection: x-drop-me",
        "-H",
        "X-Drop-Me: 1",
        "--data-binary",
        "payload-123",
        `http://127.0.0.1:${portOf(plain)}/api/items?limit=5`,
      ],
      { http_proxy: `http://oidc:${token}@${gateway()}` },
    );
    expect(result).toEqual({ body: "plain ok /api/items?limit=5", status: 200 });
    const received = seen.at(-1)!;
    expect(received).toMatchObject({ method: "POST", url: "/api/items?limit=5", body: "payload-123" });
    expect(received.headers.host).toBe(`127.0.0.1:${portOf(plain)}`);
    expect(received.headers.authorization).toBe("Bearer for-the-destination");
    expect(received.headers["proxy-authorization"]).toBeUndefined();
    expect(received.headers["x-drop-me"]).toBeUndefined();
    expect(JSON.stringify(received.headers)).not.toContain(token);
    const events = await eventually(
      () => harness.auditEvents(),
      (list) => list.some((event) => event.event === "gateway.request" && event.tunnel === "local"),
    );
    expect(
      events.find((event) => event.event === "gateway.request" && event.tunnel === "local"),
    ).toMatchObject({
      decision: "allow",
      status: 200,
      destination: `127.0.0.1:${portOf(plain)}`,
      path: "/api/items?limit=5",
      bytes_in: 11,
      bytes_out: result.body.length,
    });
  });

  it("refuses forward proxying to a loopback port no destination names (the deny twin)", async () => {
    seen.length = 0;
    const result = await curl([`http://127.0.0.1:${portOf(unnamed)}/`], {
      http_proxy: `http://oidc:${token}@${gateway()}`,
    });
    expect(result.status).toBe(403);
    expect(JSON.parse(result.body)).toMatchObject({ error: { code: "TG_TUNNEL_DESTINATION_FORBIDDEN" } });
    expect(seen).toEqual([]);
  });

  it("answers a forward request without a credential with 407 and Proxy-Authenticate", async () => {
    const answer = await absoluteForm(`http://127.0.0.1:${portOf(plain)}/`, {});
    expect(answer.status).toBe(407);
    expect(answer.headers["proxy-authenticate"]).toBe('Bearer realm="tollgate", Basic realm="tollgate"');
  });

  it("drops hop-by-hop response headers and those the destination's Connection names", async () => {
    const answer = await absoluteForm(`http://127.0.0.1:${portOf(plain)}/h`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(answer.status).toBe(200);
    expect(answer.headers["x-upstream"]).toBe("plain");
    expect(answer.headers["x-hop"]).toBeUndefined();
  });

  it("refuses https:// in absolute form (that is what CONNECT is for)", async () => {
    const answer = await absoluteForm(`https://127.0.0.1:${portOf(tls)}/`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: "TG_TUNNEL_TARGET_INVALID" } });
  });

  /** One request in absolute form with node:http (the proxy is the connection, the URL is the path). */
  function absoluteForm(
    url: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port: harness.running.address.port, path: url, headers },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on("error", reject);
      req.end();
    });
  }
});
