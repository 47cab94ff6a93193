import type { Command } from "commander";
import {
  describeClientError,
  formatHostPort,
  parseForwardSpec,
  prepareClient,
  startPortForwards,
} from "../../client/index.js";
import { TollgateError } from "../../errors/index.js";
import type { CommandContext } from "../command-context.js";
import { exitCodes } from "../exit-codes.js";
import { untilStopSignal } from "../load-or-report.js";

interface ForwardOptions {
  gateway: string;
  audience: string;
  ca?: string;
  allowRemote?: boolean;
  verbose?: boolean;
}

/** `tollgate forward LOCAL_PORT:HOST:PORT …`: local TCP ports carried through the gateway's tunnels. */
export function registerForward(program: Command, context: CommandContext): void {
  program
    .command("forward")
    .description("Open local TCP ports whose connections are carried through CONNECT tunnels of the gateway.")
    .argument("<forwards...>", "LOCAL_PORT:HOST:PORT or LOCAL_ADDR:LOCAL_PORT:HOST:PORT (IPv6 in brackets)")
    .requiredOption(
      "--gateway <url>",
      "the gateway, http(s)://host[:port] (default $TOLLGATE_GATEWAY)",
      process.env.TOLLGATE_GATEWAY,
    )
    .requiredOption(
      "--audience <audience>",
      "the gateway's audience (default $TOLLGATE_AUDIENCE)",
      process.env.TOLLGATE_AUDIENCE,
    )
    .option("--ca <file>", "PEM file of a private CA that signed the gateway's certificate")
    .option(
      "--allow-remote",
      "allow non-loopback local addresses (anyone reaching them uses this job's identity)",
    )
    .option("--verbose", "log every tunnel, not only failures")
    .addHelpText(
      "after",
      "\nExample: tollgate forward 5432:db.internal:5432 --gateway https://gw.example.com --audience gw.example.com" +
        "\nPrints one `LOCAL -> DESTINATION` line per forward on stdout once listening; stops on SIGINT/SIGTERM.",
    )
    .action(async (specs: string[], options: ForwardOptions) => {
      try {
        const forwards = specs.map(parseForwardSpec);
        const { gateway, tokens } = await prepareClient({
          gatewayUrl: options.gateway,
          audience: options.audience,
          ...(options.ca === undefined ? {} : { caFile: options.ca }),
          env: process.env,
        });
        const running = await startPortForwards({
          forwards,
          gateway,
          tokens,
          allowRemote: options.allowRemote === true,
          verbose: options.verbose === true,
        });
        for (const listener of running.listeners) {
          process.stdout.write(
            `${formatHostPort(listener.address.host, listener.address.port)} -> ${listener.destination}\n`,
          );
        }
        await untilStopSignal();
        await running.close();
        context.setExitCode(exitCodes.ok);
      } catch (error) {
        process.stderr.write(`tollgate forward: ${describeClientError(error)}\n`);
        context.setExitCode(
          error instanceof TollgateError && error.code === "TG_CONFIG_INVALID"
            ? exitCodes.badConfig
            : exitCodes.failure,
        );
      }
    });
}
