import type { Command } from "commander";
import {
  describeClientError,
  describeTokenCheck,
  parseListenAddress,
  prepareClient,
  startLocalProxy,
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

interface ProxyOptions extends GatewayOptions {
  listen: string;
  allowRemote?: boolean;
  verbose?: boolean;
}

/** `tollgate proxy`: a local forward proxy that adds a fresh OIDC token to every CONNECT and request. */
export function registerProxy(program: Command, context: CommandContext): void {
  const command = program
    .command("proxy")
    .description(
      "Run a local forward proxy that carries CONNECT and plain-HTTP requests through the gateway with a fresh OIDC token.",
    );
  addGatewayOptions(command, context.env)
    .option("--listen <host:port>", "local address; port 0 picks a free one", "127.0.0.1:0")
    .option(
      "--allow-remote",
      "allow a non-loopback --listen address (anyone reaching it uses this job's identity)",
    )
    .option("--verbose", "log every tunnel and request, not only failures")
    .addHelpText(
      "after",
      "\nPrints HTTPS_PROXY=… and HTTP_PROXY=… on stdout once listening; stops on SIGINT/SIGTERM." +
        "\nTokens come from the Actions runner (permissions: id-token: write) and are refreshed before they expire." +
        "\nAt start the gateway is asked whether it takes the token (GET /_tollgate/whoami); if not, exit 1 with the code.",
    )
    .action(async (options: ProxyOptions) => {
      const log = (line: string) => context.stderr.write(`tollgate proxy: ${line}\n`);
      try {
        const listen = parseListenAddress(options.listen);
        const { gateway, tokens, check } = await prepareClient(clientSettingsOf(options, context.env));
        if (check !== undefined) log(`${check.checked ? "" : "warning: "}${describeTokenCheck(check)}`);
        const proxy = await startLocalProxy({
          gateway,
          tokens,
          listen,
          allowRemote: options.allowRemote === true,
          verbose: options.verbose === true,
          log,
        });
        context.stdout.write(`HTTPS_PROXY=${proxy.url}\nHTTP_PROXY=${proxy.url}\n`);
        await untilStopSignal();
        await proxy.close();
        context.setExitCode(exitCodes.ok);
      } catch (error) {
        log(describeClientError(error));
        context.setExitCode(clientExitCode(error));
      }
    });
}
