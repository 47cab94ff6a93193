import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";

/** Sends one request to the gateway and collects the answer. */
async function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? "GET", headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

function bearer(token: string): Record<string, string> {
  return { "gateway-authorization": `Bearer ${token}` };
}

describe("gateway: routes, tokens and policy on a real loopback server", () => {
  let upstream: RecordingUpstream;
  let admin: RecordingUpstream;
  let harness: GatewayHarness;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    admin = await startRecordingUpstream();
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  main-only:
    claims:
      repository_owner_id: 65
      repository_id: 74
      ref: refs/heads/main
      event_name: { not: [pull_request_target, workflow_run] }
  lookalike-block:
    claims:
      repository_owner: octo-org
      actor: mallory
routes:
  - name: artifacts
    path_prefix: /artifacts/
    upstream: ${upstream.url}/base
    strip_prefix: true
    methods: [GET, PUT]
    allow: [main-only]
    deny: [lookalike-block]
    forward_claims: [repository, run_id]
  - name: artifacts-bearer
    path_prefix: /bearer/
    upstream: ${upstream.url}
    auth_header: authorization
    allow: [main-only]
  - name: admin
    path_prefix: /admin/
    upstream: ${admin.url}
    allow: [main-only]
    methods: [DELETE]
`,
    );
  });

  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
    await admin?.close();
  });

  it("forwards an allowed request with the prefix stripped, claims added and the credential removed", async () => {
    const token = await harness.mint();
    const before = upstream.seen.length;
    const response = await send(`${harness.url}/artifacts/builds/1.zip?x=1`, {
      headers: { ...bearer(token), "tollgate-claim-repository": "spoofed/repo", "x-custom": "kept" },
    });
    expect(response.status).toBe(200);
    expect(response.body).toBe("hello from upstream");
    const seen = upstream.seen[before]!;
    expect(seen.url).toBe("/base/builds/1.zip?x=1");
    expect(seen.headers["gateway-authorization"]).toBeUndefined();
    expect(seen.headers["tollgate-claim-repository"]).toBe("octo-org/octo-repo");
    expect(seen.headers["tollgate-claim-run_id"] ?? seen.headers["tollgate-claim-run-id"]).toBeDefined();
    expect(seen.headers["x-custom"]).toBe("kept");
    expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen.headers["x-forwarded-proto"]).toBe("http");
  });

  it("refuses the same request from another owner with 403 and says which condition failed in the audit", async () => {
    const token = await harness.mint({ repository_owner_id: "999" });
    const before = upstream.seen.length;
    const response = await send(`${harness.url}/artifacts/builds/1.zip`, { headers: bearer(token) });
    expect(response.status).toBe(403);
    expect(JSON.parse(response.body)).toMatchObject({ error: { code: "TG_POLICY_DENIED" } });
    expect(upstream.seen.length).toBe(before);
    const requestId = JSON.parse(response.body).error.request_id as string;
    const event = (await harness.auditEvents()).find((candidate) => candidate.request_id === requestId);
    expect(event).toMatchObject({
      event: "gateway.request",
      decision: "deny",
      route: "artifacts",
      status: 403,
    });
    const conditions = (event?.conditions ?? []) as { claim: string; ok: boolean; reason: string }[];
    const failed = conditions.filter((condition) => !condition.ok);
    expect(failed.map((condition) => [condition.claim, condition.reason])).toEqual([
      ["repository_owner_id", "claim-mismatch"],
    ]);
    // The twin: the conditions that held say so, each with its own reason.
    expect(conditions.filter((condition) => condition.ok).every((held) => held.reason === "claim-ok")).toBe(
      true,
    );
    expect(conditions.some((condition) => condition.ok)).toBe(true);
  });

  it("lets a deny policy win over an allow policy", async () => {
    const token = await harness.mint({ actor: "mallory" });
    const response = await send(`${harness.url}/artifacts/x`, { headers: bearer(token) });
    expect(response.status).toBe(403);
    const event = (await harness.auditEvents()).at(-1);
    expect(event).toMatchObject({ reason: "TG_POLICY_DENIED", policy: "lookalike-block" });
  });

  it("refuses pull_request_target with the main ref (fork code under the base identity)", async () => {
    const token = await harness.mint({ event_name: "pull_request_target" });
    expect((await send(`${harness.url}/artifacts/x`, { headers: bearer(token) })).status).toBe(403);
  });

  it("answers 401 with WWW-Authenticate when no token is presented, and audits it", async () => {
    const response = await send(`${harness.url}/artifacts/x`);
    expect(response.status).toBe(401);
    expect(response.headers["www-authenticate"]).toMatch(/^Bearer/);
    expect(JSON.parse(response.body)).toMatchObject({ error: { code: "TG_TOKEN_MISSING" } });
  });

  it("accepts Gateway-Authorization without the Bearer word", async () => {
    const token = await harness.mint();
    expect(
      (await send(`${harness.url}/artifacts/x`, { headers: { "gateway-authorization": token } })).status,
    ).toBe(200);
  });

  it("reads Authorization: Bearer only on routes that opt in, and strips it", async () => {
    const token = await harness.mint();
    const before = upstream.seen.length;
    const optedIn = await send(`${harness.url}/bearer/x`, { headers: { authorization: `Bearer ${token}` } });
    expect(optedIn.status).toBe(200);
    expect(upstream.seen[before]!.headers.authorization).toBeUndefined();
    const notOptedIn = await send(`${harness.url}/artifacts/x`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(notOptedIn.status).toBe(401);
  });

  it("keeps an upstream Authorization header when the token came in Gateway-Authorization", async () => {
    const token = await harness.mint();
    const before = upstream.seen.length;
    const response = await send(`${harness.url}/bearer/x`, {
      headers: { ...bearer(token), authorization: "Basic dXBzdHJlYW06Y3JlZA==" },
    });
    expect(response.status).toBe(200);
    expect(upstream.seen[before]!.headers.authorization).toBe("Basic dXBzdHJlYW06Y3JlZA==");
  });

  it("answers 404 for a path no route matches, before any token work", async () => {
    const response = await send(`${harness.url}/nothing-here`, { headers: bearer("not-even-a-token") });
    expect(response.status).toBe(404);
    expect(JSON.parse(response.body)).toMatchObject({ error: { code: "TG_ROUTE_NOT_FOUND" } });
  });

  it("answers 405 with Allow for a method the route does not accept", async () => {
    const token = await harness.mint();
    const response = await send(`${harness.url}/artifacts/x`, { method: "POST", headers: bearer(token) });
    expect(response.status).toBe(405);
    expect(response.headers.allow).toBe("GET, PUT");
  });

  it("does not let /artifacts/../admin/ escape the artifacts prefix", async () => {
    const token = await harness.mint();
    const before = admin.seen.length;
    for (const path of [
      "/artifacts/../admin/users",
      "/artifacts/%2e%2e/admin/users",
      "/artifacts/..%2fadmin/users",
    ]) {
      const response = await send(`${harness.url}${path}`, { method: "GET", headers: bearer(token) });
      expect(response.status, path).not.toBe(200);
    }
    expect(admin.seen.length).toBe(before);
  });

  it("marks a repeated token as served from the verified-token cache", async () => {
    const token = await harness.mint({ run_id: "777001" });
    await send(`${harness.url}/artifacts/a`, { headers: bearer(token) });
    await send(`${harness.url}/artifacts/b`, { headers: bearer(token) });
    const events = (await harness.auditEvents()).filter(
      (event) => (event.identity as Record<string, string> | undefined)?.run_id === "777001",
    );
    expect(events.map((event) => event.token_cached)).toEqual([false, true]);
  });

  it("writes one audit event per decision with identity and token hash, never the token", async () => {
    const token = await harness.mint({ run_id: "424242" });
    await send(`${harness.url}/artifacts/audit`, { headers: bearer(token) });
    const event = (await harness.auditEvents()).find(
      (candidate) => (candidate.identity as Record<string, string> | undefined)?.run_id === "424242",
    );
    expect(event).toMatchObject({
      event: "gateway.request",
      decision: "allow",
      reason: "allowed-by-policy",
      policy: "main-only",
      route: "artifacts",
      status: 200,
      identity: {
        repository: "octo-org/octo-repo",
        repository_id: "74",
        sub: "repo:octo-org/octo-repo:ref:refs/heads/main",
      },
    });
    expect(event?.token_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof event?.duration_ms).toBe("number");
    expect(await harness.allOutput()).not.toContain(token);
  });

  it("answers /healthz and /readyz", async () => {
    expect((await send(`${harness.url}/healthz`)).status).toBe(200);
    const ready = await send(`${harness.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ status: "ready" });
  });

  it("answers 431 to oversized headers and keeps serving", async () => {
    const response = await new Promise<string>((resolve, reject) => {
      const socket = connect(harness.running.address.port, "127.0.0.1", () => {
        socket.write(`GET /artifacts/x HTTP/1.1\r\nhost: a\r\nx-big: ${"a".repeat(40_000)}\r\n\r\n`);
      });
      let text = "";
      socket.on("data", (chunk) => {
        text += chunk.toString("latin1");
      });
      socket.on("close", () => resolve(text));
      socket.on("error", reject);
    });
    expect(response).toMatch(/^HTTP\/1\.1 431/);
    expect((await send(`${harness.url}/healthz`)).status).toBe(200);
  });
});

