import type { Command } from "commander";
import { startGateway } from "../../server/index.js";
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
      "\nEnvironment: PORT and BIND override listen.port and listen.host; LOG_LEVEL sets the operational log level.",
    )
    .action(async (options: { config?: string }) => {
      const config = await loadOrReport(configPath(options.config));
      if (config === undefined) return setExitCode(exitCodes.badConfig);
      const running = await startGateway(config);
      const signal = await untilStopSignal();
      running.logger.info({ signal }, "stopping: draining in-flight requests");
      await running.close();
      running.logger.info("stopped");
      setExitCode(exitCodes.ok);
    });
}
