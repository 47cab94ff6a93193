import { once } from "node:events";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAppKeys, startGitHubApiDouble } from "../helpers/github-api-double.js";
import { type BrokerHarness, noneBrokerYaml, startBrokerHarness } from "./broker-harness.js";

let broker: BrokerHarness;

beforeAll(async () => {
  // Every denial on its own audit line: the audit tests below read the last ones of many identical
  // refusals, which the default would fold into a counted line (test/audit/denial-aggregation…).
  broker = await startBrokerHarness({
    yaml: (_issuer, api) => `${noneBrokerYaml(api)}\naudit: { denials: { window: 0s } }\n`,
  });
  await broker.waitReady();
});

afterAll(async () => {
  await broker.close();
});

const tokenPath = (scope: string, kind = "registration-token") =>
  scope.includes("/") ? `/repos/${scope}/actions/runners/${kind}` : `/orgs/${scope}/actions/runners/${kind}`;

describe("the github-runner-token-proxy surface", () => {
  it("POST /register answers {token, expires_at} for a repository", async () => {
    const answer = await broker.call("/register", { scope: "octocat/hello" });
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.json).sort()).toEqual(["expires_at", "token"]);
    expect(broker.double.issued).toContain(answer.json.token);
    expect(Date.parse(answer.json.expires_at as string)).toBeGreaterThan(Date.now());
    expect(answer.headers.get("cache-control")).toBe("no-store");
    expect(broker.double.count("POST", tokenPath("octocat/hello"))).toBe(1);
  });

  it("POST /remove answers a removal token from the remove-token endpoint", async () => {
    const answer = await broker.call("/remove", { scope: "octocat/hello" });
    expect(answer.status).toBe(200);
    expect(broker.double.count("POST", tokenPath("octocat/hello", "remove-token"))).toBe(1);
    const registration = await broker.call("/register", { scope: "octocat/hello" });
    expect(answer.json.token).not.toBe(registration.json.token);
  });

  it("an organisation scope uses the orgs endpoint, an enterprise scope the enterprises endpoint", async () => {
    expect((await broker.call("/register", { scope: "octo-org" })).status).toBe(200);
    expect(broker.double.count("POST", "/orgs/octo-org/actions/runners/registration-token")).toBe(1);
    expect((await broker.call("/register", { scope: "enterprise:octo-corp" })).status).toBe(200);
    expect(broker.double.count("POST", "/enterprises/octo-corp/actions/runners/registration-token")).toBe(1);
  });

  it("accepts curl --data's form content type (the reference README's example)", async () => {
    const answer = await broker.call("/register", '{"scope":"octo-org/octo-repo"}', {
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(answer.status).toBe(200);
  });

  it("answers 405 with Allow: POST for another method", async () => {
    const answer = await broker.call("/register", undefined, { method: "GET" });
    expect(answer.status).toBe(405);
    expect(answer.headers.get("allow")).toBe("POST");
    expect(answer.json).toMatchObject({ error: { code: "TG_METHOD_NOT_ALLOWED" } });
  });

  it("claims exactly its paths: /register/ and /registerx are not the broker", async () => {
    expect((await broker.call("/register/", { scope: "octo-org" })).json).toMatchObject({
      error: { code: "TG_ROUTE_NOT_FOUND" },
    });
    expect((await broker.call("/registerx", { scope: "octo-org" })).json).toMatchObject({
      error: { code: "TG_ROUTE_NOT_FOUND" },
    });
    expect((await broker.call("/register?via=query", { scope: "octo-org" })).status).toBe(200);
  });
});