describe("gateway: upstream failures", () => {
  it("maps a refused connection to 502 and a slow upstream to 504, without upstream details", async () => {
    const slow = await startRecordingUpstream((_req, res) => {
      setTimeout(() => res.end("late"), 2_000).unref();
    });
    const harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  p:
    claims: { repository_owner_id: 65 }
routes:
  - { name: down, path_prefix: /down/, upstream: "http://127.0.0.1:1", allow: [p] }
  - { name: slow, path_prefix: /slow/, upstream: "${slow.url}", timeout: 300ms, allow: [p] }
`,
    );
    try {
      const token = await harness.mint();
      const down = await send(`${harness.url}/down/x`, { headers: bearer(token) });
      expect(down.status).toBe(502);
      expect(JSON.parse(down.body).error).toMatchObject({ code: "TG_UPSTREAM_UNAVAILABLE" });
      expect(down.body).not.toContain("127.0.0.1");
      const late = await send(`${harness.url}/slow/x`, { headers: bearer(token) });
      expect(late.status).toBe(504);
      expect(JSON.parse(late.body).error).toMatchObject({ code: "TG_UPSTREAM_TIMEOUT" });
    } finally {
      await harness.close();
      await slow.close();
    }
  });
});

describe("gateway: graceful stop", () => {
  it("finishes an in-flight request, then refuses new connections", async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = await startRecordingUpstream((_req, res) => {
      void held.then(() => res.end("finished"));
    });
    const harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  p:
    claims: { repository_owner_id: 65 }
routes:
  - { name: slow, path_prefix: /slow/, upstream: "${slow.url}", allow: [p] }
`,
    );
    const token = await harness.mint();
    const inFlight = send(`${harness.url}/slow/x`, { headers: bearer(token) });
    while (slow.seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const closing = harness.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await expect(send(`${harness.url}/healthz`)).rejects.toThrow();
    release();
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(answer.body).toBe("finished");
    await closing;
    await slow.close();
  });
});

