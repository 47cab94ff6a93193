import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { access, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { createDevIssuer } from "../../src/dev/dev-issuer.js";
import { type DevState, devStateFile, writeDevState } from "../../src/dev/dev-state.js";
import { cliPath, repositoryRoot, runTollgate, waitForOutput } from "../helpers/run-cli.js";

// `tollgate dev mint` must print a token only while the `tollgate dev` that wrote the state is running;
// README: "0, 2 no dev issuer". These drive the built CLI (npm test builds dist/ first) as a user would.

const jwtPattern = /eyJ[\w-]+\.[\w-]+\.[\w-]+/;
const notRunning = /^tollgate: no tollgate dev is running \(.+\); start it with `npx tollgate dev`\n$/;

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function stateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tollgate-dev-mint-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const mint = (dir: string) =>
  runTollgate(["dev", "mint", "--claim", "ref=refs/heads/dev"], { env: { TOLLGATE_DEV_STATE: dir } });

/** A running `tollgate dev --port 0` on loopback, ready (its welcome printed); killed after the test if still up. */
async function startDev(dir: string): Promise<{ child: ChildProcess; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [cliPath, "dev", "--port", "0", "--host", "127.0.0.1"], {
    cwd: repositoryRoot,
    env: { ...process.env, TOLLGATE_DEV_STATE: dir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  await waitForOutput(child, /Stop with Ctrl-C/);
  return { child, exited };
}

async function readState(dir: string): Promise<DevState> {
  return JSON.parse(await readFile(devStateFile(dir), "utf8")) as DevState;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** The pid of a process that has exited: what a crashed `tollgate dev` leaves in its state file. */
async function pidOfExitedProcess(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid!;
}

function expectSignedBy(stdout: string, state: DevState): void {
  expect(stdout).toMatch(new RegExp(`^${jwtPattern.source}\n$`));
  const claims = decodeJwt(stdout.trim());
  expect(claims.iss).toBe(state.issuerUrl);
  expect(claims.ref).toBe("refs/heads/dev");
}

function expectNoDevRunning(result: { code: number; stdout: string; stderr: string }): void {
  expect(result.code).toBe(2);
  expect(result.stdout).toBe("");
  expect(result.stderr).toMatch(notRunning);
  expect(result.stderr).not.toMatch(jwtPattern);
}

describe("tollgate dev mint", () => {
  it("prints a token while `tollgate dev` runs; after SIGINT, exits 2 with a message and no token", async () => {
    const dir = await stateDir();
    const { child, exited } = await startDev(dir);
    const state = await readState(dir);
    expect(state.pid).toBe(child.pid);

    const whileRunning = await mint(dir);
    expect(whileRunning.code).toBe(0);
    expectSignedBy(whileRunning.stdout, state);

    child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(await exists(devStateFile(dir))).toBe(false);
    expectNoDevRunning(await mint(dir));
  }, 40_000);

  it("after SIGKILL (the state file is left behind), exits 2 because the recorded issuer no longer answers", async () => {
    const dir = await stateDir();
    const { child, exited } = await startDev(dir);
    const state = await readState(dir);
    expect((await mint(dir)).code).toBe(0);

    child.kill("SIGKILL");
    await exited;
    expect(await readState(dir)).toEqual(state);
    const afterCrash = await mint(dir);
    expectNoDevRunning(afterCrash);
    expect(afterCrash.stderr).toContain(`its issuer ${state.issuerUrl} does not answer`);
  }, 40_000);

  it("a state file left by a process that no longer exists, naming an issuer that is gone: exit 2", async () => {
    const dir = await stateDir();
    const keyFile = join(dir, "issuer-key.json");
    const issuer = await createDevIssuer({ keyFile });
    await issuer.close();
    await writeDevState(devStateFile(dir), {
      issuerUrl: issuer.issuerUrl,
      keyFile,
      audience: "tollgate-dev",
      gatewayUrl: "http://127.0.0.1:9",
      pid: await pidOfExitedProcess(),
    });
    expectNoDevRunning(await mint(dir));
  });

  it("the allow twin: the same state file, written by a live process whose issuer serves the key: exit 0", async () => {
    const dir = await stateDir();
    const keyFile = join(dir, "issuer-key.json");
    const issuer = await createDevIssuer({ keyFile });
    cleanups.push(() => issuer.close());
    const state: DevState = {
      issuerUrl: issuer.issuerUrl,
      keyFile,
      audience: "tollgate-dev",
      gatewayUrl: "http://127.0.0.1:9",
      pid: process.pid,
    };
    await writeDevState(devStateFile(dir), state);
    const result = await mint(dir);
    expect(result.code).toBe(0);
    expectSignedBy(result.stdout, state);
  });

  it("no state file at all: exit 2 with the message", async () => {
    expectNoDevRunning(await mint(await stateDir()));
  });

  it("a `tollgate dev` that stops leaves the state of another that took over the folder", async () => {
    const dir = await stateDir();
    const first = await startDev(dir);
    const second = await startDev(dir);
    const secondState = await readState(dir);
    expect(secondState.pid).toBe(second.child.pid);

    first.child.kill("SIGINT");
    expect(await first.exited).toBe(0);
    expect(await readState(dir)).toEqual(secondState);
    const result = await mint(dir);
    expect(result.code).toBe(0);
    expectSignedBy(result.stdout, secondState);

    second.child.kill("SIGINT");
    expect(await second.exited).toBe(0);
    expectNoDevRunning(await mint(dir));
  }, 40_000);
});

describe("a second tollgate dev on a port in use", () => {
  it("exits 2 with a message naming the port, and leaves the running one's configuration alone", async () => {
    const dir = await stateDir();
    const first = await startDev(dir);
    const port = Number(new URL((await readState(dir)).gatewayUrl).port);
    const configBefore = await readFile(join(dir, "tollgate.dev.yaml"), "utf8");
    const second = await runTollgate(["dev", "--port", String(port), "--host", "127.0.0.1"], {
      env: { TOLLGATE_DEV_STATE: dir },
    });
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`cannot listen on 127.0.0.1:${port} (EADDRINUSE): the port is in use`);
    expect(second.stderr).toContain("--port");
    expect(second.stderr).not.toContain("    at ");
    expect(await readFile(join(dir, "tollgate.dev.yaml"), "utf8")).toBe(configBefore);
    // The twin: the first one still mints for its own, unchanged issuer.
    expectSignedBy((await mint(dir)).stdout, await readState(dir));
    first.child.kill("SIGINT");
    expect(await first.exited).toBe(0);
  });
});

describe("tollgate serve on a port in use", () => {
  it("exits 2, saying so, instead of a stack trace or a process that never exits", async () => {
    const dir = await stateDir();
    const blocker = createServer();
    blocker.listen(0, "127.0.0.1");
    await once(blocker, "listening");
    const port = (blocker.address() as AddressInfo).port;
    try {
      const config = join(dir, "tollgate.yaml");
      await writeFile(
        config,
        `listen: { host: 127.0.0.1, port: ${port} }\nissuers:\n  - { name: gh, preset: github, audiences: [tollgate] }\n`,
      );
      const result = await runTollgate(["serve", "--config", config]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(
        `tollgate: listen: cannot listen on 127.0.0.1:${port} (EADDRINUSE): the port is in use; nothing was started.`,
      );
    } finally {
      blocker.close();
    }
  });
});
