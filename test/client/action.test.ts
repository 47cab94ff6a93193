import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDevIssuer } from "../../src/dev/dev-issuer.js";
import { startActionsTokenEndpoint } from "../helpers/actions-token-endpoint.js";
import { createTestCertificates, type TestCertificates } from "../helpers/tls-fixture.js";
import {
  closeServer,
  freePort,
  jwtsIn,
  root,
  runTool,
  startHttpsTarget,
  startHttpTarget,
  startTunnelSetup,
  type TunnelSetup,
} from "./client-harness.js";
import { parseEnvironmentFile } from "./environment-file.js";

// The committed action bundle (action/dist), run the way the runner runs it: `node main.mjs` with INPUT_*
// variables and environment files, then `node post.mjs` with the saved state.
let certs: TestCertificates;
let https: { port: number; server: Server };
let http: Awaited<ReturnType<typeof startHttpTarget>>;
let setup: TunnelSetup;
let dir: string;
let counter = 0;

beforeAll(async () => {
  certs = await createTestCertificates();
  https = await startHttpsTarget(certs.certPem, certs.keyPem);
  http = await startHttpTarget();
  setup = await startTunnelSetup([`127.0.0.1:${https.port}`, `127.0.0.1:${http.port}`]);
  dir = await mkdtemp(join(tmpdir(), "tollgate-action-"));
});

