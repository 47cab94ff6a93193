import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedactor } from "../../src/audit/index.js";
import { createGitHubApi, parseScope, readBrokerCredential } from "../../src/broker/index.js";
import type { Scope } from "../../src/broker/types.js";
import { type AppKeys, createAppKeys, startGitHubApiDouble } from "../helpers/github-api-double.js";
import { type BrokerHarness, noneBrokerYaml, startBrokerHarness } from "./broker-harness.js";

const app: AppKeys = createAppKeys("777");
const exchange = /^\/app\/installations\/\d+\/access_tokens$/;

describe("GitHub App with an installation id (the reference's App deployment)", () => {
  let broker: BrokerHarness;

  beforeAll(async () => {
    broker = await startBrokerHarness({
      yaml: (_issuer, api) => noneBrokerYaml(api),
      double: { app },
      env: () => ({
        GITHUB_APP_ID: app.appId,
        GITHUB_APP_PRIVATE_KEY: app.privateKeyPkcs1,
        GITHUB_INSTALLATION_ID: "4242",
      }),
    });
    await broker.waitReady();
  });
  afterAll(async () => {
    await broker.close();
  });

  it("proves the key with GET /app and one installation token at start-up", () => {
    expect(broker.double.count("GET", "/app")).toBe(1);
    expect(broker.double.count("POST", "/app/installations/4242/access_tokens")).toBe(1);
  });

  it("mints runner tokens with the cached installation token: no new exchange per scope", async () => {
    expect((await broker.call("/register", { scope: "octo-org/octo-repo" })).status).toBe(200);
    expect((await broker.call("/remove", { scope: "octo-org" })).status).toBe(200);
    expect(broker.double.count("POST", exchange)).toBe(1);
    const runnerCalls = broker.double.calls.filter((call) => call.path.includes("/actions/runners/"));
    expect(runnerCalls.map((call) => call.credential)).toEqual(["installation", "installation"]);
  });

  it("a scope outside the installation's owner is refused by GitHub → 404", async () => {
    const answer = await broker.call("/register", { scope: "octocat/hello" });
    expect(answer.status).toBe(404);
  });
});

describe("GitHub App without an installation id: one App, many owners", () => {
  let broker: BrokerHarness;

  beforeAll(async () => {
    broker = await startBrokerHarness({
      yaml: (_issuer, api) => noneBrokerYaml(api, "", ["octo-labs"]),
      double: {
        app,
        orgs: ["octo-org", "ghost-org", "octo-labs"],
        installations: { "octo-org": 4242, octocat: 4343, "octo-labs": 4444 },
      },
      env: () => ({ GITHUB_APP_ID: app.appId, GITHUB_APP_PRIVATE_KEY: app.privateKeyPkcs8 }),
    });
    await broker.waitReady();
  });
  afterAll(async () => {
    await broker.close();
  });

  it("finds the installation of the scope's owner once, and uses it for the owner's other scopes", async () => {
    expect((await broker.call("/register", { scope: "octo-org/octo-repo" })).status).toBe(200);
    expect((await broker.call("/register", { scope: "octo-org" })).status).toBe(200);
    expect(broker.double.count("GET", "/repos/octo-org/octo-repo/installation")).toBe(1);
    expect(broker.double.count("GET", "/orgs/octo-org/installation")).toBe(0);
    expect(broker.double.count("POST", "/app/installations/4242/access_tokens")).toBe(1);
  });

  it("another owner gets its own installation", async () => {
    expect((await broker.call("/register", { scope: "octocat/hello" })).status).toBe(200);
    expect(broker.double.count("POST", "/app/installations/4343/access_tokens")).toBe(1);
  });

  it("an exchange that keeps failing is tried three times in all, not three times per attempt of the call", async () => {
    broker.double.fault({ path: "/app/installations/4444/access_tokens", status: 502 });
    try {
      const before = broker.double.count("POST", "/app/installations/4444/access_tokens");
      const answer = await broker.call("/register", { scope: "octo-labs" });
      expect(answer.status).toBe(502);
      expect(answer.json).toMatchObject({ error: { code: "TG_GITHUB_UNAVAILABLE" } });
      expect(broker.double.count("POST", "/app/installations/4444/access_tokens") - before).toBe(3);
      expect(broker.double.count("POST", "/orgs/octo-labs/actions/runners/registration-token")).toBe(0);
    } finally {
      broker.double.clearFaults();
    }
    // The twin: once the exchange works again, the same scope is served.
    expect((await broker.call("/register", { scope: "octo-labs" })).status).toBe(200);
  });

  it("an owner without the App installed → 404", async () => {
    const answer = await broker.call("/register", { scope: "ghost-org" });
    expect(answer.status).toBe(404);
    expect(broker.double.count("GET", "/orgs/ghost-org/installation")).toBe(1);
  });

  it("an enterprise scope → 404 without calling GitHub (installation tokens cannot manage enterprise runners)", async () => {
    const before = broker.double.calls.length;
    const answer = await broker.call("/register", { scope: "enterprise:octo-corp" });
    expect(answer.status).toBe(404);
    expect(broker.double.calls.length).toBe(before);
    expect((await broker.gateway.auditEvents()).at(-1)!.detail).toContain("manage_runners:enterprise");
  });
});

