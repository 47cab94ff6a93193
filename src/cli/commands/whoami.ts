import type { Command } from "commander";
import { describeClientError, prepareClient } from "../../client/index.js";
import type { CommandContext } from "../command-context.js";
import { exitCodes } from "../exit-codes.js";
import {
  addGatewayOptions,
  clientExitCode,
  clientSettingsOf,
  type GatewayOptions,
} from "./client-options.js";

/** `tollgate whoami`: whether the gateway takes this job's token, and as whom. */
export function registerWhoami(program: Command, context: CommandContext): void {
  const command = program
    .command("whoami")
    .description(
      "Ask the gateway whether it takes this job's OIDC token, and print the identity it verified.",
    );
  addGatewayOptions(command, context.env)
    .addHelpText(
      "after",
      "\nPrints the gateway's answer as JSON on stdout: {issuer, subject, repository, expires_at}." +
        "\nExit 0 when the gateway takes the token; 1 when it refuses it (the code and the fix on stderr), cannot" +
        "\nbe reached or cannot say (a gateway older than GET /_tollgate/whoami); 2 for bad settings." +
        "\nA token the gateway takes may still be refused by a route's or tunnel's policies: see tollgate explain.",
    )
    .action(async (options: GatewayOptions) => {
      const log = (line: string) => context.stderr.write(`tollgate whoami: ${line}\n`);
      try {
        const { check } = await prepareClient(clientSettingsOf(options, context.env));
        if (check === undefined || !check.checked) {
          log(
            check === undefined ? "the gateway was not asked" : `the gateway could not say: ${check.reason}`,
          );
          context.setExitCode(exitCodes.failure);
          return;
        }
        const { identity } = check;
        context.stdout.write(
          `${JSON.stringify({
            issuer: identity.issuer,
            subject: identity.subject,
            ...(identity.repository === undefined ? {} : { repository: identity.repository }),
            expires_at: identity.expiresAt,
          })}\n`,
        );
        context.setExitCode(exitCodes.ok);
      } catch (error) {
        log(describeClientError(error));
        context.setExitCode(clientExitCode(error));
      }
    });
}
