import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";
import { type RunningConnector, startConnector } from "../../src/connector/index.js";
import { createDevIssuer, type DevIssuer } from "../../src/dev/dev-issuer.js";
import { sha256Hex } from "../../src/lib/sha256.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";
import { eventually } from "../tunnel/helpers.js";
import { capturedLogger, patterns, startConnectorProcess, tokenForms } from "./helpers.js";

/**
 * A connector that authenticates with its platform's OIDC token instead of a key: a Kubernetes-shaped
 * projected service-account token from a real local issuer (`cluster`), in a file the connector reads at
 * every challenge. The edge verifies it with its issuers and admits it by the pool's policies; each
 * refusal has its test, and no token reaches a log.
 */

const connectorAudience = "tollgate-connector";
const serviceAccount = "system:serviceaccount:tollgate:connector";

/** The claims of a Kubernetes projected service-account token (`serviceAccountToken` volume). */
function kubernetesClaims(namespace: string, name: string): Record<string, unknown> {
  return {
    sub: `system:serviceaccount:${namespace}:${name}`,
    "kubernetes.io": {
      namespace,
      pod: { name: `${name}-7d9f8b6c5-x2x9k`, uid: "8a1c2d3e-0000-4000-8000-000000000001" },
      serviceaccount: { name, uid: "8a1c2d3e-0000-4000-8000-000000000002" },
    },
  };
}

