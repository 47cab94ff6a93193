import type { Command } from "commander";
import { formatProblems, loadConfigFile } from "../../config/index.js";
import { exitCodes } from "../exit-codes.js";
import { configPath } from "../load-or-report.js";

/** `tollgate check`: validate a configuration, print every error and every warning. */
export function registerCheck(program: Command, setExitCode: (code: number) => void): void {
  program
    .command("check")
    .description("Validate a configuration file: print every error (exit 2) and every warning (exit 0).")
    .option("-c, --config <file>", "configuration file (default: $TOLLGATE_CONFIG or ./tollgate.yaml)")
    .option("--strict", "treat warnings as errors (exit 2)")
    .action(async (options: { config?: string; strict?: boolean }) => {
      const path = configPath(options.config);
      const result = await loadConfigFile(path, process.env);
      if (result.problems.length > 0) process.stdout.write(`${formatProblems(result.problems, path)}\n`);
      for (const warning of result.warnings) {
        process.stdout.write(`warning ${warning.path} [${warning.id}]: ${warning.message}\n`);
      }
      const failed = result.problems.length > 0 || (options.strict === true && result.warnings.length > 0);
      process.stdout.write(
        `${path}: ${result.problems.length} error(s), ${result.warnings.length} warning(s)${failed ? "" : " — ok"}\n`,
      );
      setExitCode(failed ? exitCodes.badConfig : exitCodes.ok);
    });
}
