import type { Command } from "commander";
import type { ClientSettings } from "../../client/index.js";
import { TollgateError } from "../../errors/index.js";
import { exitCodes } from "../exit-codes.js";

/** The options every command that talks to the gateway takes (`proxy`, `forward`, `pipe`, `whoami`). */
export interface GatewayOptions {
  gateway: string;
  audience: string;
  ca?: string;
}

/**
 * Adds `--gateway`, `--audience` and `--ca` to a command, defaulting to `TOLLGATE_GATEWAY` and
 * `TOLLGATE_AUDIENCE` of the environment the command line runs with (the action exports both).
 */
export function addGatewayOptions(command: Command, env: NodeJS.ProcessEnv): Command {
  return command
    .requiredOption(
      "--gateway <url>",
      "the gateway, http(s)://host[:port] (default $TOLLGATE_GATEWAY)",
      env.TOLLGATE_GATEWAY,
    )
    .requiredOption(
      "--audience <audience>",
      "the gateway's audience (default $TOLLGATE_AUDIENCE)",
      env.TOLLGATE_AUDIENCE,
    )
    .option("--ca <file>", "PEM file of a private CA that signed the gateway's certificate");
}

/** The client settings for those options. */
export function clientSettingsOf(options: GatewayOptions, env: NodeJS.ProcessEnv): ClientSettings {
  return {
    gatewayUrl: options.gateway,
    audience: options.audience,
    ...(options.ca === undefined ? {} : { caFile: options.ca }),
    env,
  };
}

/** 2 for a setting that cannot work (bad URL, unreadable CA, malformed argument), 1 for everything else. */
export function clientExitCode(error: unknown): number {
  return error instanceof TollgateError && error.code === "TG_CONFIG_INVALID"
    ? exitCodes.badConfig
    : exitCodes.failure;
}
