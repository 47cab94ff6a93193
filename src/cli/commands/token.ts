import type { Command } from "commander";
import {
  actionsTokenEndpointFromEnv,
  addMaskCommand,
  describeClientError,
  inGitHubActions,
  requestActionsIdToken,
} from "../../client/index.js";
import type { CommandContext } from "../command-context.js";
import { exitCodes } from "../exit-codes.js";

/** `tollgate token --audience AUD`: one OIDC token from the Actions runner, masked in the job log. */
export function registerToken(program: Command, context: CommandContext): void {
  program
    .command("token")
    .description("Print an OIDC token for the audience, requested from the GitHub Actions runner.")
    .requiredOption(
      "--audience <audience>",
      "the gateway's audience (aud of the token)",
      process.env.TOLLGATE_AUDIENCE,
    )
    .addHelpText(
      "after",
      "\nReads ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN, which the runner sets for jobs with" +
        "\n`permissions: id-token: write`. Inside Actions, `::add-mask::` for the token goes to stderr first (the" +
        "\nrunner reads workflow commands from both streams), so TOKEN=$(tollgate token --audience …) stays masked." +
        "\nPrefer `tollgate proxy` or `tollgate forward`: they keep the token out of the environment entirely.",
    )
    .action(async (options: { audience: string }) => {
      try {
        const token = await requestActionsIdToken({
          ...actionsTokenEndpointFromEnv(process.env),
          audience: options.audience,
        });
        if (inGitHubActions(process.env)) process.stderr.write(addMaskCommand(token));
        process.stdout.write(`${token}\n`);
        context.setExitCode(exitCodes.ok);
      } catch (error) {
        process.stderr.write(`tollgate token: ${describeClientError(error)}\n`);
        context.setExitCode(exitCodes.failure);
      }
    });
}
