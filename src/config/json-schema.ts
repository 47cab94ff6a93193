import { z } from "zod";
import { configSchema } from "./schema.js";

/** `$id` of the published schema; stable so editors and tools can cache it. */
export const configSchemaId = "urn:tollgate:config";

/**
 * The JSON Schema of `tollgate.yaml`, generated from the same zod schema that validates it (so they cannot
 * drift). `io: "input"` describes what users write, before any defaults.
 *
 * @example
 * const schema = configJsonSchema(); // { $schema, $id, title, type: "object", properties: { listen, … } }
 */
export function configJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(configSchema, { io: "input", target: "draft-2020-12" }) as Record<
    string,
    unknown
  >;
  const { $schema, ...rest } = generated;
  return { $schema, $id: configSchemaId, title: "tollgate.yaml", ...rest };
}

/**
 * The text of `schema/tollgate.schema.json`: {@link configJsonSchema} as indented JSON with a trailing
 * newline. `tollgate schema` prints it; `npm run schema` writes it to the committed file.
 *
 * @example
 * process.stdout.write(renderJsonSchema());
 */
export function renderJsonSchema(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
