import type { Command } from "commander";
import { formatProblems, loadConfigFile } from "../../config/index.js";
import type { CommandContext } from "../command-context.js";
import { exitCodes } from "../exit-codes.js";
import { configPath } from "../load-or-report.js";

/** `tollgate check`: validate a configuration, print every error and every warning. */
export function registerCheck(program: Command, context: CommandContext): void {
  program
    .command("check")
    .description("Validate a configuration file: print every error (exit 2) and every warning (exit 0).")
    .option("-c, --config <file>", "configuration file (default: $TOLLGATE_CONFIG or ./tollgate.yaml)")
    .option("--strict", "treat warnings as errors (exit 2)")
    .action(async (options: { config?: string; strict?: boolean }) => {
      const path = configPath(options.config, context.env);
      const result = await loadConfigFile(path, context.env);
      if (result.problems.length > 0) context.stdout.write(`${formatProblems(result.problems, path)}\n`);
      for (const warning of result.warnings) {
        context.stdout.write(`warning ${warning.path} [${warning.id}]: ${warning.message}\n`);
      }
      const failed = result.problems.length > 0 || (options.strict === true && result.warnings.length > 0);
      context.stdout.write(
        `${path}: ${result.problems.length} error(s), ${result.warnings.length} warning(s)${failed ? "" : " — ok"}\n`,
      );
      context.setExitCode(failed ? exitCodes.badConfig : exitCodes.ok);
    });
}