describe("gateway: behind a load balancer", () => {
  it("trusts X-Forwarded-For only when server.trust_proxy is set", async () => {
    const upstream = await startRecordingUpstream();
    const start = (trust: boolean) =>
      startGatewayHarness(
        (issuerUrl) => `${devIssuerYaml(issuerUrl)}
server: { trust_proxy: ${trust} }
policies:
  p:
    claims: { repository_owner_id: 65 }
routes:
  - { name: r, path_prefix: /r/, upstream: "${upstream.url}", allow: [p] }
`,
      );
    for (const trust of [true, false]) {
      const harness = await start(trust);
      try {
        const before = upstream.seen.length;
        await send(`${harness.url}/r/x`, {
          headers: { ...bearer(await harness.mint()), "x-forwarded-for": "203.0.113.9" },
        });
        const seen = upstream.seen[before]!;
        const event = (await harness.auditEvents()).at(-1);
        if (trust) {
          expect(seen.headers["x-forwarded-for"]).toBe("203.0.113.9, 127.0.0.1");
          expect(event?.client_ip).toBe("203.0.113.9");
        } else {
          expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");
          expect(event?.client_ip).toBe("127.0.0.1");
        }
      } finally {
        await harness.close();
      }
    }
    await upstream.close();
  });
});