describe("connectors authenticated by a platform OIDC token (--token-file)", () => {
  let cluster: DevIssuer;
  let stranger: DevIssuer;
  let upstream: RecordingUpstream;
  let harness: GatewayHarness;
  let dir: string;
  const running: RunningConnector[] = [];
  const logs: ReturnType<typeof capturedLogger>[] = [];
  const presented: string[] = [];

  /** A token from the cluster's issuer (or `issuer`), remembered for the log check at the end. */
  async function clusterToken(
    options: {
      namespace?: string;
      name?: string;
      audience?: string;
      expiresInSeconds?: number;
      issuedAt?: number;
      issuer?: DevIssuer;
    } = {},
  ): Promise<string> {
    const token = await (options.issuer ?? cluster).mint(
      kubernetesClaims(options.namespace ?? "tollgate", options.name ?? "connector"),
      {
        audience: options.audience ?? connectorAudience,
        expiresInSeconds: options.expiresInSeconds ?? 600,
        ...(options.issuedAt === undefined ? {} : { issuedAt: options.issuedAt }),
      },
    );
    presented.push(token);
    return token;
  }

  async function tokenFile(token: string): Promise<string> {
    const file = join(dir, `token-${presented.length}-${Math.random().toString(36).slice(2)}`);
    await writeFile(file, `${token}\n`, { mode: 0o600 });
    return file;
  }

  function connect(pool: string, file: string): RunningConnector {
    const log = capturedLogger();
    logs.push(log);
    const connector = startConnector({
      edges: [new URL(harness.url)],
      pool,
      tokenFile: file,
      allow: patterns(`127.0.0.1:${upstream.port}`),
      logger: log.logger,
      backoff: { baseMs: 50, maxMs: 200 },
    });
    running.push(connector);
    return connector;
  }

  async function connectEvents(): Promise<Record<string, unknown>[]> {
    return (await harness.auditEvents()).filter((event) => event.event === "connector.connect");
  }

  /** The edge's verdict on the first connect with `token`: waits for its audit line. */
  async function verdictOn(token: string): Promise<Record<string, unknown>> {
    const hash = sha256Hex(token);
    const events = await eventually(connectEvents, (list) => list.some((e) => e.token_sha256 === hash));
    const event = events.find((e) => e.token_sha256 === hash);
    expect(event, "no connector.connect line for the token").toBeDefined();
    return event!;
  }

  /** The edge's configuration: pool dc1 admits the service account `dc1Subject`, dc2 another one. */
  function edgeConfig(issuerUrl: string, dc1Subject: string): string {
    return `${devIssuerYaml(issuerUrl)}  - name: cluster
    issuer: ${cluster.issuerUrl}
    audiences: [${connectorAudience}]
policies:
  ci: { issuer: dev, claims: { repository_owner_id: 65 } }
  dc1-connector: { issuer: cluster, claims: { sub: "${dc1Subject}" } }
  dc2-connector: { issuer: cluster, claims: { sub: "system:serviceaccount:tollgate:dc2" } }
connectors:
  - name: dc1
    allow: [dc1-connector]
  - name: dc2
    allow: [dc2-connector]
routes:
  - name: inside
    path_prefix: /inside/
    upstream: ${upstream.url}
    allow: [ci]
    via: dc1
`;
  }

  async function routeStatus(): Promise<number> {
    const token = await harness.mint();
    presented.push(token);
    const response = await fetch(`${harness.url}/inside/ping`, {
      headers: { "gateway-authorization": `Bearer ${token}` },
    });
    await response.text();
    return response.status;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tollgate-connector-token-"));
    cluster = await createDevIssuer({ host: "127.0.0.1", port: 0 });
    stranger = await createDevIssuer({ host: "127.0.0.1", port: 0 });
    upstream = await startRecordingUpstream((req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`private service saw ${req.method} ${req.url}`);
    });
    harness = await startGatewayHarness((issuerUrl) => edgeConfig(issuerUrl, serviceAccount));
  });

  async function readiness(): Promise<string> {
    return JSON.stringify(await fetch(`${harness.url}/readyz`).then((res) => res.json()));
  }

  afterEach(async () => {
    await Promise.all(running.splice(0).map((connector) => connector.close()));
    // Each test starts from an empty pool.
    await eventually(readiness, (text) => text.includes('"dc1":0') && text.includes('"dc2":0'));
  });

  afterAll(async () => {
    await harness?.close();
    await cluster?.close();
    await stranger?.close();
    await upstream?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("a Kubernetes service-account token admits the connector, which carries a route's request; audited with sub and issuer", async () => {
    expect(await routeStatus()).toBe(502);
    const token = await clusterToken();
    const connector = connect("dc1", await tokenFile(token));
    await connector.waitConnected();
    expect(await routeStatus()).toBe(200);
    expect(upstream.seen.at(-1)?.url).toBe("/inside/ping");
    const event = await verdictOn(token);
    expect(event).toMatchObject({
      decision: "allow",
      reason: "allowed-by-policy",
      policy: "dc1-connector",
      connector_pool: "dc1",
      identity: { iss: cluster.issuerUrl, sub: serviceAccount },
      token_sha256: sha256Hex(token),
    });
    expect(event.connector_key).toMatch(/^[0-9a-f]{12}$/);
  });

  it("the real command: tollgate connector --token-file joins and carries a request, and logs no token", async () => {
    const token = await clusterToken();
    const command = await startConnectorProcess([
      "--edge",
      harness.url,
      "--pool",
      "dc1",
      "--token-file",
      await tokenFile(token),
      "--allow",
      `127.0.0.1:${upstream.port}`,
    ]);
    try {
      expect(await routeStatus()).toBe(200);
      expect(await verdictOn(token)).toMatchObject({ decision: "allow", policy: "dc1-connector" });
    } finally {
      command.child.kill("SIGTERM");
      await new Promise((resolve) => command.child.once("exit", resolve));
    }
    expect(command.output()).toContain('"token_file"');
    for (const form of tokenForms(token)) expect(command.output()).not.toContain(form);
  });

  it.each([
    [
      "a token for another audience",
      { audience: "kubernetes.default.svc" },
      "dc1",
      "TG_TOKEN_AUDIENCE_MISMATCH",
    ],
    ["a service account no policy of the pool names", { name: "intruder" }, "dc1", "no-policy-matched"],
    [
      "an expired token",
      { issuedAt: Math.floor(Date.now() / 1000) - 7_200, expiresInSeconds: 600 },
      "dc1",
      "TG_TOKEN_EXPIRED",
    ],
    ["a pool A token used for pool B", {}, "dc2", "no-policy-matched"],
  ] as const)(
    "twin: %s is refused and audited, and the pool stays empty",
    async (_label, options, pool, reason) => {
      const token = await clusterToken(options);
      const connector = connect(pool, await tokenFile(token));
      const event = await verdictOn(token);
      expect(event).toMatchObject({ decision: "deny", reason, connector_pool: pool });
      expect(connector.connected()).toBe(0);
      expect(await routeStatus()).toBe(502);
    },
  );

  it("twin: a token from an issuer the edge does not trust is refused", async () => {
    const token = await clusterToken({ issuer: stranger });
    const connector = connect("dc1", await tokenFile(token));
    expect(await verdictOn(token)).toMatchObject({
      decision: "deny",
      reason: "TG_TOKEN_ISSUER_UNKNOWN",
      connector_pool: "dc1",
    });
    expect(connector.connected()).toBe(0);
  });

  it("twin: a copied token is refused to a second connector while the first holds it, and admitted once the first is gone", async () => {
    const token = await clusterToken();
    const file = await tokenFile(token);
    const first = connect("dc1", file);
    await first.waitConnected();
    const copy = connect("dc1", file);
    const refused = await eventually(connectEvents, (list) =>
      list.some((e) => e.token_sha256 === sha256Hex(token) && e.decision === "deny"),
    );
    expect(refused.find((e) => e.token_sha256 === sha256Hex(token) && e.decision === "deny")).toMatchObject({
      reason: "TG_POLICY_DENIED",
      detail: expect.stringContaining("in use by another connector session"),
    });
    expect(copy.connected()).toBe(0);
    expect(await routeStatus()).toBe(200);
    // Once the holder's link is gone (a restarted connector has a new session key), the token is free again.
    await first.close();
    await copy.waitConnected();
    expect(await routeStatus()).toBe(200);
  });

  it("twin: a token the platform rotated out stays the session's until it expires: a copy of it is still refused", async () => {
    const rotatedOut = await clusterToken({ expiresInSeconds: 8 });
    const file = await tokenFile(rotatedOut);
    const holder = connect("dc1", file);
    await holder.waitConnected();
    const current = await clusterToken();
    await writeFile(file, current);
    // Halfway to the first token's expiry (4 s) the edge asks again, and gets the rotated one.
    await eventually(
      () => harness.allOutput(),
      (text) => text.includes(sha256Hex(current)),
      400,
    );
    const copy = connect("dc1", await tokenFile(rotatedOut));
    const refusal = (list: Record<string, unknown>[]) =>
      list.find((e) => e.token_sha256 === sha256Hex(rotatedOut) && e.decision === "deny");
    expect(refusal(await eventually(connectEvents, (list) => refusal(list) !== undefined))).toMatchObject({
      detail: expect.stringContaining("in use by another connector session"),
    });
    expect(copy.connected()).toBe(0);
    expect(holder.connected()).toBe(1);
  });

  it("reads the token file at every connect: refused on an expired token, admitted once the file holds a fresh one", async () => {
    const expired = await clusterToken({ issuedAt: Math.floor(Date.now() / 1000) - 7_200 });
    const file = await tokenFile(expired);
    const connector = connect("dc1", file);
    expect(await verdictOn(expired)).toMatchObject({ decision: "deny", reason: "TG_TOKEN_EXPIRED" });
    // The platform rotates the token (kubelet rewrites the projected file); the next attempt reads it.
    const fresh = await clusterToken();
    await writeFile(file, fresh);
    await connector.waitConnected();
    expect(await verdictOn(fresh)).toMatchObject({ decision: "allow" });
    expect(await routeStatus()).toBe(200);
  });

  it("a session lasts no longer than its token: renewed on the link when the file is rotated, closed at expiry when it is not", async () => {
    const shortLived = await clusterToken({ expiresInSeconds: 3 });
    const rotatedFile = await tokenFile(shortLived);
    const staleFile = await tokenFile(shortLived);
    const rotated = connect("dc1", rotatedFile);
    await rotated.waitConnected();
    const renewed = await clusterToken({ expiresInSeconds: 600 });
    await writeFile(rotatedFile, renewed);
    const stale = connect("dc1", staleFile);
    // The same token in two connectors is refused to the second, so the stale one joins with its own.
    const staleToken = await clusterToken({ name: "connector", expiresInSeconds: 3 });
    await writeFile(staleFile, staleToken);
    await stale.waitConnected();
    // Past both short tokens' expiry (3 s, and the issuer's clock skew does not extend a session).
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const edgeLog = await harness.allOutput();
    expect(edgeLog).toContain(sha256Hex(renewed));
    expect(edgeLog).toContain("connector presented a renewed token");
    const disconnects = (await harness.auditEvents()).filter((e) => e.event === "connector.disconnect");
    expect(disconnects.some((e) => e.reason === "TG_TOKEN_EXPIRED")).toBe(true);
    // The rotated connector kept its one session all along; the stale one is out (its token expired).
    expect(rotated.connected()).toBe(1);
    expect(await readiness()).toContain('"dc1":1');
    expect(await routeStatus()).toBe(200);
  });

  it("a reload whose policies no longer admit the token closes its session; restoring them lets the connector back in", async () => {
    const connector = connect("dc1", await tokenFile(await clusterToken()));
    await connector.waitConnected();
    const narrowed = compileConfigText(
      edgeConfig(harness.issuer.issuerUrl, "system:serviceaccount:tollgate:someone-else"),
      { env: {}, sourceName: "test.yaml" },
    );
    await harness.running.reload(narrowed.config!);
    await eventually(readiness, (text) => text.includes('"dc1":0'));
    expect(
      await eventually(
        async () => connector.connected(),
        (count) => count === 0,
      ),
    ).toBe(0);
    expect(await routeStatus()).toBe(502);
    await harness.running.reload(harness.config);
    await connector.waitConnected();
    expect(await routeStatus()).toBe(200);
  });

  it("a year-long token (Kubernetes' extended expiry) keeps its session: no timer overflows into closing it", async () => {
    const connector = connect("dc1", await tokenFile(await clusterToken({ expiresInSeconds: 365 * 86_400 })));
    await connector.waitConnected();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(connector.connected()).toBe(1);
    expect(await routeStatus()).toBe(200);
  });

  it("no token appears in the edge's or the connectors' output, in any encoding", async () => {
    expect(presented.length).toBeGreaterThan(8);
    const output = `${await harness.allOutput()}\n${logs.map((log) => log.text()).join("\n")}`;
    // The output is real: connects were audited and logged at both ends.
    expect(output).toContain('"event":"connector.connect"');
    expect(output).toContain("connected to the edge");
    for (const token of presented) {
      for (const form of tokenForms(token)) {
        expect(output.includes(form), `token form ${form.slice(0, 24)}… leaked`).toBe(false);
      }
    }
  });
});

