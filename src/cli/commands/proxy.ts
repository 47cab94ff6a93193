import type { Command } from "commander";
import {
  describeClientError,
  parseListenAddress,
  prepareClient,
  startLocalProxy,
} from "../../client/index.js";
import { TollgateError } from "../../errors/index.js";
import type { CommandContext } from "../command-context.js";
import { exitCodes } from "../exit-codes.js";
import { untilStopSignal } from "../load-or-report.js";

interface ProxyOptions {
  gateway: string;
  audience: string;
  listen: string;
  ca?: string;
  allowRemote?: boolean;
  verbose?: boolean;
}

/** `tollgate proxy`: a local forward proxy that adds a fresh OIDC token to every CONNECT and request. */
export function registerProxy(program: Command, context: CommandContext): void {
  program
    .command("proxy")
    .description(
      "Run a local forward proxy that carries CONNECT and plain-HTTP requests through the gateway with a fresh OIDC token.",
    )
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
    .option("--listen <host:port>", "local address; port 0 picks a free one", "127.0.0.1:0")
    .option("--ca <file>", "PEM file of a private CA that signed the gateway's certificate")
    .option(
      "--allow-remote",
      "allow a non-loopback --listen address (anyone reaching it uses this job's identity)",
    )
    .option("--verbose", "log every tunnel and request, not only failures")
    .addHelpText(
      "after",
      "\nPrints HTTPS_PROXY=… and HTTP_PROXY=… on stdout once listening; stops on SIGINT/SIGTERM." +
        "\nTokens come from the Actions runner (permissions: id-token: write) and are refreshed before they expire.",
    )
    .action(async (options: ProxyOptions) => {
      try {
        const listen = parseListenAddress(options.listen);
        const { gateway, tokens } = await prepareClient({
          gatewayUrl: options.gateway,
          audience: options.audience,
          ...(options.ca === undefined ? {} : { caFile: options.ca }),
          env: process.env,
        });
        const proxy = await startLocalProxy({
          gateway,
          tokens,
          listen,
          allowRemote: options.allowRemote === true,
          verbose: options.verbose === true,
        });
        process.stdout.write(`HTTPS_PROXY=${proxy.url}\nHTTP_PROXY=${proxy.url}\n`);
        await untilStopSignal();
        await proxy.close();
        context.setExitCode(exitCodes.ok);
      } catch (error) {
        process.stderr.write(`tollgate proxy: ${describeClientError(error)}\n`);
        context.setExitCode(
          error instanceof TollgateError && error.code === "TG_CONFIG_INVALID"
            ? exitCodes.badConfig
            : exitCodes.failure,
        );
      }
    });
}