describe("request bodies", () => {
  const refused = [
    ["unknown field", '{"scope":"octo-org","extra":1}', 400, "TG_BAD_REQUEST"],
    ["non-string scope", '{"scope":42}', 400, "TG_BAD_REQUEST"],
    ["array scope", '{"scope":["octo-org"]}', 400, "TG_BAD_REQUEST"],
    ["missing scope", "{}", 400, "TG_BAD_REQUEST"],
    ["not JSON", "scope=octo-org", 400, "TG_BAD_REQUEST"],
    ["a JSON array", '["octo-org"]', 400, "TG_BAD_REQUEST"],
    ["trailing data", '{"scope":"octo-org"} {}', 400, "TG_BAD_REQUEST"],
    ["field name in another case", '{"Scope":"octo-org"}', 400, "TG_BAD_REQUEST"],
    ["a path in the scope", '{"scope":"octo-org/../payroll"}', 400, "TG_SCOPE_INVALID"],
    ["an encoded scope", '{"scope":"octo-org%2Fpayroll"}', 400, "TG_SCOPE_INVALID"],
    ["a denied scope", '{"scope":"octo-org/payroll"}', 403, "TG_SCOPE_DENIED"],
    ["a denied scope in another case", '{"scope":"Octo-Org/PAYROLL"}', 403, "TG_SCOPE_DENIED"],
    ["a scope not allowed", '{"scope":"other-org"}', 403, "TG_SCOPE_DENIED"],
  ] as const;
  for (const [name, body, status, code] of refused) {
    it(`refuses ${name} (${status} ${code}) before any GitHub call`, async () => {
      const before = broker.double.calls.length;
      const answer = await broker.call("/register", body);
      expect(answer.status).toBe(status);
      expect(answer.json).toMatchObject({ error: { code } });
      expect(broker.double.calls.length).toBe(before);
    });
  }

  it("accepts the allowed twin of those bodies", async () => {
    expect((await broker.call("/register", '{"scope":"octo-org/octo-repo"}')).status).toBe(200);
  });

  it("refuses a body over 64 KiB with 413, and accepts one just under", async () => {
    const big = JSON.stringify({ scope: `octo-org${" ".repeat(64 * 1024)}` });
    expect((await broker.call("/register", big)).status).toBe(413);
    const padded = `{"scope":"octo-org"}${" ".repeat(64 * 1024 - 30)}`;
    expect((await broker.call("/register", padded)).status).toBe(200);
  });

  it("never repeats the caller's input in an error", async () => {
    const answer = await broker.call("/register", '{"scope":"octo-org/<script>x</script>"}');
    expect(answer.status).toBe(400);
    expect(answer.text).not.toContain("script");
  });
});

describe("caching: one GitHub call per scope and kind", () => {
  it("serves 200 sequential requests for one scope with one GitHub call", async () => {
    const path = tokenPath("octo-org/octo-repo");
    const before = broker.double.count("POST", path);
    const tokens = new Set<unknown>();
    for (let i = 0; i < 200; i++)
      tokens.add((await broker.call("/register", { scope: "octo-org/octo-repo" })).json.token);
    expect(tokens.size).toBe(1);
    expect(broker.double.count("POST", path)).toBe(before === 0 ? 1 : before);
  });

  it("shares one GitHub call between 50 concurrent misses", async () => {
    broker.double.fault({
      path: "/repos/octo-org/a1/actions/runners/registration-token",
      status: 201,
      delayMs: 50,
      body: { token: "SLOWTOKEN1234567890", expires_at: new Date(Date.now() + 3_600_000).toISOString() },
    });
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => broker.call("/register", { scope: "octo-org/a1" })),
    );
    expect(
      answers.every((answer) => answer.status === 200 && answer.json.token === "SLOWTOKEN1234567890"),
    ).toBe(true);
    expect(broker.double.count("POST", "/repos/octo-org/a1/actions/runners/registration-token")).toBe(1);
  });

  it("does not share between scopes or kinds", async () => {
    const before = broker.double.calls.length;
    await Promise.all([
      broker.call("/register", { scope: "octo-org/b1" }),
      broker.call("/register", { scope: "octo-org/b2" }),
      broker.call("/remove", { scope: "octo-org/b1" }),
    ]);
    // b1 and b2 do not exist at the double (404), which is not cached either: three calls.
    expect(broker.double.calls.length - before).toBe(3);
  });

  it("a scope written in another case is the same cached scope", async () => {
    const first = await broker.call("/register", { scope: "octo-org/octo-repo" });
    const before = broker.double.calls.length;
    const second = await broker.call("/register", { scope: "OCTO-ORG/Octo-Repo" });
    expect(second.json.token).toBe(first.json.token);
    expect(broker.double.calls.length).toBe(before);
  });
});

