import { formatProblems, loadConfigFile } from "../config/index.js";
import type { CompiledConfig } from "../config/types.js";
import { type CliIo, processIo } from "./command-context.js";

/** Default configuration path: `--config`, else `TOLLGATE_CONFIG`, else `./tollgate.yaml`. */
export function configPath(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return option ?? env.TOLLGATE_CONFIG ?? "tollgate.yaml";
}

/**
 * Loads and compiles a configuration file; on problems prints every one of them to stderr and
 * returns `undefined` (the caller exits with code 2).
 */
export async function loadOrReport(path: string, io: CliIo = processIo): Promise<CompiledConfig | undefined> {
  const result = await loadConfigFile(path, io.env);
  if (result.config === undefined || result.problems.length > 0) {
    io.stderr.write(`${formatProblems(result.problems, path)}\n`);
    io.stderr.write(`tollgate: ${result.problems.length} problem(s) in ${path}; nothing was started.\n`);
    return undefined;
  }
  return result.config;
}

/** Resolves when the process receives SIGINT or SIGTERM (the graceful-stop signals). */
export function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      resolve(signal);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}