describe("a connector's failing tokens count against listen.auth_failures", () => {
  let cluster: DevIssuer;
  let harness: GatewayHarness;
  let dir: string;
  let connector: RunningConnector | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tollgate-connector-token-throttle-"));
    cluster = await createDevIssuer({ host: "127.0.0.1", port: 0 });
    harness = await startGatewayHarness(
      (issuerUrl) => `listen:
  auth_failures: { max: 2, per: 1m }
${devIssuerYaml(issuerUrl)}  - name: cluster
    issuer: ${cluster.issuerUrl}
    audiences: [${connectorAudience}]
policies:
  dc1-connector: { issuer: cluster, claims: { sub: "${serviceAccount}" } }
connectors:
  - name: dc1
    allow: [dc1-connector]
`,
    );
  });

  afterAll(async () => {
    await connector?.close();
    await harness?.close();
    await cluster?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("two expired tokens block the address: the retrying connector's next connections are refused before any check", async () => {
    const expired = await cluster.mint(kubernetesClaims("tollgate", "connector"), {
      audience: connectorAudience,
      issuedAt: Math.floor(Date.now() / 1000) - 7_200,
      expiresInSeconds: 600,
    });
    const file = join(dir, "token");
    await writeFile(file, expired);
    connector = startConnector({
      edges: [new URL(harness.url)],
      pool: "dc1",
      tokenFile: file,
      allow: patterns("127.0.0.1:1"),
      logger: capturedLogger().logger,
      backoff: { baseMs: 20, maxMs: 40 },
    });
    const events = await eventually(
      () => harness.auditEvents(),
      (list) => list.some((event) => event.event === "connection.refused"),
    );
    // Dozens of attempts by now at this backoff; only the two that reached the token were checked.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const denied = (await harness.auditEvents()).filter(
      (event) => event.event === "connector.connect" && event.reason === "TG_TOKEN_EXPIRED",
    );
    expect(denied).toHaveLength(2);
    expect(events.some((event) => event.event === "connection.refused")).toBe(true);
    expect(connector.connected()).toBe(0);
  });
});