describe("POST /jitconfig", () => {
  const settings = { scope: "octo-org/octo-repo", name: "runner-1", labels: ["self-hosted", "linux", "x64"] };

  it("forwards to generate-jitconfig with GitHub's defaults and answers {runner, encoded_jit_config}", async () => {
    const answer = await broker.call("/jitconfig", settings);
    expect(answer.status).toBe(201);
    expect(Object.keys(answer.json).sort()).toEqual(["encoded_jit_config", "runner"]);
    expect(answer.json.runner).toMatchObject({ name: "runner-1", runner_group_id: 1 });
    const sent = broker.double.calls.findLast((call) => call.path.endsWith("/generate-jitconfig"));
    expect(sent).toMatchObject({
      path: "/repos/octo-org/octo-repo/actions/runners/generate-jitconfig",
      body: {
        name: "runner-1",
        runner_group_id: 1,
        labels: ["self-hosted", "linux", "x64"],
        work_folder: "_work",
      },
    });
  });

  it("is never cached: two runners, two GitHub calls, two configs", async () => {
    const before = broker.double.count("POST", /generate-jitconfig$/);
    const a = await broker.call("/jitconfig", { ...settings, name: "runner-2" });
    const b = await broker.call("/jitconfig", { ...settings, name: "runner-3" });
    expect(a.json.encoded_jit_config).not.toBe(b.json.encoded_jit_config);
    expect(broker.double.count("POST", /generate-jitconfig$/) - before).toBe(2);
  });

  it("maps a taken name to 409 without retrying (creating a runner is not idempotent)", async () => {
    const before = broker.double.count("POST", /generate-jitconfig$/);
    const answer = await broker.call("/jitconfig", { ...settings, name: "runner-1" });
    expect(answer.status).toBe(409);
    expect(answer.json).toMatchObject({ error: { code: "TG_GITHUB_CONFLICT" } });
    expect(broker.double.count("POST", /generate-jitconfig$/) - before).toBe(1);
  });

  it("maps an unknown runner group to 422", async () => {
    const answer = await broker.call("/jitconfig", { ...settings, name: "runner-9", runner_group_id: 77 });
    expect(answer.status).toBe(422);
    expect(answer.json).toMatchObject({ error: { code: "TG_GITHUB_REJECTED" } });
  });

  const invalid = [
    ["no name", { scope: "octo-org", labels: ["x"] }],
    ["a name with a space", { ...settings, name: "runner 1" }],
    ["no labels", { ...settings, labels: [] }],
    ["a label with a comma", { ...settings, labels: ["a,b"] }],
    ["a repeated label", { ...settings, labels: ["a", "a"] }],
    ["a fractional runner group", { ...settings, runner_group_id: 1.5 }],
    ["a work folder above the runner", { ...settings, work_folder: "../etc" }],
    ["an absolute work folder", { ...settings, work_folder: "/etc" }],
    ["an unknown field", { ...settings, ephemeral: true }],
  ] as const;
  for (const [name, body] of invalid) {
    it(`refuses ${name} with 400 before any GitHub call`, async () => {
      const before = broker.double.calls.length;
      const answer = await broker.call("/jitconfig", body);
      expect(answer.status).toBe(400);
      expect(answer.json).toMatchObject({ error: { code: "TG_BAD_REQUEST" } });
      expect(broker.double.calls.length).toBe(before);
    });
  }

  it("accepts a relative work folder and an explicit group (the valid twin)", async () => {
    const answer = await broker.call("/jitconfig", {
      ...settings,
      name: "runner-4",
      work_folder: "work/jobs",
      runner_group_id: 1,
    });
    expect(answer.status).toBe(201);
  });

  it("refuses registration-only fields on /register", async () => {
    expect((await broker.call("/register", { scope: "octo-org", name: "x" })).status).toBe(400);
  });
});

describe("audit events", () => {
  it("writes one event per decision with scope, decision and cache use, never a token", async () => {
    await broker.call("/register", { scope: "octo-org" });
    await broker.call("/register", { scope: "octo-org/payroll" });
    await broker.call("/jitconfig", { scope: "octo-org/octo-repo", name: "audited-1", labels: ["x"] });
    const events = await broker.gateway.auditEvents();
    const runner = events.filter((event) => String(event.event).startsWith("runner."));
    const lastRegistration = runner.filter((event) => event.event === "runner.registration_token").slice(-2);
    expect(lastRegistration[0]).toMatchObject({
      decision: "allow",
      reason: "allowed-by-scope-list",
      scope: "octo-org",
      cache_hit: true,
      status: 200,
    });
    expect(lastRegistration[1]).toMatchObject({
      decision: "deny",
      reason: "TG_SCOPE_DENIED",
      scope: "octo-org/payroll",
      status: 403,
    });
    expect(lastRegistration[1]!.detail).toContain('denied_scopes entry "octo-org/payroll"');
    expect(runner.at(-1)).toMatchObject({
      event: "runner.jitconfig",
      decision: "allow",
      runner_name: "audited-1",
      status: 201,
    });
    const output = await broker.gateway.allOutput();
    for (const secret of broker.double.issued) expect(output).not.toContain(secret);
    expect(output).not.toContain(broker.double.pat);
  });
});

