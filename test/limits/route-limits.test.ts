import { Agent, type AgentOptions, request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";

/**
 * The abuse controls on routes, one gateway with the memory store (the fleet through Redis is
 * fleet-redis.test.ts): rate limits by claim and by address, burst, single use, and the
 * failed-authentication throttle — each with its twin that must still pass.
 */

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: { error?: { code?: string } };
}

/** One request on `agent`'s connection (kept alive between calls). */
function sendWith(url: string, token: string, agent: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { headers: { "gateway-authorization": `Bearer ${token}` }, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          let json: Answer["json"] = {};
          try {
            json = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Answer["json"];
          } catch {
            // An upstream's plain-text answer.
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** One request from `localAddress` (loopback addresses other than 127.0.0.1 are other clients). */
function send(url: string, token?: string, localAddress = "127.0.0.1"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> =
      token === undefined ? {} : { "gateway-authorization": `Bearer ${token}` };
    const req = httpRequest(url, { headers, localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: Answer["json"] = {};
        try {
          json = JSON.parse(text) as Answer["json"];
        } catch {
          // An upstream's plain-text answer.
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * The last audit line written whole: repeated denials from one source are folded into a counted line
 * (`repeated`) that is written at the end of the window or on flush, after later lines.
 */
function lastWhole(events: Record<string, unknown>[]): Record<string, unknown> | undefined {
  return events.filter((event) => event.repeated === undefined).at(-1);
}

async function statuses(
  url: string,
  token: string | undefined,
  count: number,
  from?: string,
): Promise<number[]> {
  const seen: number[] = [];
  for (let index = 0; index < count; index++) seen.push((await send(url, token, from)).status);
  return seen;
}

const policiesYaml = `policies:
  octo:
    claims:
      repository_owner_id: 65
  main-only:
    claims:
      repository_owner_id: 65
      ref: refs/heads/main
`;

describe("rate limits on a route (memory store)", () => {
  let upstream: RecordingUpstream;
  let harness: GatewayHarness;
  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}${policiesYaml}routes:
  - name: per-repo
    path_prefix: /per-repo/
    upstream: ${upstream.url}
    allow: [octo]
    rate_limit: { requests: 3, per: 60s, key: repository_id }
  - name: per-address
    path_prefix: /per-address/
    upstream: ${upstream.url}
    allow: [octo]
    rate_limit: { requests: 2, per: 60s, key: client_ip }
  - name: bursty
    path_prefix: /bursty/
    upstream: ${upstream.url}
    allow: [octo]
    rate_limit: { requests: 2, per: 60s, key: repository_id, burst: 2 }
  - name: unlimited
    path_prefix: /unlimited/
    upstream: ${upstream.url}
    allow: [octo]
`,
    );
  });
  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  it("admits `requests` per key, then answers 429 TG_RATE_LIMITED with Retry-After and the IETF fields, without reaching the upstream", async () => {
    const token = await harness.mint({ repository_id: "1001" });
    const before = upstream.seen.length;
    expect(await statuses(`${harness.url}/per-repo/x`, token, 3)).toEqual([200, 200, 200]);
    const refused = await send(`${harness.url}/per-repo/x`, token);
    expect(refused.status).toBe(429);
    expect(refused.json.error?.code).toBe("TG_RATE_LIMITED");
    const retryAfter = Number(refused.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers["ratelimit-policy"]).toBe('"route:per-repo";q=3;w=60');
    expect(refused.headers.ratelimit).toBe(`"route:per-repo";r=0;t=${retryAfter}`);
    expect(upstream.seen.length - before).toBe(3);
    const events = await harness.auditEvents();
    expect(lastWhole(events)).toMatchObject({
      event: "gateway.request",
      decision: "deny",
      reason: "TG_RATE_LIMITED",
      route: "per-repo",
      limit: "route:per-repo",
      status: 429,
    });
  });

  it("twin: another repository (another key) is counted on its own, and a route without a limit is not limited", async () => {
    const busy = await harness.mint({ repository_id: "1002" });
    expect(await statuses(`${harness.url}/per-repo/x`, busy, 4)).toEqual([200, 200, 200, 429]);
    const other = await harness.mint({ repository_id: "1003" });
    expect(await statuses(`${harness.url}/per-repo/x`, other, 3)).toEqual([200, 200, 200]);
    // A new token of the same repository shares its allowance: the key is the claim, not the token.
    const sameRepository = await harness.mint({ repository_id: "1002" });
    expect((await send(`${harness.url}/per-repo/x`, sameRepository)).status).toBe(429);
    expect(await statuses(`${harness.url}/unlimited/x`, busy, 6)).toEqual([200, 200, 200, 200, 200, 200]);
  });

  it("keyed by client_ip: counted before the token is read, so requests without one count too; another address is not limited", async () => {
    const token = await harness.mint();
    // Two requests without a token use up 127.0.0.5's allowance …
    expect(await statuses(`${harness.url}/per-address/x`, undefined, 2, "127.0.0.5")).toEqual([401, 401]);
    // … so its next request is refused before its (valid) token is even looked at.
    const refused = await send(`${harness.url}/per-address/x`, token, "127.0.0.5");
    expect(refused.status).toBe(429);
    const events = await harness.auditEvents();
    expect(lastWhole(events)).toMatchObject({ reason: "TG_RATE_LIMITED", limit: "route:per-address" });
    expect(lastWhole(events)?.token_sha256).toBeUndefined();
    // Twin: another address still gets through with the same token.
    expect(await statuses(`${harness.url}/per-address/x`, token, 2, "127.0.0.6")).toEqual([200, 200]);
  });

  it("burst: `burst` more requests once the window's are used, then 429", async () => {
    const token = await harness.mint({ repository_id: "2001" });
    expect(await statuses(`${harness.url}/bursty/x`, token, 5)).toEqual([200, 200, 200, 200, 429]);
    // Twin: without burst (per-repo has none) the third is refused.
    const plain = await harness.mint({ repository_id: "2002" });
    expect(await statuses(`${harness.url}/per-repo/x`, plain, 4)).toEqual([200, 200, 200, 429]);
  });

  it("counts survive a reload of the same configuration (the controls live as long as the store)", async () => {
    const token = await harness.mint({ repository_id: "3001" });
    expect(await statuses(`${harness.url}/per-repo/x`, token, 4)).toEqual([200, 200, 200, 429]);
    await harness.running.reload(harness.config);
    expect((await send(`${harness.url}/per-repo/x`, token)).status).toBe(429);
  });

  it("metrics count every decision by limit and outcome", async () => {
    const metrics = await fetch(`${harness.url}/metrics`).then((res) => res.text());
    expect(metrics).toMatch(
      /tollgate_limit_decisions_total\{control="rate_limit",limit="route:per-repo",outcome="allowed"\} \d+/,
    );
    expect(metrics).toMatch(
      /tollgate_limit_decisions_total\{control="rate_limit",limit="route:per-repo",outcome="limited"\} [1-9]/,
    );
  });
});

describe("single-use tokens on a route (memory store)", () => {
  let upstream: RecordingUpstream;
  let harness: GatewayHarness;
  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}${policiesYaml}routes:
  - name: once
    path_prefix: /once/
    upstream: ${upstream.url}
    allow: [octo]
    single_use: true
  - name: once-main
    path_prefix: /once-main/
    upstream: ${upstream.url}
    allow: [main-only]
    single_use: true
  - name: reusable
    path_prefix: /reusable/
    upstream: ${upstream.url}
    allow: [octo]
`,
    );
  });
  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  it("accepts a token once; its second use is 401 TG_TOKEN_REPLAYED and never reaches the upstream", async () => {
    const token = await harness.mint();
    const before = upstream.seen.length;
    expect((await send(`${harness.url}/once/a`, token)).status).toBe(200);
    const replayed = await send(`${harness.url}/once/b`, token);
    expect(replayed.status).toBe(401);
    expect(replayed.json.error?.code).toBe("TG_TOKEN_REPLAYED");
    expect(upstream.seen.length - before).toBe(1);
    const events = await harness.auditEvents();
    expect(lastWhole(events)).toMatchObject({
      reason: "TG_TOKEN_REPLAYED",
      limit: "single_use",
      status: 401,
    });
    // Once across single-use routes: the same token on another single-use route is a replay too.
    expect((await send(`${harness.url}/once-main/a`, token)).json.error?.code).toBe("TG_TOKEN_REPLAYED");
  });

  it("twin: a route without single_use takes the same token again and again", async () => {
    const token = await harness.mint();
    expect(await statuses(`${harness.url}/reusable/x`, token, 3)).toEqual([200, 200, 200]);
    // … and using it there did not use it up for a single-use route.
    expect((await send(`${harness.url}/once/x`, token)).status).toBe(200);
  });

  it("refuses a token without jti where single use is required (401 TG_TOKEN_JTI_MISSING), takes it elsewhere", async () => {
    const token = await harness.mint({ jti: undefined });
    const refused = await send(`${harness.url}/once/x`, token);
    expect(refused.status).toBe(401);
    expect(refused.json.error?.code).toBe("TG_TOKEN_JTI_MISSING");
    expect((await send(`${harness.url}/reusable/x`, token)).status).toBe(200);
  });

  it("a request the policies refuse does not use the token up", async () => {
    const token = await harness.mint({ ref: "refs/heads/feature" });
    expect((await send(`${harness.url}/once-main/x`, token)).status).toBe(403);
    expect((await send(`${harness.url}/once/x`, token)).status).toBe(200);
    expect((await send(`${harness.url}/once/x`, token)).status).toBe(401);
  });
});

describe("failed-authentication throttling (listen.auth_failures, memory store)", () => {
  let upstream: RecordingUpstream;
  let harness: GatewayHarness;
  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    harness = await startGatewayHarness(
      (issuerUrl) => `listen:
  auth_failures: { max: 3, per: 60s }
${devIssuerYaml(issuerUrl)}${policiesYaml}routes:
  - name: open
    path_prefix: /open/
    upstream: ${upstream.url}
    allow: [octo]
`,
    );
  });
  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  it("after `max` failed token checks from an address: 429 on its open connection (then closed), and new connections refused before any HTTP", async () => {
    const valid = await harness.mint();
    const forged = `${valid.slice(0, -8)}AAAAAAAA`; // a signature that does not verify
    // One kept-alive connection from 127.0.0.9, as a client that keeps sending would use.
    const agent = new Agent({ keepAlive: true, maxSockets: 1, localAddress: "127.0.0.9" } as AgentOptions);
    try {
      const onConnection = (token: string) => sendWith(`${harness.url}/open/x`, token, agent);
      expect((await onConnection(forged)).status).toBe(401);
      expect((await onConnection(forged)).status).toBe(401);
      expect((await onConnection("junk.junk.junk")).status).toBe(401);
      // The third failure reached the limit: even a valid token is refused, before it is read.
      const refused = await onConnection(valid);
      expect(refused.status).toBe(429);
      expect(refused.json.error?.code).toBe("TG_RATE_LIMITED");
      expect(refused.headers["ratelimit-policy"]).toBe('"listen.auth_failures";q=3;w=60');
      expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      expect(refused.headers.connection).toBe("close");
    } finally {
      agent.destroy();
    }
    const events = await harness.auditEvents();
    expect(lastWhole(events)).toMatchObject({
      event: "auth.denied",
      reason: "TG_RATE_LIMITED",
      limit: "listen.auth_failures",
      client_ip: "127.0.0.9",
    });
    // No token work: the refused request's token was not even hashed.
    expect(lastWhole(events)?.token_sha256).toBeUndefined();
    // A new connection from the blocked address is closed before any HTTP is read …
    for (let attempt = 0; attempt < 3; attempt++) {
      await expect(send(`${harness.url}/open/x`, valid, "127.0.0.9")).rejects.toThrow();
    }
    const metrics = await fetch(`${harness.url}/metrics`).then((res) => res.text());
    expect(metrics).toMatch(/outcome="connection_refused"\} [1-9]/);
    // … and audited as a denial: the first refusal whole, the others folded into its window's line.
    const refusals = (await harness.auditEvents()).filter((event) => event.event === "connection.refused");
    expect(refusals.filter((event) => event.repeated === undefined)).toEqual([
      expect.objectContaining({
        decision: "deny",
        reason: "TG_RATE_LIMITED",
        limit: "listen.auth_failures",
        client_ip: "127.0.0.9",
      }),
    ]);
  });

  it("twin: a valid client at another address is served, and missing tokens do not count", async () => {
    const valid = await harness.mint();
    expect(await statuses(`${harness.url}/open/x`, valid, 2, "127.0.0.10")).toEqual([200, 200]);
    // Ten requests without a token (as git's first, unauthenticated request is) block no one.
    expect(await statuses(`${harness.url}/open/x`, undefined, 10, "127.0.0.11")).toEqual(Array(10).fill(401));
    expect((await send(`${harness.url}/open/x`, valid, "127.0.0.11")).status).toBe(200);
  });

  it("twin: fewer failures than `max` block nothing", async () => {
    const valid = await harness.mint();
    const forged = `${valid.slice(0, -8)}AAAAAAAA`;
    expect(await statuses(`${harness.url}/open/x`, forged, 2, "127.0.0.12")).toEqual([401, 401]);
    expect((await send(`${harness.url}/open/x`, valid, "127.0.0.12")).status).toBe(200);
  });
});