describe("a wrong App key", () => {
  it("is rejected by GitHub: not ready, and requests get 502", async () => {
    const other = createAppKeys("777");
    const broker = await startBrokerHarness({
      yaml: (_issuer, api) => noneBrokerYaml(api),
      double: { app },
      env: () => ({
        GITHUB_APP_ID: app.appId,
        GITHUB_APP_PRIVATE_KEY: other.privateKeyPkcs1,
        GITHUB_APP_INSTALLATION_ID: "4242",
      }),
    });
    try {
      const answer = await broker.call("/register", { scope: "octo-org" });
      expect(answer.status).toBe(502);
      expect(answer.json).toMatchObject({ error: { code: "TG_GITHUB_CREDENTIAL_REJECTED" } });
      const ready = await fetch(`${broker.gateway.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(broker.double.calls.every((call) => call.credential !== "app-jwt")).toBe(true);
    } finally {
      await broker.close();
    }
  });
});

describe("installation tokens are cached until shortly before they expire", () => {
  it("one exchange for an hour's calls, a new one five minutes before expiry", async () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const clock = () => now;
    const double = await startGitHubApiDouble({ app, clock });
    const { credential } = await readBrokerCredential({
      GITHUB_APP_ID: app.appId,
      GITHUB_APP_PRIVATE_KEY: app.privateKeyPkcs1,
      GITHUB_APP_INSTALLATION_ID: "4242",
    });
    const api = createGitHubApi({
      apiUrl: double.url,
      credential,
      timeoutMs: 2_000,
      clock,
      logger: pino({ level: "silent" }),
      redactor: createRedactor(),
      retryBaseMs: 5,
    });
    try {
      const scope = (parseScope("octo-org") as { scope: Scope }).scope;
      await api.createRunnerToken(scope, "registration");
      now += 54 * 60_000;
      await api.createRunnerToken(scope, "registration");
      expect(double.count("POST", exchange)).toBe(1);
      now += 2 * 60_000; // 56 minutes: inside the five-minute margin
      await api.createRunnerToken(scope, "registration");
      expect(double.count("POST", exchange)).toBe(2);
    } finally {
      await api.close();
      await double.close();
    }
  });
});

describe("credentials from the environment", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tollgate-broker-cred-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a PAT from GITHUB_TOKEN_FILE, trimming the file's newline", async () => {
    const file = join(dir, "token");
    await writeFile(file, "ghp_fromfile1234567890\n");
    const reading = await readBrokerCredential({ GITHUB_TOKEN_FILE: file });
    expect(reading.credential).toEqual({ kind: "pat", token: "ghp_fromfile1234567890" });
    expect(reading.secrets).toContain("ghp_fromfile1234567890");
  });

  it("reads an App key from GITHUB_APP_PRIVATE_KEY_FILE, and a key written with \\n escapes", async () => {
    const file = join(dir, "key.pem");
    await writeFile(file, app.privateKeyPkcs1);
    const fromFile = await readBrokerCredential({ GITHUB_APP_ID: "777", GITHUB_APP_PRIVATE_KEY_FILE: file });
    expect(fromFile.credential).toMatchObject({ kind: "app", appId: "777" });
    const escaped = app.privateKeyPkcs1.trim().replaceAll("\n", "\\n");
    const fromEscaped = await readBrokerCredential({ GITHUB_APP_ID: "777", GITHUB_APP_PRIVATE_KEY: escaped });
    expect(fromEscaped.credential).toEqual(fromFile.credential);
  });

  it("follows the reference's precedence: App with installation id, else PAT, else App with lookups", async () => {
    const base = { GITHUB_APP_ID: "777", GITHUB_APP_PRIVATE_KEY: app.privateKeyPkcs8 };
    expect(
      (await readBrokerCredential({ ...base, GITHUB_TOKEN: "ghp_x12345678", GITHUB_INSTALLATION_ID: "9" }))
        .credential,
    ).toMatchObject({ kind: "app", installationId: 9 });
    expect((await readBrokerCredential({ ...base, GITHUB_TOKEN: "ghp_x12345678" })).credential).toMatchObject(
      { kind: "pat" },
    );
    expect((await readBrokerCredential(base)).credential).toMatchObject({ kind: "app" });
    expect((await readBrokerCredential(base)).credential).not.toHaveProperty("installationId");
  });

  const refused: [string, NodeJS.ProcessEnv, string][] = [
    ["nothing", {}, "no GitHub credential"],
    ["an App id without a key", { GITHUB_APP_ID: "777" }, "GITHUB_APP_PRIVATE_KEY is missing"],
    [
      "a key that is not a key",
      {
        GITHUB_APP_ID: "777",
        GITHUB_APP_PRIVATE_KEY: "-----BEGIN RSA PRIVATE KEY-----\nnope\n-----END RSA PRIVATE KEY-----",
      },
      "not a PEM RSA private key",
    ],
    [
      "both a value and a file",
      { GITHUB_TOKEN: "ghp_a12345678", GITHUB_TOKEN_FILE: "/nonexistent" },
      "set only one",
    ],
    ["an unreadable file", { GITHUB_TOKEN_FILE: "/nonexistent/token" }, "cannot be read (ENOENT)"],
    [
      "two different installation ids",
      {
        GITHUB_APP_ID: "777",
        GITHUB_APP_PRIVATE_KEY: app.privateKeyPkcs8,
        GITHUB_APP_INSTALLATION_ID: "1",
        GITHUB_INSTALLATION_ID: "2",
      },
      "differ",
    ],
    [
      "a non-numeric installation id",
      { GITHUB_APP_ID: "777", GITHUB_APP_PRIVATE_KEY: app.privateKeyPkcs8, GITHUB_INSTALLATION_ID: "abc" },
      "positive whole number",
    ],
  ];
  for (const [name, env, message] of refused) {
    it(`refuses ${name} with a message that names the variable, not its value`, async () => {
      const error = await readBrokerCredential(env).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: "TG_CONFIG_INVALID", message: expect.stringContaining(message) });
      for (const value of Object.values(env))
        if (value !== undefined && value.length > 8) expect((error as Error).message).not.toContain(value);
    });
  }
});
