import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";

// The forward-auth endpoint on a real gateway (dev issuer, loopback), asked the way each ingress asks:
// nginx auth_request (X-Original-URI), ingress-nginx (X-Original-URL), Traefik and Caddy
// (X-Forwarded-Uri), Envoy ext_authz (the original path below the endpoint). Every allow has a deny twin.
const configYaml = (upstreamOrigin: string) => (issuerUrl: string) =>
  `${devIssuerYaml(issuerUrl)}
server:
  forward_auth: { path: /_tollgate/auth, max_age: 45s }
policies:
  octo: { claims: { repository_owner_id: 65 } }
  stranger: { claims: { repository_owner_id: 99 } }
routes:
  - name: artifacts
    mode: forward_auth
    path_prefix: /artifacts/
    methods: [GET, PUT]
    allow: [octo]
    forward_claims: [repository, run_id]
  - { name: admin, mode: forward_auth, path_prefix: /admin/, allow: [stranger] }
  - { name: hosted, mode: forward_auth, host: builds.example.com, path_prefix: /, allow: [octo] }
  - { name: proxied, path_prefix: /proxied/, upstream: "${upstreamOrigin}", allow: [octo], forward_claims: [repository] }
  - name: counted
    mode: forward_auth
    path_prefix: /counted/
    allow: [octo]
    rate_limit: { requests: 2, per: 1m, key: repository_id }
  - { name: once, mode: forward_auth, path_prefix: /once/, allow: [octo], single_use: true }
`;

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

