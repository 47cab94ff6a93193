import { type ChildProcess, execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The repository root and the launcher the README's `npx tollgate` runs (npm test builds dist/ first). */
export const repositoryRoot = fileURLToPath(new URL("../../", import.meta.url));
export const cliPath = fileURLToPath(new URL("../../bin/tollgate.js", import.meta.url));

/**
 * Runs the built CLI as a user would and returns its exit code and output, never throwing on a
 * non-zero exit. `env` is added to the test's environment; `cleanEnv` starts from PATH alone.
 */
export async function runTollgate(
  args: readonly string[],
  options: { env?: Record<string, string>; cleanEnv?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = options.cleanEnv === true ? { PATH: process.env.PATH ?? "" } : process.env;
  try {
    const { stdout, stderr } = await run(process.execPath, [cliPath, ...args], {
      cwd: repositoryRoot,
      env: { ...base, ...options.env },
      timeout: 15_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Reads a child's stdout until `pattern` appears (bounded by a timeout). */
export function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}; got:\n${text}`)),
      timeoutMs,
    );
    child.stdout?.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      if (pattern.test(text)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ${pattern}:\n${text}`));
    });
  });
}
