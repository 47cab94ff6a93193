import {
  logSection,
  stateNames
} from "./chunk-KWDTBWK2.mjs";

// action/src/run-post.ts
import { readFileSync } from "node:fs";
async function runPost(options) {
  const write = options.write ?? ((text) => process.stdout.write(text));
  const pid = Number(options.env[`STATE_${stateNames.pid}`] ?? "");
  const logFile = options.env[`STATE_${stateNames.log}`];
  if (Number.isInteger(pid) && pid > 0 && isOurProcess(pid)) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
    }
    const deadline = Date.now() + (options.graceMs ?? 1e4);
    while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    if (isAlive(pid)) {
      write("tollgate: the background process did not stop in time; killing it\n");
      process.kill(pid, "SIGKILL");
    }
    write(`tollgate: stopped the background process (pid ${pid})
`);
  }
  if (logFile) write(logSection(logFile));
  return 0;
}
function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}
function isOurProcess(pid) {
  if (!isAlive(pid)) return false;
  let commandLine;
  try {
    commandLine = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return process.platform !== "linux";
  }
  return commandLine.includes("daemon.mjs");
}

// action/src/post.ts
process.exitCode = await runPost({ env: process.env });
