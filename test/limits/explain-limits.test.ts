import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

/** `tollgate explain` names the limits a request would meet, with this caller's key. */

let dir: string;
let config: string;
let claims: string;
let noJti: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tollgate-explain-limits-"));
  config = join(dir, "tollgate.yaml");
  await writeFile(
    config,
    `listen:
  auth_failures: { max: 20, per: 1m }
server:
  trust_proxy: true
issuers:
  - name: github
    preset: github
    audiences: [tollgate.example.com]
policies:
  ci:
    claims:
      repository_owner_id: 65
routes:
  - name: limited
    path_prefix: /limited/
    upstream: http://127.0.0.1:9
    allow: [ci]
    rate_limit: { requests: 60, per: 1m, key: repository_id, burst: 10 }
    single_use: true
  - name: plain
    path_prefix: /plain/
    upstream: http://127.0.0.1:9
    allow: [ci]
tunnels:
  - name: db
    destinations: ["db.internal:5432"]
    allow: [ci]
    rate_limit: { requests: 5, per: 10s, key: client_ip }
    concurrency: { max: 3, key: repository_id }
`,
  );
  const base = {
    iss: "https://token.actions.githubusercontent.com",
    repository_owner_id: "65",
    repository_id: "74",
    jti: "1b2e-jti",
  };
  claims = join(dir, "claims.json");
  await writeFile(claims, JSON.stringify(base));
  noJti = join(dir, "no-jti.json");
  await writeFile(noJti, JSON.stringify({ ...base, jti: undefined }));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function explain(args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = "";
  const code = await main(["explain", "--config", config, ...args], {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: () => true },
    env: {},
  });
  return { code, stdout };
}

describe("tollgate explain: limits", () => {
  it("a route's rate limit with this caller's key, its burst, single use with the token's jti, and the throttle", async () => {
    const { code, stdout } = await explain(["--claims", claims, "--request", "GET /limited/x"]);
    expect(code).toBe(0);
    expect(stdout).toContain(
      "rate limit route:limited: 60 requests per 60s for each repository_id (this caller: repository_id 74), plus a burst of 10 refilled every 600s; past it 429 TG_RATE_LIMITED",
    );
    expect(stdout).toContain("single use: this token (jti 1b2e-jti) is accepted once");
    expect(stdout).toContain("failed-authentication throttle: after 20 failed token checks per 60s");
  });

  it("twin: a route without limits lists none", async () => {
    const { code, stdout } = await explain(["--claims", claims, "--request", "GET /plain/x"]);
    expect(code).toBe(0);
    expect(stdout).not.toContain("rate limit");
    expect(stdout).not.toContain("single use");
  });

  it("a token without jti on a single-use route is shown refused", async () => {
    const { stdout } = await explain(["--claims", noJti, "--route", "limited"]);
    expect(stdout).toContain("single use: this token has no jti, so it is refused: 401 TG_TOKEN_JTI_MISSING");
  });

  it("a tunnel's limit keyed by address", async () => {
    const { code, stdout } = await explain(["--claims", claims, "--connect", "db.internal:5432"]);
    expect(code).toBe(0);
    expect(stdout).toContain(
      "rate limit tunnel:db: 5 requests per 10s for each client address; past it 429 TG_RATE_LIMITED",
    );
    expect(stdout).toContain(
      "concurrency tunnel:db:concurrency: 3 tunnels open at once for each repository_id (this caller: repository_id 74); one more: 429 TG_RATE_LIMITED",
    );
  });
});
