import type { Command } from "commander";
import { renderJsonSchema } from "../../config/index.js";

/** `tollgate schema`: prints the configuration's JSON Schema (the committed schema/tollgate.schema.json). */
export function registerSchema(program: Command, setExitCode: (code: number) => void): void {
  program
    .command("schema")
    .description("Print the JSON Schema of tollgate.yaml (what schema/tollgate.schema.json holds).")
    .action(() => {
      process.stdout.write(renderJsonSchema());
      setExitCode(0);
    });
}