afterAll(async () => {
  await setup?.close();
  await Promise.all([https, http].filter(Boolean).map((target) => closeServer(target.server)));
  await certs?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Files and environment of one simulated job. */
async function job(inputs: Record<string, string>, extraEnv: Record<string, string> = {}) {
  counter += 1;
  const files = {
    env: join(dir, `env-${counter}`),
    output: join(dir, `output-${counter}`),
    state: join(dir, `state-${counter}`),
  };
  await Promise.all(Object.values(files).map((file) => writeFile(file, "")));
  const env: Record<string, string> = {
    ...setup.clientEnv(),
    RUNNER_TEMP: dir,
    GITHUB_ENV: files.env,
    GITHUB_OUTPUT: files.output,
    GITHUB_STATE: files.state,
    GITHUB_SERVER_URL: "https://github.com",
    GITHUB_API_URL: "https://api.github.com",
    ACTIONS_RESULTS_URL: "https://results-receiver.actions.githubusercontent.com/",
    ...Object.fromEntries(
      Object.entries(inputs).map(([name, value]) => [`INPUT_${name.toUpperCase()}`, value]),
    ),
    ...extraEnv,
  };
  const read = async (file: string) => parseEnvironmentFile(await readFile(file, "utf8"));
  return {
    env,
    main: () => runTool(process.execPath, [join(root, "action/dist/main.mjs")], env, { timeoutMs: 40_000 }),
    post: async (stateEnv: Record<string, string>) =>
      runTool(
        process.execPath,
        [join(root, "action/dist/post.mjs")],
        { ...env, ...stateEnv },
        { timeoutMs: 30_000 },
      ),
    exported: () => read(files.env),
    outputs: () => read(files.output),
    state: () => read(files.state),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("the GitHub Action", () => {
  it("starts the proxy and a forward in the background, exports the proxy, and the post step stops them", async () => {
    const run = await job({
      gateway: setup.gateway.url,
      audience: "tollgate.test",
      proxy: "true",
      forwards: `# the private web server, as a plain TCP port\n0:127.0.0.1:${http.port}\n`,
      "export-proxy-env": "true",
    });
    const main = await run.main();
    expect(main.code).toBe(0);
    // It asked the gateway first (GET /_tollgate/whoami) and says as whom the job is taken.
    expect(main.stdout).toContain("tollgate: the gateway accepts this job's token of octo-org/octo-repo");
    const state = await run.state();
    const pid = Number(state.pid);
    try {
      expect(isAlive(pid)).toBe(true);
      const outputs = await run.outputs();
      expect(outputs["ssh-proxy-command"]).toBe(
        `'${process.execPath}' '${join(root, "action/dist/pipe.mjs")}' %h:%p --gateway '${setup.gateway.url}' --audience 'tollgate.test'`,
      );
      const exported = await run.exported();
      const proxyUrl = outputs["proxy-url"]!;
      expect(proxyUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      for (const name of ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"])
        expect(exported[name]).toBe(proxyUrl);
      expect(exported.NO_PROXY!.split(",")).toEqual(
        expect.arrayContaining([
          "localhost",
          "127.0.0.1",
          "github.com",
          "api.github.com",
          ".blob.core.windows.net",
        ]),
      );
      expect(exported.NO_PROXY).toContain("results-receiver.actions.githubusercontent.com");

      // A later step: curl with the exported proxy variables (NO_PROXY left out: the targets are on loopback).
      const viaProxy = await runTool(
        "curl",
        [
          "-sS",
          "--fail",
          "--max-time",
          "15",
          "--cacert",
          certs.caFile,
          `https://127.0.0.1:${https.port}/from-a-step`,
        ],
        setup.clientEnv({ HTTPS_PROXY: exported.HTTPS_PROXY! }),
      );
      expect(viaProxy.stdout).toBe("hello over tls /from-a-step");

      const forwards = JSON.parse(outputs.forwards!) as { local: string; destination: string }[];
      expect(forwards).toEqual([
        { local: expect.stringMatching(/^127\.0\.0\.1:\d+$/), destination: `127.0.0.1:${http.port}` },
      ]);
      const viaForward = await runTool(
        "curl",
        ["-sS", "--fail", "--max-time", "15", `http://${forwards[0]!.local}/through-a-forward`],
        setup.clientEnv(),
      );
      expect(viaForward.stdout).toBe("hello over http /through-a-forward");
      expect(jwtsIn(main.stdout + main.stderr)).toEqual([]);
    } finally {
      const post = await run.post({ STATE_pid: state.pid ?? "", STATE_log: state.log ?? "" });
      expect(post.code).toBe(0);
      expect(post.stdout).toContain(`stopped the background process (pid ${pid})`);
      expect(post.stdout).toContain("::group::tollgate log");
      expect(jwtsIn(post.stdout)).toEqual([]);
    }
    expect(isAlive(pid)).toBe(false);
  });

  it("fails the step with the permission to grant when the job cannot request OIDC tokens", async () => {
    const run = await job(
      { gateway: setup.gateway.url, audience: "tollgate.test" },
      { ACTIONS_ID_TOKEN_REQUEST_URL: "", ACTIONS_ID_TOKEN_REQUEST_TOKEN: "" },
    );
    const main = await run.main();
    expect(main.code).toBe(1);
    expect(main.stdout).toMatch(/^::error::tollgate: TG_CLIENT_TOKEN_UNAVAILABLE: .*id-token: write/m);
    expect(await run.state()).toEqual({});
  });

  it("fails the step with the code and the fix when the gateway does not take the audience; nothing starts", async () => {
    const run = await job({
      gateway: setup.gateway.url,
      audience: "tollgate.wrong",
      "export-proxy-env": "true",
    });
    const main = await run.main();
    expect(main.code).toBe(1);
    expect(main.stdout).toMatch(
      /^::error::tollgate: TG_TOKEN_AUDIENCE_MISMATCH: the gateway refused this job's token for audience "tollgate\.wrong" \(request_id [0-9a-f-]{36}\): "tollgate\.wrong" is not an audience the gateway accepts\. Set audience to /m,
    );
    expect(await run.state()).toEqual({});
    expect(await run.exported()).toEqual({});
    expect(jwtsIn(main.stdout + main.stderr)).toEqual([]);
  });

  it("fails the step when the runner's token has expired by the gateway's clock (TG_TOKEN_EXPIRED)", async () => {
    setup.tokenEndpoint.configure({ expiresInSeconds: -120 });
    try {
      const run = await job({ gateway: setup.gateway.url, audience: "tollgate.test" });
      const main = await run.main();
      expect(main.code).toBe(1);
      expect(main.stdout).toMatch(
        /^::error::tollgate: TG_TOKEN_EXPIRED: .*check the clocks of the runner and the gateway/m,
      );
      expect(await run.state()).toEqual({});
    } finally {
      setup.tokenEndpoint.configure({ expiresInSeconds: 300 });
    }
  });

  it("fails the step when the job's tokens come from an issuer the gateway does not trust", async () => {
    const stranger = await createDevIssuer({ host: "127.0.0.1", port: 0 });
    const strangerEndpoint = await startActionsTokenEndpoint(stranger);
    try {
      const run = await job(
        { gateway: setup.gateway.url, audience: "tollgate.test" },
        strangerEndpoint.env(),
      );
      const main = await run.main();
      expect(main.code).toBe(1);
      expect(main.stdout).toMatch(
        /^::error::tollgate: TG_TOKEN_ISSUER_UNKNOWN: .*does not trust this job's token issuer/m,
      );
      expect(main.stdout).toContain(stranger.issuerUrl);
      expect(await run.state()).toEqual({});
    } finally {
      await strangerEndpoint.close();
      await stranger.close();
    }
  });

  it("with neither proxy nor forwards, checks the token and gives ssh-proxy-command, starting nothing", async () => {
    const run = await job({ gateway: setup.gateway.url, audience: "tollgate.test", proxy: "false" });
    const main = await run.main();
    expect(main.code).toBe(0);
    expect(main.stdout).toContain("the gateway accepts this job's token");
    expect(await run.state()).toEqual({});
    const outputs = await run.outputs();
    expect(outputs.forwards).toBe("[]");
    expect(outputs["ssh-proxy-command"]).toContain("pipe.mjs' %h:%p --gateway");
    expect(outputs["proxy-url"]).toBeUndefined();
  });

  it("fails the step on a malformed forward before starting anything", async () => {
    const run = await job({
      gateway: setup.gateway.url,
      audience: "tollgate.test",
      forwards: "db.internal:5432",
    });
    const main = await run.main();
    expect(main.code).toBe(1);
    expect(main.stdout).toContain("expected LOCAL_PORT:HOST:PORT");
    expect(await run.state()).toEqual({});
  });

  it("fails the step, with the background log, when the proxy cannot listen; nothing is left running", async () => {
    const blocker = await startHttpTarget();
    try {
      const run = await job({
        gateway: setup.gateway.url,
        audience: "tollgate.test",
        listen: `127.0.0.1:${blocker.port}`,
      });
      const main = await run.main();
      expect(main.code).toBe(1);
      expect(main.stdout).toContain("::error::tollgate:");
      expect(main.stdout).toContain("::group::tollgate log");
      const pid = Number((await run.state()).pid);
      for (let attempt = 0; attempt < 50 && isAlive(pid); attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(isAlive(pid)).toBe(false);
    } finally {
      await closeServer(blocker.server);
    }
  });

  it("the post step never signals a process that is not its background process", async () => {
    const bystander = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      const run = await job({ gateway: setup.gateway.url, audience: "tollgate.test" });
      const post = await run.post({ STATE_pid: String(bystander.pid), STATE_log: "" });
      expect(post.code).toBe(0);
      expect(post.stdout).not.toContain("stopped");
      expect(isAlive(bystander.pid!)).toBe(true);
    } finally {
      bystander.kill("SIGKILL");
    }
  });

  it("refuses a forward whose destination the gateway does not allow (the tunnel closes; the log says 403)", async () => {
    const closedPort = await freePort();
    const run = await job({
      gateway: setup.gateway.url,
      audience: "tollgate.test",
      proxy: "false",
      forwards: `0:127.0.0.1:${closedPort}`,
    });
    const main = await run.main();
    expect(main.code).toBe(0);
    const state = await run.state();
    try {
      const forwards = JSON.parse((await run.outputs()).forwards!) as { local: string }[];
      const attempt = await runTool(
        "curl",
        ["-sS", "--max-time", "10", `http://${forwards[0]!.local}/`],
        setup.clientEnv(),
      );
      expect(attempt.code).not.toBe(0);
      expect((await run.outputs())["proxy-url"]).toBeUndefined();
    } finally {
      const post = await run.post({ STATE_pid: state.pid ?? "", STATE_log: state.log ?? "" });
      expect(post.stdout).toContain("gateway answered 403");
    }
  });
});
