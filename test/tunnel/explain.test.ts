import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runTollgate } from "../helpers/run-cli.js";

const _run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
const fixture = (name: string) => join(root, "test/fixtures/claims", name);

/** Runs the built CLI (npm test builds dist/ first). */
const tollgate = (args: string[]) => runTollgate(args);

describe("tollgate explain --connect", () => {
  let dir: string;
  let config: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tollgate-explain-connect-"));
    config = join(dir, "tollgate.yaml");
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
      event_name: { not: [pull_request_target, workflow_run] }
tunnels:
  - name: databases
    destinations: ["db.internal:5432", "10.20.0.0/16:5432"]
    allow: [org-ci]
`,
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const explain = (target: string, claims = "push-main.json") =>
    tollgate(["explain", "--config", config, "--claims", fixture(claims), "--connect", target]);

  it("names the tunnel, the matching destinations and the policy decision (exit 0)", async () => {
    const result = await explain("db.internal:5432");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      "CONNECT db.internal:5432 → tunnel databases (destinations db.internal:5432, 10.20.0.0/16:5432): ALLOW",
    );
    expect(result.stdout).toContain("resolves db.internal once");
  });

  it("denies the same destination to a fork-risky event, condition by condition (exit 3)", async () => {
    const result = await explain("db.internal:5432", "pull-request-target.json");
    expect(result.code).toBe(3);
    expect(result.stdout).toContain("DENY — no-policy-matched");
    expect(result.stdout).toMatch(/✗ event_name/);
  });

  it("shows how an IP literal was read, and refuses always-denied addresses", async () => {
    const inRange = await explain("0xa.20.1.1:5432");
    expect(inRange.code).toBe(0);
    expect(inRange.stdout).toContain(
      "0xa.20.1.1:5432 (read as 10.20.1.1:5432) → tunnel databases (destinations 10.20.0.0/16:5432)",
    );
    const loopback = await explain("2130706433:5432");
    expect(loopback.code).toBe(3);
    expect(loopback.stdout).toContain("127.0.0.1:5432 is loopback: always denied");
    const other = await explain("db.internal:22");
    expect(other.code).toBe(3);
    expect(other.stdout).toContain("matches no tunnel's destinations");
    const malformed = await explain("[fe80::1%eth0]:5432");
    expect(malformed.code).toBe(3);
    expect(malformed.stdout).toContain("TG_TUNNEL_TARGET_INVALID");
  });
});
