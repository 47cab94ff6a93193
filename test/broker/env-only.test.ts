import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAppKeys, type GitHubApiDouble, startGitHubApiDouble } from "../helpers/github-api-double.js";

const run = promisify(execFile);
const cli = fileURLToPath(new URL("../../bin/tollgate.js", import.meta.url));

/** `tollgate serve` started the way a github-runner-token-proxy deployment starts its container. */
interface Served {
  child: ChildProcess;
  url: string;
  stdout(): string;
  stderr(): string;
  stop(): Promise<number | null>;
}

/**
 * Spawns the built CLI (`npm test` builds dist/ first) in an empty directory — no tollgate.yaml — with
 * exactly the environment given: the reference project's variables and nothing else.
 */
async function serve(cwd: string, env: Record<string, string>): Promise<Served> {
  const child = spawn(process.execPath, [cli, "serve"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line; stderr: ${stderr}`)), 10_000);
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
      const match = /"port":(\d+)[^\n]*"msg":"tollgate listening"/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}; stderr: ${stderr}`));
    });
  });
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    stdout: () => stdout,
    stderr: () => stderr,
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", (code) => resolve(code));
        child.kill("SIGTERM");
      }),
  };
}

/** The reference README's client: `curl ${URL}/register --data '{"scope":"my-org/my-repo"}'`. */
async function curl(url: string, data: string): Promise<{ status: number; body: string }> {
  const { stdout } = await run("curl", ["-sS", `${url}`, "--data", data, "-w", "\n%{http_code}"], {
    timeout: 10_000,
  });
  const cut = stdout.lastIndexOf("\n");
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

async function waitReady(url: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const response = await fetch(`${url}/readyz`);
    await response.text();
    if (response.status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error("not ready");
}

let dir: string;
let double: GitHubApiDouble;
const app = createAppKeys("31337");

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tollgate-env-only-"));
  double = await startGitHubApiDouble({ app });
});

afterAll(async () => {
  await double.close();
  await rm(dir, { recursive: true, force: true });
});

describe("no configuration file, only github-runner-token-proxy's environment", () => {
  it("serves /register and /remove with a PAT exactly like the reference, and warns loudly", async () => {
    const served = await serve(dir, {
      PORT: "0",
      BIND: "127.0.0.1",
      GITHUB_TOKEN: double.pat,
      GITHUB_API_URL: double.url,
      ALLOWED_SCOPES: "octo-org;match:octo-org/.*",
      DENIED_SCOPES: "octo-org/payroll",
    });
    try {
      await waitReady(served.url);
      const register = await curl(`${served.url}/register`, '{"scope":"octo-org/octo-repo"}');
      expect(register.status).toBe(200);
      const body = JSON.parse(register.body) as { token: string; expires_at: string };
      expect(double.issued).toContain(body.token);
      expect(typeof body.expires_at).toBe("string");
      expect((await curl(`${served.url}/remove`, '{"scope":"octo-org"}')).status).toBe(200);

      const denied = await curl(`${served.url}/register`, '{"scope":"octo-org/payroll"}');
      expect(denied.status).toBe(403);
      expect(JSON.parse(denied.body)).toMatchObject({ error: { code: "TG_SCOPE_DENIED" } });

      expect(served.stderr()).toContain("NO AUTHORIZATION");
      expect(served.stderr()).toContain("broker-authorization-none");
      expect(await served.stop()).toBe(0);
      // Audit events go to stdout by default: the decision, never the token or the PAT.
      expect(served.stdout()).toContain('"event":"runner.registration_token"');
      expect(served.stdout()).not.toContain(body.token);
      expect(`${served.stdout()}${served.stderr()}`).not.toContain(double.pat);
    } finally {
      if (served.child.exitCode === null) served.child.kill("SIGKILL");
    }
  });

  it("serves with the reference's GitHub App variables (GITHUB_INSTALLATION_ID, PKCS#1 key)", async () => {
    const served = await serve(dir, {
      PORT: "0",
      BIND: "127.0.0.1",
      GITHUB_APP_ID: app.appId,
      GITHUB_APP_PRIVATE_KEY: app.privateKeyPkcs1,
      GITHUB_INSTALLATION_ID: "4242",
      GITHUB_API_URL: double.url,
      ALLOWED_SCOPES: "match:.*",
    });
    try {
      await waitReady(served.url);
      const register = await curl(`${served.url}/register`, '{"scope":"octo-org/octo-repo"}');
      expect(register.status).toBe(200);
      expect(await served.stop()).toBe(0);
    } finally {
      if (served.child.exitCode === null) served.child.kill("SIGKILL");
    }
  });

  it("without BIND listens on every interface, IPv6 and IPv4 (as Go's :PORT does); with BIND only there", async () => {
    const env = {
      PORT: "0",
      GITHUB_TOKEN: double.pat,
      GITHUB_API_URL: double.url,
      ALLOWED_SCOPES: "octo-org",
    };
    const everywhere = await serve(dir, env);
    const port = new URL(everywhere.url).port;
    try {
      expect(everywhere.stderr()).toContain('"host":"::"');
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect((await fetch(`http://[::1]:${port}/healthz`)).status).toBe(200);
      expect(await everywhere.stop()).toBe(0);
    } finally {
      if (everywhere.child.exitCode === null) everywhere.child.kill("SIGKILL");
    }
    // The twin: BIND=127.0.0.1 is IPv4 loopback alone.
    const loopback = await serve(dir, { ...env, BIND: "127.0.0.1" });
    try {
      expect(loopback.stderr()).toContain('"host":"127.0.0.1"');
      await expect(fetch(`http://[::1]:${new URL(loopback.url).port}/healthz`)).rejects.toThrow();
      expect(await loopback.stop()).toBe(0);
    } finally {
      if (loopback.child.exitCode === null) loopback.child.kill("SIGKILL");
    }
  });

  it("refuses to start with the reference README's match:* and says what to write instead", async () => {
    const failed = await run(process.execPath, [cli, "serve"], {
      cwd: dir,
      env: {
        PORT: "0",
        BIND: "127.0.0.1",
        GITHUB_TOKEN: double.pat,
        GITHUB_API_URL: double.url,
        ALLOWED_SCOPES: "match:*",
      },
      timeout: 10_000,
    }).catch((error: unknown) => error as { code: number; stderr: string });
    expect(failed).toMatchObject({ code: 2 });
    expect((failed as { stderr: string }).stderr).toContain("write match:.*");
    expect((failed as { stderr: string }).stderr).not.toContain(double.pat);
  });

  it("without a credential it is not the broker: a missing configuration file is reported as before", async () => {
    const failed = await run(process.execPath, [cli, "serve"], {
      cwd: dir,
      env: { PORT: "0", BIND: "127.0.0.1", ALLOWED_SCOPES: "octo-org" },
      timeout: 10_000,
    }).catch((error: unknown) => error as { code: number; stderr: string });
    expect(failed).toMatchObject({ code: 2 });
    expect((failed as { stderr: string }).stderr).toContain("does not exist");
  });
});
