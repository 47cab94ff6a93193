import { type ChildProcess, spawn } from "node:child_process";
import { PassThrough } from "node:stream";
import pino from "pino";
import { parseDestinationPattern } from "../../src/tunnel/index.js";
import type { DestinationPattern } from "../../src/tunnel/types.js";
import { cliPath, repositoryRoot } from "../helpers/run-cli.js";

/** Destination patterns as `--allow` takes them, for a connector started in-process. */
export function patterns(...texts: string[]): DestinationPattern[] {
  return texts.map((text) => {
    const parsed = parseDestinationPattern(text);
    if (!("pattern" in parsed)) throw new Error(`bad pattern ${text}`);
    return parsed.pattern;
  });
}

/** A pino logger writing to memory, and its lines parsed (a connector's log, in-process). */
export function capturedLogger(): {
  logger: pino.Logger;
  text: () => string;
  lines: () => Record<string, unknown>[];
} {
  const chunks: Buffer[] = [];
  const stream = new PassThrough();
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  const text = () => Buffer.concat(chunks).toString("utf8");
  return {
    logger: pino(stream),
    text,
    lines: () =>
      text()
        .split("\n")
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/**
 * Every form a leaked token could take in a log (CONTRIBUTING: raw, base64, base64url, URL-encoded), and
 * its signature alone, for `expect(output).not.toContain(form)`.
 */
export function tokenForms(token: string): string[] {
  return [
    token,
    token.split(".")[2]!,
    Buffer.from(token).toString("base64"),
    Buffer.from(token).toString("base64url"),
    encodeURIComponent(token),
  ];
}

/** A process a test started, and everything it wrote so far (stdout and stderr). */
export interface StartedProcess {
  readonly child: ChildProcess;
  output(): string;
}

/**
 * Starts `command` (from the repository root) and resolves once its output matches `ready`, within 15 s;
 * a process that exits first, or is not ready in time, rejects with its output (and is not left running).
 */
export function startProcess(command: readonly string[], ready: RegExp): Promise<StartedProcess> {
  const [file, ...args] = command;
  const child = spawn(file!, args, { cwd: repositoryRoot, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command.join(" ")}: not ready within 15 s:\n${output}`));
    }, 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve({ child, output: () => output });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${command.join(" ")}: exited with ${code}:\n${output}`));
    });
  });
}

/** Starts a `tollgate connector` process; resolves once it reports being connected (bounded). */
export function startConnectorProcess(args: string[]): Promise<StartedProcess> {
  return startProcess([process.execPath, cliPath, "connector", ...args], /connected to the edge/);
}
