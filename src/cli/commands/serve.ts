import { existsSync } from "node:fs";
import type { Command } from "commander";
import { hasCredentialEnvironment, readBrokerCredential } from "../../broker/index.js";
import type { CompiledConfig, ConfigResult } from "../../config/index.js";
import { compileConfigText, formatProblems, loadConfigFile } from "../../config/index.js";
import { isTollgateError } from "../../errors/index.js";
import { type RunningGateway, startGateway } from "../../server/index.js";
import type { CommandContext } from "../command-context.js";
import { exitCodes } from "../exit-codes.js";
import { configPath, loadOrReport, untilStopSignal } from "../load-or-report.js";

/** The name problems are reported under when the configuration comes from the environment only. */
const environmentSource = "environment";

/**
 * The configuration of a github-runner-token-proxy deployment: the broker alone, with the platform in
 * front authorizing callers (that project has no authorization of its own). Everything else —
 * PORT, BIND, GITHUB_API_URL, ALLOWED_SCOPES, DENIED_SCOPES and the credential — comes from the
 * environment through the same overrides a configuration file has. Without BIND it listens where the
 * reference does (Go's `:PORT`): every interface, IPv6 and IPv4 (`::`, IPv4 alone where there is no IPv6).
 */
const environmentOnlyConfig = 'listen:\n  host: "::"\nbroker:\n  authorization: none\n';

/** `tollgate serve`: run the gateway until SIGINT/SIGTERM, then drain and stop. */
export function registerServe(program: Command, context: CommandContext): void {
  program
    .command("serve")
    .description("Run the gateway. Stops gracefully on SIGINT/SIGTERM (drains in-flight requests).")
    .option("-c, --config <file>", "configuration file (default: $TOLLGATE_CONFIG or ./tollgate.yaml)")
    .addHelpText(
      "after",
      "\nEnvironment: PORT and BIND override listen.port and listen.host; LOG_LEVEL sets the operational log level." +
        "\nSignals: SIGHUP reloads the configuration atomically (the old one stays on error); SIGINT/SIGTERM stop." +
        "\n\nWithout a configuration file (no --config, no TOLLGATE_CONFIG, no ./tollgate.yaml) but with GITHUB_TOKEN" +
        "\nor GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY set, tollgate runs as a github-runner-token-proxy compatible" +
        "\nrunner token broker configured by the environment (GITHUB_API_URL, ALLOWED_SCOPES, DENIED_SCOPES," +
        "\nPORT, BIND; each secret also as <NAME>_FILE), with no authorization of its own.",
    )
    .action(async (options: { config?: string }) => {
      const fromEnvironment = environmentOnly(options.config);
      const path = configPath(options.config);
      const config = fromEnvironment
        ? reportProblems(compileEnvironmentConfig(), environmentSource)
        : await loadOrReport(path);
      if (config === undefined) return context.setExitCode(exitCodes.badConfig);
      // The credential is read again by the broker feature; reading it here first turns a missing or
      // malformed one into a plain message and exit code 2 before anything starts.
      if (config.compiledBroker !== undefined && !(await credentialUsable()))
        return context.setExitCode(exitCodes.badConfig);
      // Listening for SIGINT/SIGTERM from before the start, so that one arriving while the gateway starts
      // (an orchestrator that changed its mind) still stops it gracefully instead of killing it.
      const stopSignal = untilStopSignal();
      let running: RunningGateway;
      try {
        running = await startGateway(config);
      } catch (error) {
        if (!isTollgateError(error) || error.code !== "TG_CONFIG_INVALID") throw error;
        process.stderr.write(`tollgate: ${error.message}; nothing was started.\n`);
        return context.setExitCode(exitCodes.badConfig);
      }
      if (fromEnvironment) {
        running.logger.warn(
          { mode: "environment-only", authorization: "none" },
          "NO AUTHORIZATION: no configuration file was found, so tollgate runs as a github-runner-token-proxy " +
            "compatible runner token broker configured by the environment. Every request that reaches this " +
            "port can obtain runner tokens for the allowed scopes: keep it behind a platform that authorizes " +
            "callers (as github-runner-token-proxy requires), or use a configuration file with " +
            "broker.authorization: oidc. See docs/broker.md.",
        );
      }
      const onReload = () => void reloadFrom(fromEnvironment ? undefined : path, running);
      process.on("SIGHUP", onReload);
      const signal = await stopSignal;
      process.off("SIGHUP", onReload);
      running.logger.info({ signal }, "stopping: draining in-flight requests");
      await running.close();
      running.logger.info("stopped");
      context.setExitCode(exitCodes.ok);
    });
}

/**
 * Environment-only mode: no configuration file was asked for (`--config`, `TOLLGATE_CONFIG`) or is in
 * the working directory, and the environment carries a broker credential the way a
 * github-runner-token-proxy deployment does.
 */
function environmentOnly(option: string | undefined): boolean {
  if (option !== undefined || (process.env.TOLLGATE_CONFIG ?? "") !== "") return false;
  if (existsSync(configPath(undefined))) return false;
  return hasCredentialEnvironment(process.env);
}

function compileEnvironmentConfig(): ConfigResult {
  return compileConfigText(environmentOnlyConfig, { env: process.env, sourceName: environmentSource });
}

function reportProblems(result: ConfigResult, source: string): CompiledConfig | undefined {
  if (result.config !== undefined && result.problems.length === 0) return result.config;
  process.stderr.write(`${formatProblems(result.problems, source)}\n`);
  process.stderr.write(
    `tollgate: ${result.problems.length} problem(s) in the ${source}; nothing was started.\n`,
  );
  return undefined;
}

async function credentialUsable(): Promise<boolean> {
  try {
    await readBrokerCredential(process.env);
    return true;
  } catch (error) {
    if (!isTollgateError(error)) throw error;
    process.stderr.write(`tollgate: ${error.message}; nothing was started.\n`);
    return false;
  }
}

/**
 * SIGHUP: compile the file (or the environment) again; only a configuration without problems replaces
 * the running one. The broker re-reads its credential files on reload, so a rotated key is picked up.
 */
async function reloadFrom(path: string | undefined, running: RunningGateway): Promise<void> {
  const result = path === undefined ? compileEnvironmentConfig() : await loadConfigFile(path, process.env);
  if (result.config === undefined || result.problems.length > 0) {
    running.logger.error(
      { problems: formatProblems(result.problems, path ?? environmentSource).split("\n") },
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
