import { readFileSync } from "node:fs";
import { logSection, stateNames } from "./state.js";

/** How the post step runs (injectable for tests). */
export interface PostOptions {
  readonly env: NodeJS.ProcessEnv;
  /** How long to wait after SIGTERM before SIGKILL (default 10 s). */
  readonly graceMs?: number;
  readonly write?: (text: string) => void;
}

/**
 * The action's post step: stops the background process the main step recorded (SIGTERM, then SIGKILL
 * after a grace period) and prints its log. Only a process that is still the action's background process
 * is signalled, so a recycled pid is never hit.
 */
export async function runPost(options: PostOptions): Promise<number> {
  const write = options.write ?? ((text: string) => process.stdout.write(text));
  const pid = Number(options.env[`STATE_${stateNames.pid}`] ?? "");
  const logFile = options.env[`STATE_${stateNames.log}`];
  if (Number.isInteger(pid) && pid > 0 && isOurProcess(pid)) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // Already gone.
    }
    const deadline = Date.now() + (options.graceMs ?? 10_000);
    while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    if (isAlive(pid)) {
      write("tollgate: the background process did not stop in time; killing it\n");
      process.kill(pid, "SIGKILL");
    }
    write(`tollgate: stopped the background process (pid ${pid})\n`);
  }
  if (logFile) write(logSection(logFile));
  return 0;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** On Linux the command line must still name the action's background script; elsewhere: alive is enough. */
function isOurProcess(pid: number): boolean {
  if (!isAlive(pid)) return false;
  let commandLine: string;
  try {
    commandLine = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return process.platform !== "linux";
  }
  return commandLine.includes("daemon.mjs");
}
