import type { Command } from "commander";
import { formatProblems, loadConfigFile } from "../../config/index.js";
import { type RunningGateway, startGateway } from "../../server/index.js";
import { exitCodes } from "../exit-codes.js";
import { configPath, loadOrReport, untilStopSignal } from "../load-or-report.js";

/** `tollgate serve`: run the gateway until SIGINT/SIGTERM, then drain and stop. */
export function registerServe(program: Command, setExitCode: (code: number) => void): void {
  program
    .command("serve")
    .description("Run the gateway. Stops gracefully on SIGINT/SIGTERM (drains in-flight requests).")
    .option("-c, --config <file>", "configuration file (default: $TOLLGATE_CONFIG or ./tollgate.yaml)")
    .addHelpText(
      "after",
      "\nEnvironment: PORT and BIND override listen.port and listen.host; LOG_LEVEL sets the operational log level." +
        "\nSignals: SIGHUP reloads the configuration atomically (the old one stays on error); SIGINT/SIGTERM stop.",
    )
    .action(async (options: { config?: string }) => {
      const path = configPath(options.config);
      const config = await loadOrReport(path);
      if (config === undefined) return setExitCode(exitCodes.badConfig);
      const running = await startGateway(config);
      const onReload = () => void reloadFrom(path, running);
      process.on("SIGHUP", onReload);
      const signal = await untilStopSignal();
      process.off("SIGHUP", onReload);
      running.logger.info({ signal }, "stopping: draining in-flight requests");
      await running.close();
      running.logger.info("stopped");
      setExitCode(exitCodes.ok);
    });
}

/** SIGHUP: compile the file again; only a configuration without problems replaces the running one. */
async function reloadFrom(path: string, running: RunningGateway): Promise<void> {
  const result = await loadConfigFile(path, process.env);
  if (result.config === undefined || result.problems.length > 0) {
    running.logger.error(
      { problems: formatProblems(result.problems, path).split("\n") },
      "configuration reload refused; the running configuration stays",
    );
    return;
  }
  try {
    const outcome = await running.reload(result.config);
    running.logger.info(
      { verifier_replaced: outcome.verifierReplaced, restart_needed_for: outcome.restartNeeded },
      "configuration reloaded",
    );
  } catch (error) {
    running.logger.error({ err: error }, "configuration reload failed; the running configuration stays");
  }
}
