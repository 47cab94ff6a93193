import { randomUUID } from "node:crypto";
import { appendFileSync } from "node:fs";

/**
 * GitHub Actions workflow commands and environment files, written the way GitHub documents them
 * ("Workflow commands for GitHub Actions"), so the action needs no toolkit dependency.
 */

/** Escapes the data part of a `::command::data` line (`%`, CR and LF), as the runner unescapes it. */
export function escapeCommandData(value: string): string {
  return value.replaceAll("%", "%25").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
}

/**
 * `::add-mask::<value>`: the runner replaces the value with `***` in every later log line. The runner
 * reads workflow commands from a step's stdout and stderr alike.
 */
export function addMaskCommand(value: string): string {
  return `::add-mask::${escapeCommandData(value)}\n`;
}

/** `::error::…`, `::warning::…` or `::notice::…`: an annotation on the run. */
export function annotationCommand(kind: "error" | "warning" | "notice", message: string): string {
  return `::${kind}::${escapeCommandData(message)}\n`;
}

/**
 * One entry of an environment file (`GITHUB_ENV`, `GITHUB_OUTPUT`, `GITHUB_STATE`) in the multiline form
 * `name<<DELIMITER\nvalue\nDELIMITER\n`, with a random delimiter that cannot occur in name or value.
 */
export function environmentFileEntry(name: string, value: string): string {
  if (name.length === 0 || /[=\r\n]/.test(name)) throw new Error(`invalid environment file name: ${name}`);
  const delimiter = `ghadelimiter_${randomUUID()}`;
  if (name.includes(delimiter) || value.includes(delimiter)) {
    throw new Error("the value contains the delimiter"); // A random UUID: practically unreachable.
  }
  return `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
}

/**
 * Appends `name=value` to the environment file named by `env[variable]` (`GITHUB_ENV`: later steps'
 * environment; `GITHUB_OUTPUT`: step outputs; `GITHUB_STATE`: the post step's `STATE_<name>`).
 * Returns false when the variable is unset (not running inside Actions).
 */
export function appendEnvironmentFile(
  env: NodeJS.ProcessEnv,
  variable: "GITHUB_ENV" | "GITHUB_OUTPUT" | "GITHUB_STATE",
  name: string,
  value: string,
): boolean {
  const file = env[variable];
  if (file === undefined || file.length === 0) return false;
  appendFileSync(file, environmentFileEntry(name, value), { encoding: "utf8" });
  return true;
}

/** Whether this process runs inside a GitHub Actions step (`GITHUB_ACTIONS=true`). */
export function inGitHubActions(env: NodeJS.ProcessEnv): boolean {
  return env.GITHUB_ACTIONS === "true";
}
