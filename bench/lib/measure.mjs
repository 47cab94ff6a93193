// Load generation and statistics shared by the benchmarks: wrk runs and their parsing, a pre-flight check
// that each target really answers 200 with the expected body, medians, and markdown tables.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "undici";
import { runToCompletion } from "./processes.mjs";

/** The response body every upstream and trivial handler answers: exactly 64 bytes. */
export const BODY_64 = `${"tollgate bench: a 64-byte response body".padEnd(63, ".")}\n`;
if (Buffer.byteLength(BODY_64) !== 64) throw new Error("BODY_64 must be 64 bytes");

/**
 * Parses a duration as wrk prints it (`812.00us`, `1.20ms`, `2.00s`, `1.00m`) into milliseconds.
 *
 * @param {string} text
 */
export function parseWrkDuration(text) {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!match) throw new Error(`unparseable wrk duration: ${text}`);
  const value = Number(match[1]);
  const unit = match[2];
  if (unit === "us") return value / 1000;
  if (unit === "ms") return value;
  if (unit === "s") return value * 1000;
  return value * 60_000;
}

/**
 * Parses the output of `wrk --latency`.
 *
 * @param {string} output
 * @returns {{ rps: number, p50Ms: number, p99Ms: number, requests: number, non2xx: number, socketErrors: number }}
 */
export function parseWrkOutput(output) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  const p50 = /^\s+50%\s+(\S+)/m.exec(output);
  const p99 = /^\s+99%\s+(\S+)/m.exec(output);
  const requests = /(\d+) requests in/.exec(output);
  if (!rps || !p50 || !p99 || !requests) throw new Error(`unexpected wrk output:\n${output}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(output);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  return {
    rps: Number(rps[1]),
    p50Ms: parseWrkDuration(p50[1]),
    p99Ms: parseWrkDuration(p99[1]),
    requests: Number(requests[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors,
  };
}

/**
 * Runs wrk once against a loopback URL.
 *
 * @param {{ url: string, threads: number, connections: number, seconds: number, headers?: Record<string, string> }} options
 */
export async function runWrk({ url, threads, connections, seconds, headers = {} }) {
  assertLoopback(url);
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, "--latency", "--timeout", "5s"];
  for (const [name, value] of Object.entries(headers)) args.push("-H", `${name}: ${value}`);
  args.push(url);
  // Bounded: wrk stops itself after `seconds`; the kill timer is only a safety net.
  const { code, stdout, stderr } = await runToCompletion("wrk", args, (seconds + 30) * 1000);
  if (code !== 0) throw new Error(`wrk exited ${code}: ${stderr}`);
  return parseWrkOutput(stdout);
}

/**
 * Refuses anything but loopback targets: benchmarks never send traffic elsewhere.
 *
 * @param {string} url
 */
export function assertLoopback(url) {
  const { hostname } = new URL(url);
  if (hostname !== "127.0.0.1" && hostname !== "localhost" && hostname !== "[::1]") {
    throw new Error(`benchmarks only target loopback, not ${hostname}`);
  }
}

/**
 * Checks that a target answers 200 with exactly the 64-byte body, so a target that denies or errors
 * cannot pass for a fast one. Polls until `timeoutMs` to cover start-up.
 *
 * @param {string} url
 * @param {Record<string, string>} [headers]
 * @param {number} [timeoutMs]
 */
export async function expectBody64(url, headers = {}, timeoutMs = 10_000) {
  assertLoopback(url);
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const response = await request(url, { headers, headersTimeout: 2000, bodyTimeout: 2000 });
      const text = await response.body.text();
      if (response.statusCode === 200 && text === BODY_64) return;
      last = `status ${response.statusCode}, ${Buffer.byteLength(text)} bytes`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer 200 with the 64-byte body: ${last}`);
}

/** @param {number[]} values */
export function median(values) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Renders a markdown table.
 *
 * @param {string[]} header
 * @param {(string | number)[][]} rows
 */
export function markdownTable(header, rows) {
  const lines = [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  for (const row of rows) lines.push(`| ${row.join(" | ")} |`);
  return lines.join("\n");
}

/** @param {number} value @param {number} [digits] */
export function fixed(value, digits = 2) {
  return Number.isFinite(value) ? value.toFixed(digits) : "n/a";
}

/** Machine facts for the README: cores, CPU model, Node and nginx versions, date. */
export function machineFacts() {
  let cpu = "unknown";
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (match) cpu = match[1].trim();
  } catch {
    // Not Linux; leave unknown.
  }
  // nginx -v prints to stderr.
  const nginxRun = spawnSync("nginx", ["-v"], { encoding: "utf8" });
  const nginx = nginxRun.error ? "not installed" : `${nginxRun.stderr}${nginxRun.stdout}`.trim();
  let nproc = "unknown";
  try {
    nproc = execFileSync("nproc", { encoding: "utf8" }).trim();
  } catch {
    // Leave unknown.
  }
  return { nproc, cpu, node: process.version, nginx, date: new Date().toISOString() };
}

/**
 * Rotates a list so each round starts with a different target: no target always runs first (cold caches)
 * or always right after the same neighbour.
 *
 * @template T
 * @param {T[]} items
 * @param {number} round
 * @returns {T[]}
 */
export function rotate(items, round) {
  const shift = round % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}
