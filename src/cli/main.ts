import { Command, CommanderError } from "commander";
import { type CliIo, type CommandContext, processIo } from "./command-context.js";
import { registerCheck } from "./commands/check.js";
import { registerConnector } from "./commands/connector.js";
import { registerDev } from "./commands/dev.js";
import { registerExplain } from "./commands/explain.js";
import { registerForward } from "./commands/forward.js";
import { registerPipe } from "./commands/pipe.js";
import { registerProxy } from "./commands/proxy.js";
import { registerSchema } from "./commands/schema.js";
import { registerServe } from "./commands/serve.js";
import { registerToken } from "./commands/token.js";
import { registerWhoami } from "./commands/whoami.js";
import { UsageError } from "./exit-codes.js";

/**
 * Runs the tollgate command line and resolves with the process exit code. Commands are declared in
 * one registry (below); each command's action resolves with its own exit code. `io` is the process's
 * streams and environment unless a test passes its own.
 */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let exitCode = 0;
  const program = new Command()
    .name("tollgate")
    .description(
      "OIDC edge gateway for CI workflows: verify short-lived tokens, apply a trust policy, and proxy to private services.",
    )
    .version(await packageVersion())
    .showHelpAfterError()
    .exitOverride()
    // Set before the commands are added: each inherits it, so help and usage errors go to `io` too.
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });
  const context: CommandContext = {
    ...io,
    setExitCode: (code: number) => {
      exitCode = code;
    },
  };
  registerServe(program, context);
  registerCheck(program, context);
  registerExplain(program, context);
  registerDev(program, context);
  registerSchema(program, context);
  registerToken(program, context);
  registerProxy(program, context);
  registerForward(program, context);
  registerConnector(program, context);
  registerPipe(program, context);
  registerWhoami(program, context);

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit through here with code 0; usage mistakes with 1 → our 2.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof UsageError) {
      io.stderr.write(`tollgate: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  return exitCode;
}

async function packageVersion(): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  const text = await readFile(new URL("../../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}
