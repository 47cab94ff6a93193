import { Writable } from "node:stream";
import type { Command } from "commander";
import { runPipeCommand } from "../../client/index.js";
import type { CommandContext } from "../command-context.js";
import { UsageError } from "../exit-codes.js";
import { addGatewayOptions, clientSettingsOf, type GatewayOptions } from "./client-options.js";

interface PipeCommandOptions extends GatewayOptions {
  verbose?: boolean;
}

/** `tollgate pipe HOST:PORT`: one tunnel on standard input and output, for ssh's ProxyCommand. */
export function registerPipe(program: Command, context: CommandContext): void {
  const command = program
    .command("pipe")
    .description(
      "Carry standard input and output through one CONNECT tunnel of the gateway (for ssh's ProxyCommand).",
    )
    .argument("<destination>", "HOST:PORT (ssh's %h:%p; an IPv6 address with or without brackets)");
  addGatewayOptions(command, context.env)
    .option("--verbose", "log the tunnel's opening on stderr, not only failures")
    .addHelpText(
      "after",
      "\nExample: ssh -o ProxyCommand='tollgate pipe %h:%p --gateway https://gw.example.com --audience gw.example.com' git.internal" +
        "\nNo local port is opened, and ssh records the host key under the real host name." +
        "\nStandard output carries only the destination's bytes; refusals go to stderr with the gateway's code and" +
        "\nrequest_id. Exit 0 when the tunnel closed, 1 when the gateway refused or could not be reached, 2 for bad settings.",
    )
    .action(async (target: string, options: PipeCommandOptions) => {
      const output = context.stdout;
      // Bytes, not text: the process's stdout is a stream; a test passes one of its own.
      if (!(output instanceof Writable)) throw new UsageError("pipe needs standard output as a byte stream");
      context.setExitCode(
        await runPipeCommand({
          target,
          settings: clientSettingsOf(options, context.env),
          input: context.stdin ?? process.stdin,
          output,
          log: (line) => context.stderr.write(`tollgate pipe: ${line}\n`),
          verbose: options.verbose === true,
        }),
      );
    });
}
