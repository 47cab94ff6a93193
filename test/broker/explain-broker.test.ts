import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runTollgate } from "../helpers/run-cli.js";

const _run = promisify(execFile);
const _cli = fileURLToPath(new URL("../../bin/tollgate.js", import.meta.url));

/** Runs the built CLI (`npm test` builds dist/ first). */
const tollgate = (args: string[], env: Record<string, string> = {}) =>
  runTollgate(args, { env, cleanEnv: true });

let dir: string;
let config: string;
let claims: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tollgate-explain-broker-"));
  config = join(dir, "tollgate.yaml");
  claims = join(dir, "claims.json");
  await writeFile(
    config,
    `issuers:
  - name: github
    preset: github
    audiences: [tollgate.example.com]
policies:
  org-ci:
    claims:
      repository_owner_id: 65
      event_name: push
broker:
  allowed_scopes: ["match:octo-org/.*", "match:octo-org/*"]
  denied_scopes: ["octo-org/payroll"]
  grants:
    - allow: [org-ci]
      actions: [register, remove]
      scopes: ["{repository}"]
`,
  );
  await writeFile(
    claims,
    JSON.stringify({
      iss: "https://token.actions.githubusercontent.com",
      repository: "octo-org/octo-repo",
      repository_owner_id: "65",
      event_name: "push",
    }),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("tollgate explain --broker", () => {
  it("ALLOW for the caller's own repository, with every step's reason (exit 0)", async () => {
    const result = await tollgate([
      "explain",
      "--config",
      config,
      "--claims",
      claims,
      "--broker",
      "register:octo-org/octo-repo",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("broker register (authorization: oidc): ALLOW");
    expect(result.stdout).toContain('allowed — allowed_scopes entry "match:octo-org/.*"');
    expect(result.stdout).toContain('✓ scope "{repository}" → octo-org/octo-repo');
    expect(result.stdout).toContain("allowed by grants[0] (policy org-ci)");
  });

  it("DENY for another repository (exit 3)", async () => {
    const result = await tollgate([
      "explain",
      "--config",
      config,
      "--claims",
      claims,
      "--broker",
      "register:octo-org/other",
    ]);
    expect(result.code).toBe(3);
    expect(result.stdout).toContain("no grant admits it: no-scope-matched");
  });

  it("DENY by the global deny list, and for an action no grant lists", async () => {
    const denied = await tollgate([
      "explain",
      "--config",
      config,
      "--claims",
      claims,
      "--broker",
      "register:octo-org/payroll",
    ]);
    expect(denied.code).toBe(3);
    expect(denied.stdout).toContain('refused — denied_scopes entry "octo-org/payroll"');
    const jit = await tollgate([
      "explain",
      "--config",
      config,
      "--claims",
      claims,
      "--broker",
      "jitconfig:octo-org/octo-repo",
    ]);
    expect(jit.code).toBe(3);
    expect(jit.stdout).toContain("does not list jitconfig");
  });

  it("refuses a malformed --broker with exit 2", async () => {
    const result = await tollgate([
      "explain",
      "--config",
      config,
      "--claims",
      claims,
      "--broker",
      "mint:octo-org",
    ]);
    expect(result.code).toBe(2);
  });
});

describe("tollgate check", () => {
  it("warns about a glob-looking scope pattern and suggests the regex", async () => {
    const result = await tollgate(["check", "--config", config]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("[scope-pattern-looks-like-glob]");
    expect(result.stdout).toContain("Did you mean match:octo-org/.*?");
  });

  it("fails on an invalid scope pattern from the environment, with the fix", async () => {
    const result = await tollgate(["check", "--config", config], { ALLOWED_SCOPES: "match:*" });
    expect(result.code).toBe(2);
    expect(result.stdout).toContain("$ALLOWED_SCOPES");
    expect(result.stdout).toContain("write match:.*");
  });
});
