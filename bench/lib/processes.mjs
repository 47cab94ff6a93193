// Child processes of a benchmark run: every process started here is remembered and killed when the run
// ends, fails, or is interrupted, so a benchmark never leaves a server or load generator behind.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";

/** @type {Set<import("node:child_process").ChildProcess>} */
const running = new Set();
let cleanupInstalled = false;

function isAlive(child) {
  return child.exitCode === null && child.signalCode === null;
}

// SIGTERM, not SIGKILL: nginx's master stops its worker on TERM, whereas a killed master leaves the worker
// running and holding the port.
function terminateAll() {
  for (const child of running) if (isAlive(child)) child.kill("SIGTERM");
}

/** Installs exit and signal handlers once, so children die with the harness. */
export function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on("exit", terminateAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.once(signal, () => {
      terminateAll();
      // Give children a moment to stop on TERM, then kill whatever is left.
      const deadline = Date.now() + 3000;
      const poll = setInterval(() => {
        const alive = [...running].filter(isAlive);
        if (alive.length > 0 && Date.now() < deadline) return;
        for (const child of alive) child.kill("SIGKILL");
        clearInterval(poll);
        process.exit(130);
      }, 50);
    });
  }
}

/**
 * Starts a child process and remembers it for cleanup. stdout is piped (targets report their port on it);
 * stderr is kept in memory (the last 8 KiB) for error messages.
 *
 * @param {string} command
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv, cwd?: string }} [options]
 */
export function startProcess(command, args, options = {}) {
  installCleanup();
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let stderrTail = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    stderrTail = (stderrTail + chunk).slice(-8192);
  });
  child.on("exit", () => running.delete(child));
  return {
    child,
    stderr: () => stderrTail,
  };
}

/**
 * Waits for the first stdout line of a child that parses as JSON (targets print `{"port": N, ...}` once
 * listening). Rejects when the child exits first or after `timeoutMs`.
 *
 * @param {ReturnType<typeof startProcess>} started
 * @param {number} [timeoutMs]
 * @returns {Promise<Record<string, unknown>>}
 */
export function readReadyLine(started, timeoutMs = 15_000) {
  const { child } = started;
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => finish(new Error(`no ready line after ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk) => {
      buffered += chunk;
      let newline = buffered.indexOf("\n");
      while (newline !== -1) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line.startsWith("{")) {
          try {
            finish(undefined, JSON.parse(line));
            return;
          } catch {
            // Not our line; keep reading.
          }
        }
        newline = buffered.indexOf("\n");
      }
    };
    const onExit = (code, signal) =>
      finish(new Error(`exited (${code ?? signal}) before ready: ${started.stderr().slice(-2000)}`));
    function finish(error, value) {
      clearTimeout(timer);
      child.stdout.off("data", onData);
      child.off("exit", onExit);
      // Keep draining stdout so a chatty child never blocks on a full pipe.
      child.stdout.resume();
      if (error) reject(error);
      else resolve(value);
    }
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", onData);
    child.on("exit", onExit);
  });
}

/**
 * Stops a child: SIGTERM, then SIGKILL after `graceMs`.
 *
 * @param {ReturnType<typeof startProcess> | undefined} started
 * @param {number} [graceMs]
 */
export async function stopProcess(started, graceMs = 3000) {
  if (!started) return;
  const { child } = started;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Runs a command to completion (bounded by `timeoutMs`) and returns its output.
 *
 * @param {string} command
 * @param {string[]} args
 * @param {number} timeoutMs
 * @returns {Promise<{ code: number | null, stdout: string, stderr: string }>}
 */
export async function runToCompletion(command, args, timeoutMs) {
  installCleanup();
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code] = await once(child, "close");
  clearTimeout(timer);
  running.delete(child);
  return { code, stdout, stderr };
}

/** Asks the kernel for a free loopback port (for servers such as nginx that cannot report one). */
export async function freeLoopbackPort() {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/**
 * CPU time (user + system, ms) used so far by a process and all its descendants, from /proc. CPU per
 * request is far less sensitive to a busy machine than requests/s, so the benchmarks report both.
 * Returns NaN where /proc is unavailable.
 *
 * @param {number | undefined} pid
 */
export function cpuTimeMs(pid) {
  if (pid === undefined) return Number.NaN;
  try {
    const ticksPerSecond = 100; // USER_HZ is 100 on every Linux architecture Node supports.
    let total = 0;
    const pending = [pid];
    while (pending.length > 0) {
      const current = pending.pop();
      const stat = readFileSync(`/proc/${current}/stat`, "utf8");
      // Fields after the command name (which may contain spaces) start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += Number(fields[11]) + Number(fields[12]); // utime, stime
      for (const task of readdirSync(`/proc/${current}/task`)) {
        const children = readFileSync(`/proc/${current}/task/${task}/children`, "utf8").trim();
        if (children) pending.push(...children.split(" ").map(Number));
      }
    }
    return (total * 1000) / ticksPerSecond;
  } catch {
    return Number.NaN;
  }
}