describe("slow and oversized bodies", () => {
  let slow: BrokerHarness;
  beforeAll(async () => {
    slow = await startBrokerHarness({
      yaml: (_issuer, api) => noneBrokerYaml(api),
      feature: { bodyTimeoutMs: 400 },
    });
    await slow.waitReady();
  });
  afterAll(async () => {
    await slow.close();
  });

  /** Sends `parts` over one raw connection, `gapMs` apart; resolves with all the server sent before closing. */
  async function raw(parts: string[], gapMs: number): Promise<string> {
    const socket = connect(Number(new URL(slow.gateway.url).port), "127.0.0.1");
    await once(socket, "connect");
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      answer += chunk;
    });
    const closed = once(socket, "close");
    for (const part of parts) {
      if (socket.destroyed) break;
      socket.write(part);
      await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 3_000))]);
    socket.destroy();
    return answer;
  }

  it("a body that stops arriving gets 408 TG_REQUEST_TIMEOUT and the connection is closed", async () => {
    const started = Date.now();
    const answer = await raw(
      ["POST /register HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 30\r\n\r\n", '{"sco'],
      50,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(answer).toContain("TG_REQUEST_TIMEOUT");
    expect(answer.toLowerCase()).toContain("connection: close");
    expect(Date.now() - started).toBeLessThan(2_900);
    expect((await slow.gateway.auditEvents()).at(-1)).toMatchObject({
      reason: "TG_REQUEST_TIMEOUT",
      status: 408,
    });
  });

  it("the twin: a body that trickles in, but whole within the limit, is served", async () => {
    const body = '{"scope":"octo-org"}';
    const answer = await raw(
      [
        `POST /register HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n`,
        body.slice(0, 8),
        body.slice(8),
      ],
      80,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
  });

  it("a chunked body that grows past 64 KiB is answered 413, not cut off", async () => {
    const chunk = "x".repeat(16 * 1024);
    const piece = `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
    const started = Date.now();
    const answer = await raw(
      [
        "POST /register HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n",
        ...Array(6).fill(piece),
      ],
      10,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer).toContain("TG_BODY_TOO_LARGE");
    // The rest of the body is never read, so the connection is closed rather than left to the client.
    expect(answer.toLowerCase()).toContain("connection: close");
    expect(Date.now() - started).toBeLessThan(2_500);
  });
});

describe("one spelling per repository (issue 12, class 4)", () => {
  it("refuses every spelling of a denied repository, without a GitHub call, audited under its one name", async () => {
    const before = broker.double.calls.length;
    for (const spelling of ["octo-org/payroll.git", "Octo-Org/PAYROLL.GIT", "octo-org/Payroll.GiT"]) {
      const answer = await broker.call("/register", { scope: spelling });
      expect(answer.status).toBe(403);
      expect(answer.json).toMatchObject({ error: { code: "TG_SCOPE_DENIED" } });
      expect((await broker.gateway.auditEvents()).at(-1)).toMatchObject({
        decision: "deny",
        reason: "TG_SCOPE_DENIED",
        scope: "octo-org/payroll",
      });
    }
    expect(broker.double.calls.length).toBe(before);
  });

  it("the twin: an allowed repository's .git spelling is the same scope, cache entry and GitHub path", async () => {
    const plain = await broker.call("/register", { scope: "octo-org/octo-repo" });
    const before = broker.double.calls.length;
    const suffixed = await broker.call("/register", { scope: "Octo-Org/Octo-Repo.Git" });
    expect(suffixed.status).toBe(200);
    expect(suffixed.json.token).toBe(plain.json.token);
    expect(broker.double.calls.length).toBe(before);
    expect((await broker.gateway.auditEvents()).at(-1)).toMatchObject({
      scope: "octo-org/octo-repo",
      cache_hit: true,
    });
    const jit = await broker.call("/jitconfig", {
      scope: "octo-org/octo-repo.git",
      name: "dotgit-1",
      labels: ["x"],
    });
    expect(jit.status).toBe(201);
    expect(broker.double.calls.at(-1)?.path).toBe(
      "/repos/octo-org/octo-repo/actions/runners/generate-jitconfig",
    );
  });

  it("refuses names GitHub reserves (x.git.git, .git alone, x.wiki) with 400 before any GitHub call", async () => {
    const before = broker.double.calls.length;
    for (const spelling of ["octo-org/octo-repo.git.git", "octo-org/.git", "octo-org/octo-repo.wiki"]) {
      const answer = await broker.call("/register", { scope: spelling });
      expect(answer.status).toBe(400);
      expect(answer.json).toMatchObject({ error: { code: "TG_SCOPE_INVALID" } });
    }
    expect(broker.double.calls.length).toBe(before);
  });
});

describe("renamed and transferred repositories: GitHub's redirect is refused, never followed", () => {
  // `old-payroll` is what `payroll` (denied) was called; `old-repo` is what `octo-repo` (allowed) was.
  const renamed = { "octo-org/old-payroll": "octo-org/payroll", "octo-org/old-repo": "octo-org/octo-repo" };
  let moved: BrokerHarness;
  let app: BrokerHarness;

  beforeAll(async () => {
    moved = await startBrokerHarness({ yaml: (_issuer, api) => noneBrokerYaml(api), double: { renamed } });
    const keys = createAppKeys("778");
    app = await startBrokerHarness({
      yaml: (_issuer, api) => noneBrokerYaml(api),
      double: { renamed, app: keys },
      env: () => ({ GITHUB_APP_ID: keys.appId, GITHUB_APP_PRIVATE_KEY: keys.privateKeyPkcs8 }),
    });
    await Promise.all([moved.waitReady(), app.waitReady()]);
  });
  afterAll(async () => {
    await Promise.all([moved.close(), app.close()]);
  });

  /** Calls under the current name or the redirect target: there must be none. */
  const followed = (harness: BrokerHarness) =>
    harness.double.calls.filter(
      (call) => call.path.startsWith("/repositories/") || call.path.startsWith("/repos/octo-org/payroll"),
    );

  const endpoints = [
    ["/register", "registration-token", {}],
    ["/remove", "remove-token", {}],
    ["/jitconfig", "generate-jitconfig", { name: "moved-1", labels: ["x"] }],
  ] as const;

  for (const [route, endpoint, extra] of endpoints) {
    it(`${route}: the old name of a denied repository gets 307 from GitHub → 404 naming the fix, audited`, async () => {
      const path = `/repos/octo-org/old-payroll/actions/runners/${endpoint}`;
      const answer = await moved.call(route, { scope: "octo-org/old-payroll", ...extra });
      expect(answer.status).toBe(404);
      expect(answer.json).toMatchObject({ error: { code: "TG_GITHUB_NOT_FOUND" } });
      // Asked once (a refusal is not retried), and the Location was never requested.
      expect(moved.double.count("POST", path)).toBe(1);
      expect(followed(moved)).toEqual([]);
      const event = (await moved.gateway.auditEvents()).at(-1)!;
      expect(event).toMatchObject({
        scope: "octo-org/old-payroll",
        reason: "TG_GITHUB_NOT_FOUND",
        status: 404,
      });
      expect(event.detail).toContain("GitHub answered 307");
      expect(event.detail).toContain("use its current name");
    });
  }

  it("the old name of an allowed repository is refused too: the lists never saw the name GitHub would use", async () => {
    const answer = await moved.call("/register", { scope: "Octo-Org/Old-Repo.git" });
    expect(answer.status).toBe(404);
    expect(moved.double.count("POST", "/repos/octo-org/old-repo/actions/runners/registration-token")).toBe(1);
    expect(moved.double.count("POST", "/repos/octo-org/octo-repo/actions/runners/registration-token")).toBe(
      0,
    );
    // The twin: the current name works.
    expect((await moved.call("/register", { scope: "octo-org/octo-repo" })).status).toBe(200);
  });

  it("with a GitHub App, the installation lookup's 301 is refused the same way", async () => {
    const answer = await app.call("/register", { scope: "octo-org/old-payroll" });
    expect(answer.status).toBe(404);
    expect(app.double.count("GET", "/repos/octo-org/old-payroll/installation")).toBe(1);
    expect(followed(app)).toEqual([]);
    const event = (await app.gateway.auditEvents()).at(-1)!;
    expect(event.detail).toContain("GitHub answered 301");
    expect(event.detail).toContain("use its current name");
  });

  it("the App's installation-token exchange does not follow a redirect either", async () => {
    const double = await startGitHubApiDouble({ app: createAppKeys("779") });
    const exchange = "/app/installations/4242/access_tokens";
    double.fault({
      path: exchange,
      status: 307,
      times: 1,
      headers: { location: `${double.url}/elsewhere${exchange}` },
    });
    const installed = await startBrokerHarness({
      yaml: (_issuer, api) => noneBrokerYaml(api),
      sharedDouble: double,
      env: () => ({
        GITHUB_APP_ID: double.app.appId,
        GITHUB_APP_PRIVATE_KEY: double.app.privateKeyPkcs8,
        GITHUB_INSTALLATION_ID: "4242",
      }),
    });
    try {
      // The redirect is an unexpected answer (502-class, retried); the retry gets the real exchange.
      await installed.waitReady();
      expect(double.count("POST", `/elsewhere${exchange}`)).toBe(0);
      expect(double.count("POST", exchange)).toBe(2);
    } finally {
      await installed.close();
      await double.close();
    }
  });
});
