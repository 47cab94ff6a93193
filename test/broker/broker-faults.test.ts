import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { doubleErrorCanary } from "../helpers/github-api-double.js";
import { type BrokerHarness, noneBrokerYaml, startBrokerHarness } from "./broker-harness.js";

const path = (repo: string) => `/repos/octo-org/${repo}/actions/runners/registration-token`;

describe("GitHub faults are mapped, never echoed", () => {
  let broker: BrokerHarness;

  beforeAll(async () => {
    broker = await startBrokerHarness({ yaml: (_issuer, api) => noneBrokerYaml(api) });
    await broker.waitReady();
  });
  afterEach(() => broker.double.clearFaults());
  afterAll(async () => {
    await broker.close();
  });

  it("an unknown scope → 404 TG_GITHUB_NOT_FOUND, without GitHub's body", async () => {
    const answer = await broker.call("/register", { scope: "ghost-org" });
    expect(answer.status).toBe(404);
    expect(answer.json).toMatchObject({ error: { code: "TG_GITHUB_NOT_FOUND" } });
    expect(answer.text).not.toContain(doubleErrorCanary);
  });

  it("a 404 is remembered briefly: a flood of requests for a made-up scope costs one GitHub call", async () => {
    const before = broker.double.count("POST", path("made-up"));
    for (let i = 0; i < 20; i++)
      expect((await broker.call("/register", { scope: "octo-org/made-up" })).status).toBe(404);
    expect(broker.double.count("POST", path("made-up")) - before).toBe(1);
    // The twin: another kind for the same scope is its own question to GitHub.
    expect((await broker.call("/remove", { scope: "octo-org/made-up" })).status).toBe(404);
    expect(broker.double.count("POST", "/repos/octo-org/made-up/actions/runners/remove-token")).toBe(1);
  });

  it("a scope the credential cannot manage (403, not rate limited) → 404", async () => {
    broker.double.fault({ path: path("nope"), status: 403 });
    const answer = await broker.call("/register", { scope: "octo-org/nope" });
    expect(answer.status).toBe(404);
    expect(answer.text).not.toContain(doubleErrorCanary);
  });

  it("a renamed repository (GitHub redirects) → 404, and the redirect is not followed", async () => {
    broker.double.fault({
      path: path("renamed"),
      status: 307,
      headers: { location: `${broker.double.url}${path("octo-repo")}` },
    });
    const before = broker.double.count("POST", path("octo-repo"));
    const answer = await broker.call("/register", { scope: "octo-org/renamed" });
    expect(answer.status).toBe(404);
    expect(broker.double.count("POST", path("octo-repo"))).toBe(before);
  });

  it("a primary rate limit (403, x-ratelimit-remaining: 0) → 503 with Retry-After from x-ratelimit-reset", async () => {
    const reset = Math.floor(Date.now() / 1000) + 120;
    broker.double.fault({
      path: path("limited"),
      status: 403,
      headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) },
    });
    const before = broker.double.calls.length;
    const answer = await broker.call("/register", { scope: "octo-org/limited" });
    expect(answer.status).toBe(503);
    expect(answer.json).toMatchObject({ error: { code: "TG_GITHUB_RATE_LIMITED" } });
    const retryAfter = Number(answer.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(115);
    expect(retryAfter).toBeLessThanOrEqual(121);
    // A rate limit is not retried: retrying would only spend more of it.
    expect(broker.double.calls.length - before).toBe(1);
  });

  it("a secondary rate limit (429 with retry-after) → 503 with that Retry-After", async () => {
    broker.double.fault({ path: path("secondary"), status: 429, headers: { "retry-after": "7" } });
    const answer = await broker.call("/register", { scope: "octo-org/secondary" });
    expect(answer.status).toBe(503);
    expect(answer.headers.get("retry-after")).toBe("7");
  });

  it("a 429 without any rate-limit header → 503 with Retry-After 60, not retried", async () => {
    broker.double.fault({ path: path("bare-429"), status: 429 });
    const before = broker.double.count("POST", path("bare-429"));
    const answer = await broker.call("/register", { scope: "octo-org/bare-429" });
    expect(answer.status).toBe(503);
    expect(answer.json).toMatchObject({ error: { code: "TG_GITHUB_RATE_LIMITED" } });
    expect(answer.headers.get("retry-after")).toBe("60");
    expect(broker.double.count("POST", path("bare-429")) - before).toBe(1);
    expect(answer.text).not.toContain(doubleErrorCanary);
  });

  it("5xx twice then success → retried, 200", async () => {
    broker.double.fault({ path: path("octo-repo"), status: 502, times: 2 });
    const before = broker.double.count("POST", path("octo-repo"));
    const answer = await broker.call("/register", { scope: "octo-org/octo-repo" });
    expect(answer.status).toBe(200);
    expect(broker.double.count("POST", path("octo-repo")) - before).toBe(3);
  });

  it("5xx every time → 502 TG_GITHUB_UNAVAILABLE after at most three attempts", async () => {
    broker.double.fault({ path: path("down"), status: 500 });
    const before = broker.double.count("POST", path("down"));
    const answer = await broker.call("/register", { scope: "octo-org/down" });
    expect(answer.status).toBe(502);
    expect(answer.json).toMatchObject({ error: { code: "TG_GITHUB_UNAVAILABLE" } });
    expect(broker.double.count("POST", path("down")) - before).toBe(3);
    expect(answer.text).not.toContain(doubleErrorCanary);
  });

  it("a non-JSON success body → 502", async () => {
    broker.double.fault({ path: path("garbled"), status: 201, body: "not json at all" });
    // `body` is JSON-encoded by the double; a string body is valid JSON, but has no token.
    const answer = await broker.call("/register", { scope: "octo-org/garbled" });
    expect(answer.status).toBe(502);
  });

  it("a rejected credential → 502, and /readyz turns not ready until the credential works again", async () => {
    broker.double.fault({ path: path("octo-revoked"), status: 401 });
    broker.double.fault({ path: "/rate_limit", status: 401 });
    const answer = await broker.call("/register", { scope: "octo-org/octo-revoked" });
    expect(answer.status).toBe(502);
    expect(answer.json).toMatchObject({ error: { code: "TG_GITHUB_CREDENTIAL_REJECTED" } });
    const ready = await fetch(`${broker.gateway.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({
      features: [{ feature: "broker", ready: false, detail: { state: "rejected", credential: "pat" } }],
    });
    broker.double.clearFaults();
    await broker.waitReady();
  });

  it("JIT configs are not retried after GitHub may have created the runner", async () => {
    broker.double.fault({ path: /generate-jitconfig$/, status: 502 });
    const before = broker.double.count("POST", /generate-jitconfig$/);
    const answer = await broker.call("/jitconfig", {
      scope: "octo-org/octo-repo",
      name: "once",
      labels: ["x"],
    });
    expect(answer.status).toBe(502);
    expect(broker.double.count("POST", /generate-jitconfig$/) - before).toBe(1);
  });
});

describe("timeouts", () => {
  let broker: BrokerHarness;

  beforeAll(async () => {
    broker = await startBrokerHarness({
      yaml: (_issuer, api) => noneBrokerYaml(api).replace("timeout: 2s", "timeout: 400ms"),
    });
    await broker.waitReady();
  });
  afterAll(async () => {
    await broker.close();
  });

  it("GitHub slower than broker.github.timeout → 504 TG_GITHUB_TIMEOUT after bounded retries", async () => {
    broker.double.fault({ path: path("slow"), status: 201, delayMs: 1500 });
    const before = broker.double.count("POST", path("slow"));
    const answer = await broker.call("/register", { scope: "octo-org/slow" });
    expect(answer.status).toBe(504);
    expect(answer.json).toMatchObject({ error: { code: "TG_GITHUB_TIMEOUT" } });
    expect(broker.double.count("POST", path("slow")) - before).toBe(3);
  });

  it("GitHub within the timeout → 200 (the twin)", async () => {
    broker.double.fault({
      path: path("quick"),
      status: 201,
      delayMs: 10,
      times: 1,
      body: { token: "QUICKTOKEN123456789", expires_at: new Date(Date.now() + 3_600_000).toISOString() },
    });
    expect((await broker.call("/register", { scope: "octo-org/quick" })).status).toBe(200);
  });
});

describe("degrading gracefully: a still-valid token bridges a GitHub outage", () => {
  let broker: BrokerHarness;

  beforeAll(async () => {
    // Every cached token counts as due for refresh at once, so each request asks GitHub first.
    broker = await startBrokerHarness({
      yaml: (_issuer, api) => noneBrokerYaml(api),
      feature: { freshMarginMs: 2 * 3_600_000 },
    });
    await broker.waitReady();
  });
  afterEach(() => broker.double.clearFaults());
  afterAll(async () => {
    await broker.close();
  });

  it("GitHub down: the cached (still valid) token is served, marked as a cache hit", async () => {
    const first = await broker.call("/register", { scope: "octo-org/octo-repo" });
    expect(first.status).toBe(200);
    broker.double.fault({ path: path("octo-repo"), status: 503 });
    const second = await broker.call("/register", { scope: "octo-org/octo-repo" });
    expect(second.status).toBe(200);
    expect(second.json.token).toBe(first.json.token);
    const events = await broker.gateway.auditEvents();
    expect(events.at(-1)).toMatchObject({ decision: "allow", cache_hit: true, scope: "octo-org/octo-repo" });
  });

  it("a rejected credential is not bridged: 502 even with a cached token", async () => {
    broker.double.fault({ path: path("octo-repo"), status: 401 });
    const answer = await broker.call("/register", { scope: "octo-org/octo-repo" });
    expect(answer.status).toBe(502);
  });
});
