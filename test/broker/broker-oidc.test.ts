import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendExpectingContinue } from "../helpers/expect-continue-client.js";
import { devIssuerYaml } from "../helpers/gateway-harness.js";
import { type BrokerHarness, startBrokerHarness } from "./broker-harness.js";

let broker: BrokerHarness;

beforeAll(async () => {
  broker = await startBrokerHarness({
    yaml: (issuer, api) => `${devIssuerYaml(issuer)}policies:
  octo-ci:
    claims:
      repository_owner_id: 65
      event_name: push
  no-forks:
    claims:
      repository_owner_id: 65
      repository: octo-org/forked
broker:
  github:
    api_url: ${api}
  allowed_scopes: ["match:octo-org(/.*)?"]
  denied_scopes: ["octo-org/payroll"]
  grants:
    - allow: [octo-ci]
      deny: [no-forks]
      actions: [register, remove]
      scopes: ["{repository}"]
    - allow: [octo-ci]
      actions: [jitconfig]
      scopes: ["{repository_owner}"]
`,
  });
  await broker.waitReady();
});

afterAll(async () => {
  await broker.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("authorization: oidc", () => {
  it("invites a body (100 Continue) only once the caller is authenticated; a refusal closes the connection", async () => {
    const body = Buffer.from(JSON.stringify({ scope: "octo-org/octo-repo" }));
    const port = Number(new URL(broker.gateway.url).port);
    const send = (headers: Record<string, string>) =>
      sendExpectingContinue(
        port,
        "POST /register HTTP/1.1",
        { "content-type": "application/json", ...headers },
        body,
      );
    for (const headers of [{}, bearer("not-a-token")]) {
      expect(await send(headers)).toEqual({ sawContinue: false, status: 401, closed: true });
    }
    // The twin: an authenticated caller is invited, sends the scope, and gets its token.
    const admitted = await send(bearer(await broker.gateway.mint()));
    expect(admitted).toMatchObject({ sawContinue: true, status: 200 });
  });

  it("a workflow registers a runner for its own repository", async () => {
    const token = await broker.gateway.mint();
    const answer = await broker.call(
      "/register",
      { scope: "octo-org/octo-repo" },
      { headers: bearer(token) },
    );
    expect(answer.status).toBe(200);
    const event = (await broker.gateway.auditEvents()).at(-1)!;
    expect(event).toMatchObject({
      event: "runner.registration_token",
      decision: "allow",
      reason: "allowed-by-grant[0]",
      policy: "octo-ci",
      scope: "octo-org/octo-repo",
      identity: { repository: "octo-org/octo-repo", repository_owner_id: "65" },
    });
    expect(event.token_sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("…but not for another repository of the same organisation (403, no scope matched)", async () => {
    const token = await broker.gateway.mint();
    const answer = await broker.call(
      "/register",
      { scope: "octo-org/other-repo" },
      { headers: bearer(token) },
    );
    expect(answer.status).toBe(403);
    expect(answer.json).toMatchObject({ error: { code: "TG_POLICY_DENIED" } });
    expect((await broker.gateway.auditEvents()).at(-1)).toMatchObject({
      decision: "deny",
      reason: "TG_POLICY_DENIED",
    });
  });

  it("a grant's scope binds the action: jitconfig only for the owner's organisation", async () => {
    const token = await broker.gateway.mint();
    const own = await broker.call(
      "/jitconfig",
      { scope: "octo-org", name: "oidc-runner", labels: ["x"] },
      { headers: bearer(token) },
    );
    expect(own.status).toBe(201);
    const repo = await broker.call(
      "/jitconfig",
      { scope: "octo-org/octo-repo", name: "oidc-runner-2", labels: ["x"] },
      { headers: bearer(token) },
    );
    expect(repo.status).toBe(403);
  });

  it("the global deny list applies before the grants", async () => {
    const token = await broker.gateway.mint({ repository: "octo-org/payroll" });
    const answer = await broker.call("/register", { scope: "octo-org/payroll" }, { headers: bearer(token) });
    expect(answer.status).toBe(403);
    expect(answer.json).toMatchObject({ error: { code: "TG_SCOPE_DENIED" } });
  });

  it("a grant's deny policy refuses a caller its allow policy admits", async () => {
    const token = await broker.gateway.mint({ repository: "octo-org/forked" });
    const answer = await broker.call("/register", { scope: "octo-org/forked" }, { headers: bearer(token) });
    expect(answer.status).toBe(403);
    expect((await broker.gateway.auditEvents()).at(-1)).toMatchObject({
      policy: "no-forks",
      decision: "deny",
    });
  });

  it("a caller of another owner is refused (no policy matched)", async () => {
    const token = await broker.gateway.mint({ repository_owner_id: "66" });
    const answer = await broker.call(
      "/register",
      { scope: "octo-org/octo-repo" },
      { headers: bearer(token) },
    );
    expect(answer.status).toBe(403);
    expect(answer.json).toMatchObject({ error: { code: "TG_POLICY_DENIED" } });
  });

  it("no token → 401 before the body is read or GitHub is called", async () => {
    const before = broker.double.calls.length;
    const answer = await broker.call("/register", { scope: "octo-org/octo-repo" });
    expect(answer.status).toBe(401);
    expect(answer.headers.get("www-authenticate")).toMatch(/^Bearer /);
    expect(answer.json).toMatchObject({ error: { code: "TG_TOKEN_MISSING" } });
    expect(broker.double.calls.length).toBe(before);
  });

  it("a token with the wrong audience → 401, audited as auth.denied with its hash", async () => {
    const token = await broker.gateway.mint({}, { audience: "someone-else" });
    const answer = await broker.call(
      "/register",
      { scope: "octo-org/octo-repo" },
      { headers: bearer(token) },
    );
    expect(answer.status).toBe(401);
    const event = (await broker.gateway.auditEvents()).at(-1)!;
    expect(event).toMatchObject({ event: "auth.denied", reason: "TG_TOKEN_AUDIENCE_MISMATCH" });
    expect(event.token_sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("Gateway-Authorization works too (the header of the routes)", async () => {
    const token = await broker.gateway.mint();
    const answer = await broker.call(
      "/remove",
      { scope: "octo-org/octo-repo" },
      { headers: { "gateway-authorization": token } },
    );
    expect(answer.status).toBe(200);
  });
});
