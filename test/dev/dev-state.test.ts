import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createDevIssuer, type DevIssuer } from "../../src/dev/dev-issuer.js";
import {
  type DevState,
  devStateFile,
  findRunningDev,
  removeDevStateIfOwn,
  writeDevState,
} from "../../src/dev/dev-state.js";

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tollgate-dev-state-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function started(keyFile: string): Promise<DevIssuer> {
  const issuer = await createDevIssuer({ keyFile });
  cleanups.push(() => issuer.close());
  return issuer;
}

/** A fresh state folder, and where `tollgate dev` puts its state file and key file in it. */
async function devFolder(): Promise<{ dir: string; file: string; keyFile: string }> {
  const dir = await tempDir();
  return { dir, file: devStateFile(dir), keyFile: join(dir, "issuer-key.json") };
}

function stateFor(issuerUrl: string, keyFile: string, pid = process.pid): DevState {
  return { issuerUrl, keyFile, audience: "tollgate-dev", gatewayUrl: "http://127.0.0.1:9", pid };
}

/** A fetch that must not be called: the test fails if the lookup sends any request. */
const forbiddenFetch: typeof fetch = async (input) => {
  throw new Error(`unexpected request to ${String(input)}`);
};

describe("findRunningDev", () => {
  it("running: the recorded issuer answers on loopback with the key in the recorded key file", async () => {
    const { file, keyFile } = await devFolder();
    const issuer = await started(keyFile);
    const state = stateFor(issuer.issuerUrl, keyFile);
    await writeDevState(file, state);
    expect(await findRunningDev(file)).toEqual({ running: true, state });
  });

  it("deny twin: the same state once the issuer has stopped (a crash leaves the file)", async () => {
    const { file, keyFile } = await devFolder();
    const issuer = await started(keyFile);
    await writeDevState(file, stateFor(issuer.issuerUrl, keyFile));
    await issuer.close();
    const lookup = await findRunningDev(file);
    expect(lookup).toEqual({ running: false, reason: expect.stringContaining("does not answer") });
  });

  it("deny twin: an issuer answers at the recorded URL but without our key (the port went to another)", async () => {
    const { dir, file, keyFile } = await devFolder();
    await started(keyFile); // creates the key file the state names
    const other = await started(join(dir, "other-key.json"));
    await writeDevState(file, stateFor(other.issuerUrl, keyFile));
    const lookup = await findRunningDev(file);
    expect(lookup).toEqual({ running: false, reason: expect.stringContaining("does not publish its key") });
  });

  it("deny twin: an issuer that accepts the connection but never answers, bounded by timeoutMs", async () => {
    const { file, keyFile } = await devFolder();
    const issuer = await started(keyFile);
    await writeDevState(file, stateFor(issuer.issuerUrl, keyFile));
    const hangingFetch: typeof fetch = (_input, init) =>
      new Promise((_resolve, reject) =>
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)),
      );
    const startedAt = Date.now();
    const lookup = await findRunningDev(file, { fetch: hangingFetch, timeoutMs: 100 });
    expect(lookup).toEqual({ running: false, reason: expect.stringContaining("does not answer") });
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });

  it("deny: an issuer off loopback is refused without a request being sent", async () => {
    const { file, keyFile } = await devFolder();
    for (const issuerUrl of ["http://192.0.2.10:4000", "http://0.0.0.0:4000", "https://example.com"]) {
      await writeDevState(file, stateFor(issuerUrl, keyFile));
      const lookup = await findRunningDev(file, { fetch: forbiddenFetch });
      expect(lookup).toEqual({ running: false, reason: expect.stringContaining("not on loopback") });
    }
  });

  it("deny: no state file, a file that is not JSON, a JSON file that is not dev state, a missing key file", async () => {
    const { dir, file } = await devFolder();
    const options = { fetch: forbiddenFetch };
    expect(await findRunningDev(file, options)).toEqual({
      running: false,
      reason: `no state file at ${file}`,
    });
    await writeFile(file, "{ half");
    expect(await findRunningDev(file, options)).toEqual({ running: false, reason: `${file} is not JSON` });
    await writeFile(file, JSON.stringify({ issuerUrl: 42 }));
    expect(await findRunningDev(file, options)).toEqual({
      running: false,
      reason: `${file} is not a tollgate dev state file`,
    });
    await writeDevState(file, stateFor("http://127.0.0.1:9", join(dir, "missing-key.json")));
    expect(await findRunningDev(file, options)).toEqual({
      running: false,
      reason: expect.stringContaining("missing-key.json named in"),
    });
  });
});

describe("writeDevState and removeDevStateIfOwn", () => {
  it("writes the state whole, mode 0600, leaving no temporary file", async () => {
    const { dir, file, keyFile } = await devFolder();
    const state = stateFor("http://127.0.0.1:9", keyFile);
    await writeDevState(file, state);
    await writeDevState(file, { ...state, gatewayUrl: "http://127.0.0.1:10" });
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ ...state, gatewayUrl: "http://127.0.0.1:10" });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(["state.json"]);
  });

  it("removes the file its own process wrote", async () => {
    const { file, keyFile } = await devFolder();
    await writeDevState(file, stateFor("http://127.0.0.1:9", keyFile, 4242));
    expect(await removeDevStateIfOwn(file, 4242)).toBe(true);
    await expect(stat(file)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("deny twin: leaves a file another process wrote (another `tollgate dev` took over the folder)", async () => {
    const { file, keyFile } = await devFolder();
    const state = stateFor("http://127.0.0.1:9", keyFile, 4243);
    await writeDevState(file, state);
    expect(await removeDevStateIfOwn(file, 4242)).toBe(false);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual(state);
  });

  it("is a no-op when there is no file", async () => {
    const { file } = await devFolder();
    expect(await removeDevStateIfOwn(file, 4242)).toBe(false);
  });
});
