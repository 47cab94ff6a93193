import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { configJsonSchema, renderJsonSchema } from "../../src/config/index.js";

describe("schema/tollgate.schema.json", () => {
  it("equals the schema generated from the validator (regenerate with `npm run schema`)", async () => {
    const committed = await readFile(new URL("../../schema/tollgate.schema.json", import.meta.url), "utf8");
    expect(
      committed === renderJsonSchema(),
      "schema/tollgate.schema.json is out of date: run `npm run schema` and commit the result",
    ).toBe(true);
  });

  it("describes every property, with the contract's key names", () => {
    const schema = configJsonSchema() as {
      $id: string;
      title: string;
      properties: Record<string, { description?: string }>;
      additionalProperties: boolean;
    };
    expect(schema.$id).toBe("urn:tollgate:config");
    expect(schema.title).toBe("tollgate.yaml");
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toEqual([
      "listen",
      "issuers",
      "policies",
      "routes",
      "tunnels",
      "broker",
      "connectors",
      "audit",
      "store",
      "oidc",
      "server",
    ]);
    const undescribed: string[] = [];
    visit(schema, "", (path, node) => {
      if (node.properties === undefined) return;
      for (const [key, child] of Object.entries(node.properties as Record<string, Record<string, unknown>>)) {
        if (typeof child.description !== "string" && child.$ref === undefined)
          undescribed.push(`${path}.${key}`);
      }
    });
    expect(undescribed).toEqual([]);
  });
});

function visit(node: unknown, path: string, fn: (path: string, node: Record<string, unknown>) => void): void {
  if (typeof node !== "object" || node === null) return;
  fn(path, node as Record<string, unknown>);
  for (const [key, child] of Object.entries(node)) visit(child, `${path}.${key}`, fn);
}
