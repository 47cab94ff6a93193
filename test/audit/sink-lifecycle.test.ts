import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";
import { startGateway } from "../../src/server/index.js";
import { devIssuerYaml } from "../helpers/gateway-harness.js";

const run = promisify(execFile);
// The built package (`npm test` builds dist/ first): a child process cannot load the TypeScript sources.
const auditModule = fileURLToPath(new URL("../../dist/audit/index.js", import.meta.url));

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "tollgate-audit-sink-"));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

/** Runs a process that creates an audit log on `sink`, emits one event and exits at once. */
async function exitRightAfterStart(sink: string): Promise<{ code: number; stderr: string }> {
  const script = `
    const { createAuditLog, createRedactor } = await import(${JSON.stringify(auditModule)});
    const audit = createAuditLog({ sink: ${JSON.stringify(sink)}, redactor: createRedactor(), onError: () => {} });
    audit.emit({ event: "gateway.request", request_id: "r-1", decision: "deny", reason: "TG_TOKEN_MISSING" });
    globalThis.keep = audit;
    process.exit(0);
  `;
  return run(process.execPath, ["--input-type=module", "-e", script], { timeout: 10_000 }).then(
    ({ stderr }) => ({ code: 0, stderr }),
    (error: { code?: number; stderr?: string }) => ({ code: error.code ?? -1, stderr: error.stderr ?? "" }),
  );
}

describe("the audit sink is opened at once", () => {
  it("a process that exits right after it created its audit log exits cleanly", async () => {
    const sink = join(folder, "deep", "er", "audit.jsonl");
    const outcome = await exitRightAfterStart(sink);
    expect(outcome).toEqual({ code: 0, stderr: "" });
    // Created with its folders, readable by owner and group only.
    expect((await stat(sink)).mode & 0o777).toBe(0o640);
  });

  it("so does one whose sink could not be opened (pino's exit flush used to crash on it)", async () => {
    const blocker = join(folder, "a-regular-file");
    await writeFile(blocker, "");
    const outcome = await exitRightAfterStart(join(blocker, "audit.jsonl"));
    expect(outcome).toEqual({ code: 0, stderr: "" });
  });
});

describe("serve refuses to start without its audit sink", () => {
  const config = () => {
    const compiled = compileConfigText(devIssuerYaml("http://127.0.0.1:9"), {
      env: {},
      sourceName: "t.yaml",
    });
    if (compiled.config === undefined) throw new Error(JSON.stringify(compiled.problems));
    return compiled.config;
  };

  it("a sink that cannot be opened is a configuration error naming it", async () => {
    const blocker = join(folder, "another-regular-file");
    await writeFile(blocker, "");
    const sink = join(blocker, "audit.jsonl");
    await expect(
      startGateway(config(), { listen: { host: "127.0.0.1", port: 0 }, auditSink: sink }).then(
        async (running) => {
          await running.close();
          throw new Error("the gateway started without its audit sink");
        },
      ),
    ).rejects.toMatchObject({
      code: "TG_CONFIG_INVALID",
      message: `audit.sink: cannot open ${sink} (EEXIST)`,
    });
  });

  it("the twin: a sink that can be opened, and the gateway's lines reach it", async () => {
    const sink = join(folder, "ok", "audit.jsonl");
    const running = await startGateway(config(), { listen: { host: "127.0.0.1", port: 0 }, auditSink: sink });
    try {
      await fetch(`http://127.0.0.1:${running.address.port}/nowhere`);
    } finally {
      await running.close();
    }
    expect(await readFile(sink, "utf8")).toContain('"reason":"TG_ROUTE_NOT_FOUND"');
  });
});
