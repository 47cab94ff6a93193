import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

// `tollgate check` and `tollgate explain` on forward_auth routes, through the command line in this
// process: explain decides on a forward_auth route exactly as on a proxy route.
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/claims/${name}`, import.meta.url));

async function tollgate(args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = "";
  const code = await main(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: () => true },
    env: { PATH: process.env.PATH ?? "" },
  });
  return { code, stdout };
}

const base = `issuers:
  - { name: github, preset: github, audiences: [tollgate.example.com] }
server: { forward_auth: {} }
policies:
  octo:
    claims:
      repository_owner_id: 65
      event_name: { not: [pull_request_target, workflow_run] }
`;

describe("tollgate check and explain with mode: forward_auth", () => {
  let dir: string;
  let config: string;
  let broken: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tollgate-fa-cli-"));
    config = join(dir, "tollgate.yaml");
    await writeFile(
      config,
      `${base}routes:
  - { name: artifacts, mode: forward_auth, path_prefix: /artifacts/, allow: [octo], forward_claims: [repository] }
`,
    );
    broken = join(dir, "broken.yaml");
    await writeFile(
      broken,
      `${base}routes:
  - { name: artifacts, mode: forward_auth, path_prefix: /artifacts/, upstream: "http://a.internal", allow: [octo] }
  - { name: builds, path_prefix: /builds/, allow: [octo] }
`,
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("check accepts a forward_auth route without upstream", async () => {
    const result = await tollgate(["check", "--config", config]);
    expect(result.code).toBe(0);
  });

  it("check refuses upstream on a forward_auth route and a proxy route without one, with their lines", async () => {
    const result = await tollgate(["check", "--config", broken]);
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/broken\.yaml:10\b.*routes\[0\]\.upstream.*mode: forward_auth/);
    expect(result.stdout).toMatch(/broken\.yaml:11\b.*routes\[1\]\.upstream.*no upstream/);
  });

  it("explain allows by --request on a forward_auth route, condition by condition", async () => {
    const result = await tollgate([
      "explain",
      "--config",
      config,
      "--claims",
      fixture("push-main.json"),
      "--request",
      "GET /artifacts/x",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("route artifacts");
    expect(result.stdout).toContain("ALLOW");
    expect(result.stdout).toMatch(/✓ repository_owner_id/);
  });

  it("explain denies the look-alike owner on the same route (deny twin)", async () => {
    const result = await tollgate([
      "explain",
      "--config",
      config,
      "--claims",
      fixture("renamed-org-lookalike.json"),
      "--route",
      "artifacts",
    ]);
    expect(result.code).toBe(3);
    expect(result.stdout).toContain("DENY");
    expect(result.stdout).toMatch(/✗ repository_owner_id/);
  });
});
