import type { Command } from "commander";
import {
  describeClientError,
  describeTokenCheck,
  formatHostPort,
  parseForwardSpec,
  prepareClient,
  startPortForwards,
} from "../../client/index.js";
import type { CommandContext } from "../command-context.js";
import { exitCodes } from "../exit-codes.js";
import { untilStopSignal } from "../load-or-report.js";
import {
  addGatewayOptions,
  clientExitCode,
  clientSettingsOf,
  type GatewayOptions,
} from "./client-options.js";

interface ForwardOptions extends GatewayOptions {
  allowRemote?: boolean;
  verbose?: boolean;
}

/** `tollgate forward LOCAL_PORT:HOST:PORT …`: local TCP ports carried through the gateway's tunnels. */
export function registerForward(program: Command, context: CommandContext): void {
  const command = program
    .command("forward")
    .description("Open local TCP ports whose connections are carried through CONNECT tunnels of the gateway.")
    .argument("<forwards...>", "LOCAL_PORT:HOST:PORT or LOCAL_ADDR:LOCAL_PORT:HOST:PORT (IPv6 in brackets)");
  addGatewayOptions(command, context.env)
    .option(
      "--allow-remote",
      "allow non-loopback local addresses (anyone reaching them uses this job's identity)",
    )
    .option("--verbose", "log every tunnel, not only failures")
    .addHelpText(
      "after",
      "\nExample: tollgate forward 5432:db.internal:5432 --gateway https://gw.example.com --audience gw.example.com" +
        "\nPrints one `LOCAL -> DESTINATION` line per forward on stdout once listening; stops on SIGINT/SIGTERM." +
        "\nAt start the gateway is asked whether it takes the token (GET /_tollgate/whoami); if not, exit 1 with the code." +
        "\nFor ssh, prefer `tollgate pipe` as ProxyCommand: with a forward, ssh records the host key as [127.0.0.1]:PORT.",
    )
    .action(async (specs: string[], options: ForwardOptions) => {
      const log = (line: string) => context.stderr.write(`tollgate forward: ${line}\n`);
      try {
        const forwards = specs.map(parseForwardSpec);
        const { gateway, tokens, check } = await prepareClient(clientSettingsOf(options, context.env));
        if (check !== undefined) log(`${check.checked ? "" : "warning: "}${describeTokenCheck(check)}`);
        const running = await startPortForwards({
          forwards,
          gateway,
          tokens,
          allowRemote: options.allowRemote === true,
          verbose: options.verbose === true,
          log,
        });
        for (const listener of running.listeners) {
          context.stdout.write(
            `${formatHostPort(listener.address.host, listener.address.port)} -> ${listener.destination}\n`,
          );
        }
        await untilStopSignal();
        await running.close();
        context.setExitCode(exitCodes.ok);
      } catch (error) {
        log(describeClientError(error));
        context.setExitCode(clientExitCode(error));
      }
    });
}
