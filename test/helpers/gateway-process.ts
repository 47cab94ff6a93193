import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliPath, repositoryRoot } from "./run-cli.js";

/**
 * `tollgate serve --config FILE` as a real process (`bin/tollgate.js`, built dist/), the way an operator
 * runs one instance of a fleet: its own port (PORT=0, BIND=127.0.0.1), its own audit file, its operational
 * log on stderr.
 */
export interface GatewayProcess {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** The operational log (stderr) so far. */
  stderr(): string;
  /** Everything the process wrote to stdout so far (nothing is expected: the audit goes to a file). */
  stdout(): string;
  /**
   * The audit file as written so far (lines are flushed at the end of every event-loop turn); after
   * {@link GatewayProcess.stop}, all of it.
   */
  auditText(): Promise<string>;
  auditEvents(): Promise<Record<string, unknown>[]>;
  /**
   * Graceful stop (SIGTERM), bounded: SIGKILL after `timeoutMs`. Resolves with the exit code (null when
   * it had to be killed). Idempotent; the temporary folder is removed after the first stop.
   */
  stop(timeoutMs?: number): Promise<number | null>;
}

/** Every process started here and not stopped yet, so a failed test's cleanup can reach them all. */
const running = new Set<GatewayProcess>();

/**
 * Starts one gateway process whose configuration is `configYaml` plus an `audit:` section this helper
 * adds (a file in a temporary folder, `flush_interval: 0s`, `denials.window: 0s` so every denial is
 * its own line): `configYaml` must not have one. Resolves once the process listens and `/readyz` is 200
 * (its issuers' keys are loaded).
 *
 * @example
 * const gateway = await startGatewayProcess(`${issuersYaml}routes: [...]`);
 * await fetch(`${gateway.url}/healthz`);
 * await gateway.stop();
 */
export async function startGatewayProcess(
  configYaml: string,
  options: { startTimeoutMs?: number } = {},
): Promise<GatewayProcess> {
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const dir = await mkdtemp(join(tmpdir(), "tollgate-process-"));
  const auditFile = join(dir, "audit.jsonl");
  const configFile = join(dir, "tollgate.yaml");
  await writeFile(
    configFile,
    `${configYaml}audit:\n  sink: ${JSON.stringify(auditFile)}\n  flush_interval: 0s\n  denials:\n    window: 0s\n`,
  );
  const child: ChildProcess = spawn(process.execPath, [cliPath, "serve", "--config", configFile], {
    cwd: repositoryRoot,
    env: { ...process.env, PORT: "0", BIND: "127.0.0.1", LOG_LEVEL: "info", TOLLGATE_CONFIG: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let stdout = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });

  let stopped: Promise<number | null> | undefined;
  // What the audit file held when the process had stopped (the folder is gone then).
  let finalAudit: string | undefined;
  const stop = (timeoutMs = 15_000): Promise<number | null> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<null>((resolve) => {
        timer = setTimeout(() => {
          child.kill("SIGKILL");
          resolve(null);
        }, timeoutMs);
      });
      const code = await Promise.race([exited, killed]);
      clearTimeout(timer);
      await exited;
      running.delete(gateway);
      finalAudit = await readFile(auditFile, "utf8").catch(() => "");
      await rm(dir, { recursive: true, force: true });
      return code;
    })();
    return stopped;
  };

  let port = 0;
  const gateway: GatewayProcess = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    pid: child.pid ?? -1,
    stderr: () => stderr,
    stdout: () => stdout,
    auditText: async () => finalAudit ?? (await readFile(auditFile, "utf8").catch(() => "")),
    async auditEvents() {
      return (await gateway.auditText())
        .split("\n")
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    stop,
  };
  running.add(gateway);

  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no "tollgate listening" line within ${startTimeoutMs} ms:\n${stderr}`)),
        startTimeoutMs,
      );
      const look = () => {
        const match = /"port":(\d+)[^\n]*tollgate listening|tollgate listening[^\n]*"port":(\d+)/.exec(
          stderr,
        );
        if (match === null) return;
        clearTimeout(timer);
        child.stderr!.off("data", look);
        resolve(Number(match[1] ?? match[2]));
      };
      child.stderr!.on("data", look);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`tollgate serve exited with ${code} before listening:\n${stderr}`));
      });
    });
    const deadline = Date.now() + startTimeoutMs;
    for (let attempt = 0; attempt < 400; attempt++) {
      const ready = await fetch(`${gateway.url}/readyz`).then(
        (answer) => answer.status,
        () => 0,
      );
      if (ready === 200) return gateway;
      if (Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`tollgate serve on port ${port} never became ready:\n${stderr}`);
  } catch (error) {
    await stop(5_000);
    throw error;
  }
}

/** Stops every gateway process this helper started and that is still running (for `afterAll`). */
export async function stopAllGatewayProcesses(): Promise<void> {
  await Promise.all([...running].map((gateway) => gateway.stop()));
}