describe("the forward-auth endpoint (server.forward_auth)", () => {
  let harness: GatewayHarness;
  let upstream: RecordingUpstream;
  let token: string;
  let strangerToken: string;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    harness = await startGatewayHarness(configYaml(upstream.url));
    token = await harness.mint({ run_id: "4242" });
    strangerToken = await harness.mint({ repository_owner_id: "66", repository: "evil/repo" });
  });
  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  async function ask(
    headers: Record<string, string>,
    path = "/_tollgate/auth",
    method = "GET",
  ): Promise<Answer> {
    const response = await fetch(`${harness.url}${path}`, { method, headers });
    return { status: response.status, headers: response.headers, text: await response.text() };
  }
  const bearer = (value: string) => ({ "gateway-authorization": `Bearer ${value}` });
  async function eventOf(answer: Answer) {
    const id = answer.headers.get("x-request-id");
    return (await harness.auditEvents()).find((line) => line.request_id === id);
  }

  it("nginx auth_request: 200 with the route's claims as Tollgate-Claim-* headers, cacheable, audited as forward_auth", async () => {
    const answer = await ask({
      ...bearer(token),
      "x-original-uri": "/artifacts/build.zip?x=1",
      "x-original-method": "PUT",
    });
    expect(answer.status).toBe(200);
    expect(answer.text).toBe("");
    expect(answer.headers.get("tollgate-claim-repository")).toBe("octo-org/octo-repo");
    expect(answer.headers.get("tollgate-claim-run_id")).toBe("4242");
    expect(answer.headers.get("cache-control")).toBe("private, max-age=45");
    expect(answer.headers.get("x-accel-expires")).toBe("45");
    const event = await eventOf(answer);
    expect(event).toMatchObject({
      event: "gateway.request",
      forward_auth: true,
      decision: "allow",
      reason: "allowed-by-policy",
      route: "artifacts",
      method: "PUT",
      path: "/artifacts/build.zip?x=1",
      policy: "octo",
      status: 200,
      identity: { repository: "octo-org/octo-repo" },
    });
    expect(event?.token_sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("nginx auth_request, deny twin: a token the route's policies refuse gets 403, not cacheable, with the failing condition", async () => {
    const answer = await ask({ ...bearer(strangerToken), "x-original-uri": "/artifacts/build.zip" });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.text).error.code).toBe("TG_POLICY_DENIED");
    expect(answer.headers.get("cache-control")).toBe("no-store");
    expect(answer.headers.get("tollgate-claim-repository")).toBeNull();
    const event = await eventOf(answer);
    expect(event).toMatchObject({
      event: "gateway.request",
      forward_auth: true,
      decision: "deny",
      reason: "TG_POLICY_DENIED",
      route: "artifacts",
      status: 403,
    });
    expect(event?.conditions).toEqual(
      expect.arrayContaining([expect.objectContaining({ claim: "repository_owner_id", ok: false })]),
    );
  });

  it("no token: 401 with WWW-Authenticate (nginx passes 401 on), audited as auth-less denial", async () => {
    const answer = await ask({ "x-original-uri": "/artifacts/a" });
    expect(answer.status).toBe(401);
    expect(answer.headers.get("www-authenticate")).toContain("Bearer");
    expect(JSON.parse(answer.text).error.code).toBe("TG_TOKEN_MISSING");
    expect(answer.headers.get("cache-control")).toBe("no-store");
  });

  it("a bad token: 401, its hash audited, the token itself nowhere in the output", async () => {
    const forged = `${token.slice(0, -4)}AAAA`;
    const answer = await ask({ ...bearer(forged), "x-original-uri": "/artifacts/a" });
    expect(answer.status).toBe(401);
    const event = await eventOf(answer);
    expect(event).toMatchObject({ event: "auth.denied", forward_auth: true, route: "artifacts" });
    expect(await harness.allOutput()).not.toContain(forged);
    expect(await harness.allOutput()).not.toContain(token);
  });

  it("Traefik / Caddy: X-Forwarded-Method, -Host and -Uri name the original request", async () => {
    const allowed = await ask({
      ...bearer(token),
      "x-forwarded-method": "GET",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "gateway.example.com",
      "x-forwarded-uri": "/artifacts/x",
    });
    expect(allowed.status).toBe(200);
    // Deny twin: the route allows GET and PUT only.
    const refused = await ask({
      ...bearer(token),
      "x-forwarded-method": "DELETE",
      "x-forwarded-uri": "/artifacts/x",
    });
    expect(refused.status).toBe(405);
    expect(refused.headers.get("allow")).toBe("GET, PUT");
  });

  it("Envoy ext_authz: the original path below the endpoint, the original method and Host", async () => {
    const allowed = await ask(bearer(token), "/_tollgate/auth/artifacts/y?z=1", "PUT");
    expect(allowed.status).toBe(200);
    expect((await eventOf(allowed))?.path).toBe("/artifacts/y?z=1");
    const refused = await ask(bearer(token), "/_tollgate/auth/admin/y");
    expect(refused.status).toBe(403);
  });

  it("ingress-nginx: X-Original-URL carries host and target; the host selects a host-bound route", async () => {
    const allowed = await ask({
      ...bearer(token),
      "x-original-url": "https://builds.example.com/anything/here",
      "x-original-method": "POST",
    });
    expect(allowed.status).toBe(200);
    expect((await eventOf(allowed))?.route).toBe("hosted");
    // Deny twin: another host has no route for the path.
    const other = await ask({
      ...bearer(token),
      "x-original-url": "https://other.example.com/anything/here",
    });
    expect(other.status).toBe(404);
    expect(JSON.parse(other.text).error.code).toBe("TG_ROUTE_NOT_FOUND");
  });

  it("normalises the original path as the proxy does: a dot segment cannot leave a route's prefix", async () => {
    // /artifacts/../admin/x is /admin/x, whose policy the token does not meet.
    const climbed = await ask({ ...bearer(token), "x-original-uri": "/artifacts/%2e%2e/admin/x" });
    expect(climbed.status).toBe(403);
    expect((await eventOf(climbed))?.route).toBe("admin");
    const encodedSlash = await ask({ ...bearer(token), "x-original-uri": "/artifacts/..%2fadmin" });
    expect(encodedSlash.status).toBe(400);
    expect(JSON.parse(encodedSlash.text).error.code).toBe("TG_PATH_INVALID");
  });

  it("a subrequest that names no original request is a 400 that says what to send", async () => {
    const answer = await ask(bearer(token));
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text).error.message).toContain("X-Original-URI");
  });

  it("refuses a subrequest that names its request two ways: a client's header added beside the ingress's", async () => {
    const cases: Record<string, string>[] = [
      // Caddy sets X-Forwarded-*; a client adds X-Original-URI for a route its token meets.
      { "x-forwarded-uri": "/admin/x", "x-original-uri": "/artifacts/x" },
      // nginx sets X-Original-URI; a client adds ingress-nginx's X-Original-URL.
      { "x-original-uri": "/admin/x", "x-original-url": "http://h/artifacts/x" },
      // A client's method beside the ingress's.
      { "x-original-uri": "/artifacts/x", "x-original-method": "DELETE", "x-forwarded-method": "GET" },
    ];
    for (const headers of cases) {
      const answer = await ask({ ...bearer(token), ...headers });
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.text).error.message).toContain("more than one way");
    }
    // Envoy's path below the endpoint plus a header.
    const envoy = await ask(
      { ...bearer(token), "x-original-uri": "/artifacts/x" },
      "/_tollgate/auth/admin/x",
    );
    expect(envoy.status).toBe(400);
    // Allow twin: each alone is decided.
    expect(
      (await ask({ ...bearer(token), "x-original-uri": "/artifacts/x", "x-original-method": "GET" })).status,
    ).toBe(200);
  });

  it("refuses an X-Original-URL that is not an absolute URL", async () => {
    const answer = await ask({ ...bearer(token), "x-original-url": "artifacts/x" });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text).error.code).toBe("TG_PATH_INVALID");
  });

  it("answers for a proxy-mode route too (an ingress may front it), with its claims", async () => {
    const answer = await ask({ ...bearer(token), "x-original-uri": "/proxied/a" });
    expect(answer.status).toBe(200);
    expect(answer.headers.get("tollgate-claim-repository")).toBe("octo-org/octo-repo");
  });

  it("a request sent to tollgate itself on a forward_auth route is 404 and never proxied; a proxy route still proxies", async () => {
    const refused = await fetch(`${harness.url}/artifacts/build.zip`, { headers: bearer(token) });
    expect(refused.status).toBe(404);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("TG_ROUTE_NOT_FOUND");
    const before = upstream.seen.length;
    const proxied = await fetch(`${harness.url}/proxied/a`, { headers: bearer(token) });
    expect(proxied.status).toBe(200);
    await proxied.text();
    expect(upstream.seen.length).toBe(before + 1);
  });

  it("claims only its own path: /_tollgate/authx is routed like any path (no route: 404)", async () => {
    const answer = await ask({ ...bearer(token), "x-original-uri": "/artifacts/a" }, "/_tollgate/authx");
    expect(answer.status).toBe(404);
    expect(await eventOf(answer)).not.toHaveProperty("forward_auth");
  });

  it("a route's rate limit counts every subrequest, so its answers are never cacheable", async () => {
    const limited = await harness.mint({ repository_id: "7001" });
    const first = await ask({ ...bearer(limited), "x-original-uri": "/counted/a" });
    expect(first.status).toBe(200);
    expect(first.headers.get("cache-control")).toBe("no-store");
    expect(first.headers.get("x-accel-expires")).toBe("0");
    expect((await ask({ ...bearer(limited), "x-original-uri": "/counted/a" })).status).toBe(200);
    const third = await ask({ ...bearer(limited), "x-original-uri": "/counted/a" });
    expect(third.status).toBe(429);
    expect((await eventOf(third))?.limit).toBe("route:counted");
  });

  it("single_use: the first subrequest passes, the replay is refused", async () => {
    const once = await harness.mint({ jti: "fa-once-1" });
    const first = await ask({ ...bearer(once), "x-original-uri": "/once/a" });
    expect(first.status).toBe(200);
    expect(first.headers.get("cache-control")).toBe("no-store");
    const replay = await ask({ ...bearer(once), "x-original-uri": "/once/a" });
    expect(replay.status).toBe(401);
    expect(JSON.parse(replay.text).error.code).toBe("TG_TOKEN_REPLAYED");
  });

  it("never lets the ingress cache an answer past the token's expiry", async () => {
    const now = Math.floor(Date.now() / 1000);
    const short = await harness.mint({}, { issuedAt: now - 280, expiresInSeconds: 300 });
    const answer = await ask({ ...bearer(short), "x-original-uri": "/artifacts/a" });
    expect(answer.status).toBe(200);
    const maxAge = Number(/max-age=(\d+)/.exec(answer.headers.get("cache-control") ?? "")?.[1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(20);
    expect(Number(answer.headers.get("x-accel-expires"))).toBe(maxAge);
  });
});

