import type { Command } from "commander";
import { renderJsonSchema } from "../../config/index.js";
import type { CommandContext } from "../command-context.js";

/** `tollgate schema`: prints the configuration's JSON Schema (the committed schema/tollgate.schema.json). */
export function registerSchema(program: Command, context: CommandContext): void {
  program
    .command("schema")
    .description("Print the JSON Schema of tollgate.yaml (what schema/tollgate.schema.json holds).")
    .action(() => {
      context.stdout.write(renderJsonSchema());
      context.setExitCode(0);
    });
}
