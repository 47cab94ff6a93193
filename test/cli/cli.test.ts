import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { runTollgate, waitForOutput } from "../helpers/run-cli.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
const cli = join(root, "bin/tollgate.js");
const fixture = (name: string) => join(root, "test/fixtures/claims", name);

/** Runs the built CLI (npm test builds dist/ first) and returns its exit code and output. */
const tollgate = (args: string[], env: Record<string, string> = {}) => runTollgate(args, { env });

/**
 * Runs the command line in this process (what `bin/tollgate.js` calls, with collected output instead of
 * the process's streams): for the commands that only read files and print, without a process start.
 */
async function tollgateInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: { PATH: process.env.PATH ?? "" },
  });
  return { code, stdout, stderr };
}

let dir: string;
let config: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tollgate-cli-"));
  config = join(dir, "tollgate.yaml");
  await writeFile(
    config,
    `issuers:
  - name: github
    preset: github
    audiences: [tollgate.example.com]
policies:
  main-deploys:
    claims:
      repository_owner_id: 65
      repository_id: 74
      ref: refs/heads/main
      event_name: { not: [pull_request_target, workflow_run] }
routes:
  - name: artifacts
    path_prefix: /artifacts/
    upstream: http://127.0.0.1:9
    methods: [GET]
    allow: [main-deploys]
`,
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("tollgate command line", () => {
  it.each([[[]], [["serve"]], [["check"]], [["explain"]], [["dev"]], [["dev", "mint"]], [["schema"]]])(
    "prints help for %j",
    async (command) => {
      const result = await tollgateInProcess([...command, "--help"]);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Usage: tollgate/);
    },
  );

  it("the launcher passes the command's output and exit code on (bin/tollgate.js, a real process)", async () => {
    const valid = await tollgate(["check", "--config", config]);
    expect(valid.code).toBe(0);
    expect(valid.stdout).toContain("0 error(s)");
    const missing = await tollgate(["check", "--config", join(dir, "missing.yaml")]);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toContain("missing.yaml");
  });

  it("a reader that closes the pipe early (`tollgate --help | head -1`) is not a crash", async () => {
    const child = spawn(process.execPath, [cli, "explain", "--help"], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    // Close our end before the help is written, as `head` does once it has its lines.
    child.stdout.destroy();
    const [code] = (await once(child, "exit")) as [number | null];
    expect(stderr).not.toContain("EPIPE");
    expect(code).toBe(0);
  });

  it("a usage mistake: exit 2 with the usage on stderr", async () => {
    const result = await tollgateInProcess(["check", "--no-such-option"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown option '--no-such-option'/);
    expect(result.stdout).toBe("");
  });

  it("check: exit 0 for a valid file", async () => {
    const result = await tollgateInProcess(["check", "--config", config]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("0 error(s)");
  });

  it("check: reads TOLLGATE_CONFIG from its environment when --config is absent", async () => {
    let stdout = "";
    const code = await main(["check"], {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: () => true },
      env: { TOLLGATE_CONFIG: config },
    });
    expect(code).toBe(0);
    expect(stdout).toContain(`${config}: 0 error(s)`);
  });

  it("check: exit 2 and every problem with its line for a broken file", async () => {
    const broken = join(dir, "broken.yaml");
    await writeFile(
      broken,
      `issuers:
  - name: github
    preset: github
    audiences: [tollgate.example.com]
    algorithms: [HS256]
policies:
  open:
    claims:
      ref: refs/heads/main
routes:
  - name: r
    path_prefix: artifacts
    upstream: http://127.0.0.1:9
    allow: [nobody]
`,
    );
    const result = await tollgateInProcess(["check", "--config", broken]);
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/broken\.yaml:5\b/); // HMAC algorithm
    expect(result.stdout).toMatch(/broken\.yaml:7\b|broken\.yaml:8\b/); // policy pins no owner
    expect(result.stdout).toMatch(/broken\.yaml:12\b/); // path_prefix must start with /
    expect(result.stdout).toMatch(/broken\.yaml:14\b/); // unknown policy
  });

  it("explain: exit 0 and every condition for an allowed claim set", async () => {
    const result = await tollgateInProcess([
      "explain",
      "--config",
      config,
      "--claims",
      fixture("push-main.json"),
      "--route",
      "artifacts",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("ALLOW");
    expect(result.stdout).toMatch(/✓ repository_owner_id/);
  });

  it("explain: exit 3 and the failing condition for the deny twin (look-alike owner)", async () => {
    const result = await tollgateInProcess([
      "explain",
      "--config",
      config,
      "--claims",
      fixture("renamed-org-lookalike.json"),
      "--request",
      "GET /artifacts/x",
    ]);
    expect(result.code).toBe(3);
    expect(result.stdout).toContain("DENY");
    expect(result.stdout).toMatch(/✗ repository_owner_id +expected "65"/);
  });

  it("explain: exit 3 for pull_request_target", async () => {
    const result = await tollgateInProcess([
      "explain",
      "--config",
      config,
      "--claims",
      fixture("pull-request-target.json"),
    ]);
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(/✗ event_name/);
  });

  it("explain: exit 2 for a bad configuration", async () => {
    const result = await tollgateInProcess([
      "explain",
      "--config",
      join(dir, "missing.yaml"),
      "--claims",
      fixture("push-main.json"),
    ]);
    expect(result.code).toBe(2);
  });

  it("schema: prints the committed JSON Schema", async () => {
    const result = await tollgateInProcess(["schema"]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toHaveProperty("properties.routes");
  });
});

/** Polls `condition` every 50 ms until it holds (bounded: 10 s). */
async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("tollgate dev", () => {
  it("prints a curl that succeeds when pasted into a shell, and a refused twin; stops on SIGTERM", async () => {
    const state = join(dir, "dev-state");
    const child = spawn(process.execPath, [cli, "dev", "--port", "0"], {
      cwd: root,
      env: { ...process.env, TOLLGATE_DEV_STATE: state },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const output = await waitForOutput(child, /Stop with Ctrl-C/);
      const lines = output.split("\n").filter((line) => line.trim().startsWith("curl "));
      expect(lines.length).toBe(2);
      const allowed = await run("sh", ["-c", `${lines[0]!.trim()} -sS -w '\\n%{http_code}'`], {
        cwd: root,
        env: { ...process.env, TOLLGATE_DEV_STATE: state },
      });
      expect(allowed.stdout.trim().split("\n").at(-1)).toBe("200");
      expect(allowed.stdout).toContain("tollgate demo upstream");
      const refused = await run("sh", ["-c", `${lines[1]!.trim()} -sS -w '\\n%{http_code}'`], {
        cwd: root,
        env: { ...process.env, TOLLGATE_DEV_STATE: state },
      });
      expect(refused.stdout.trim().split("\n").at(-1)).toBe("403");
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  }, 40_000);
});

describe("tollgate serve", () => {
  it("exits 2 with the problems when the configuration is invalid", async () => {
    const result = await tollgate(["serve", "--config", join(dir, "missing.yaml")]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("missing.yaml");
  });

  it("starts, answers /healthz, reloads on SIGHUP (keeping the old config on error), stops with 0 on SIGTERM", async () => {
    const live = join(dir, "live.yaml");
    await writeFile(live, await readFile(config, "utf8"));
    const child = spawn(process.execPath, [cli, "serve", "--config", live], {
      cwd: root,
      env: { ...process.env, PORT: "0", BIND: "127.0.0.1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let log = "";
    const listening = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line:\n${log}`)), 15_000);
      child.stderr.on("data", (chunk: Buffer) => {
        log += chunk.toString();
        const match = /"port":(\d+)[^\n]*tollgate listening|tollgate listening[^\n]*"port":(\d+)/.exec(log);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1] ?? match[2]));
        }
      });
    });
    const port = await listening;
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    const statusOf = async (path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).status;
    expect(await statusOf("/reports/x")).toBe(404);

    const withReports = `${await readFile(config, "utf8")}  - { name: reports, path_prefix: /reports/, upstream: "http://127.0.0.1:9", allow: [main-deploys] }\n`;
    await writeFile(live, withReports);
    child.kill("SIGHUP");
    await until(async () => (await statusOf("/reports/x")) === 401);

    await writeFile(live, `${withReports}  - { name: broken, path_prefix: nope }\n`);
    child.kill("SIGHUP");
    await until(() => log.includes("configuration reload refused"));
    expect(await statusOf("/reports/x")).toBe(401);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  }, 30_000);
});