describe("server.forward_auth is off by default, and max_age: 0s disables caching", () => {
  it("without the section the path is an ordinary (unrouted) path", async () => {
    const harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  octo: { claims: { repository_owner_id: 65 } }
routes:
  - { name: artifacts, mode: forward_auth, path_prefix: /artifacts/, allow: [octo] }
`,
    );
    try {
      const token = await harness.mint();
      const response = await fetch(`${harness.url}/_tollgate/auth`, {
        headers: { "gateway-authorization": token, "x-original-uri": "/artifacts/a" },
      });
      expect(response.status).toBe(404);
    } finally {
      await harness.close();
    }
  });

  it("max_age: 0s answers no-store and X-Accel-Expires: 0; the allow still carries the claims", async () => {
    const harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
server: { forward_auth: { max_age: 0s } }
policies:
  octo: { claims: { repository_owner_id: 65 } }
routes:
  - { name: artifacts, mode: forward_auth, path_prefix: /artifacts/, allow: [octo], forward_claims: [repository] }
`,
    );
    try {
      const token = await harness.mint();
      const response = await fetch(`${harness.url}/_tollgate/auth`, {
        headers: { "gateway-authorization": token, "x-original-uri": "/artifacts/a" },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(response.headers.get("x-accel-expires")).toBe("0");
      expect(response.headers.get("tollgate-claim-repository")).toBe("octo-org/octo-repo");
    } finally {
      await harness.close();
    }
  });
});
