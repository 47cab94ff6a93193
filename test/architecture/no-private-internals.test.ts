import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * tollgate reads no private state of Node or of a library: a Node or dependency upgrade must not be able
 * to change what tollgate does silently (issue 17). Its own code has no `_name` properties (it uses
 * TypeScript's `private`), so any `._name` access reaches into someone else's internals. The other
 * patterns are the ways to find such state without naming it.
 */
const privateAccess: readonly { readonly pattern: RegExp; readonly why: string }[] = [
  { pattern: /\.\s*_[A-Za-z]\w*/, why: "a `_`-prefixed (private) property of another module's object" },
  { pattern: /\bgetOwnPropertySymbols\b/, why: "finds private symbol-keyed fields by probing" },
  { pattern: /\b(?:process\.binding|internalBinding)\b/, why: "Node's internal bindings" },
  { pattern: /\buseUserBuffer\b/, why: "a method of a Node handle (private)" },
  { pattern: /from\s+["'](?:node:)?internal\//, why: "a Node-internal module" },
];

/** Lines of `text` (comments excluded) that reach into private internals, as `line: why`. */
function findPrivateAccess(text: string): string[] {
  const found: string[] = [];
  const lines = text.split("\n");
  for (const [index, line] of lines.entries()) {
    const code = line.replace(/\/\/.*$/, "");
    if (/^\s*\*|^\s*\/\*/.test(code)) continue;
    for (const { pattern, why } of privateAccess) {
      if (pattern.test(code)) found.push(`${index + 1}: ${why}: ${line.trim()}`);
    }
  }
  return found;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => join(entry.parentPath, entry.name));
}

describe("no access to Node or library private internals in src/", () => {
  it("src/ has none", async () => {
    const root = new URL("../../src", import.meta.url).pathname;
    const findings: string[] = [];
    for (const file of await sourceFiles(root)) {
      for (const finding of findPrivateAccess(await readFile(file, "utf8"))) {
        findings.push(`${relative(root, file)}:${finding}`);
      }
    }
    expect(findings).toEqual([]);
  });

  it("catches what the removed tunnel read switch and zod walk did", () => {
    expect(findPrivateAccess("const handle = socket._handle;")).toHaveLength(1);
    expect(findPrivateAccess("(handle.useUserBuffer as F).call(handle, first);")).toHaveLength(1);
    expect(findPrivateAccess("const keys = Object.getOwnPropertySymbols(probe);")).toHaveLength(1);
    expect(findPrivateAccess("return (schema as unknown as X)._zod.def;")).toHaveLength(1);
    expect(findPrivateAccess('import { kBuffer } from "internal/net";')).toHaveLength(1);
  });

  it("passes public API, private TypeScript members and comments", () => {
    expect(findPrivateAccess("return schema.def as unknown as SchemaDef;")).toEqual([]);
    expect(findPrivateAccess("connect({ ...options, onread: relay.onread })")).toEqual([]);
    expect(findPrivateAccess("private readonly held_bytes = 0; const x = this.held_bytes;")).toEqual([]);
    expect(findPrivateAccess("// it used socket._handle once")).toEqual([]);
    expect(findPrivateAccess(" * calls `_handle.useUserBuffer` (removed)")).toEqual([]);
  });
});
