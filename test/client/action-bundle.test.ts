import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { root } from "./client-harness.js";

// The runner executes the committed bundle, not the TypeScript: it must be exactly what the sources build.
const outdir = await mkdtemp(join(tmpdir(), "tollgate-action-build-"));

afterAll(async () => {
  await rm(outdir, { recursive: true, force: true });
});

async function filesOf(dir: string): Promise<Map<string, string>> {
  const names = (await readdir(dir)).sort();
  return new Map(
    await Promise.all(names.map(async (name) => [name, await readFile(join(dir, name), "utf8")] as const)),
  );
}

describe("action/dist", () => {
  it("is what `npm run build:action` builds from the current sources (rebuild and commit it when this fails)", async () => {
    const { buildAction } = (await import(join(root, "action/build.mjs"))) as {
      buildAction(outdir: string): Promise<void>;
    };
    await buildAction(outdir);
    const built = await filesOf(outdir);
    const committed = await filesOf(join(root, "action/dist"));
    expect([...committed.keys()]).toEqual([...built.keys()]);
    for (const [name, text] of built) expect(committed.get(name), name).toBe(text);
  });

  it("needs nothing but Node's own modules at run time (no npm install on the runner)", async () => {
    const imports = [...(await filesOf(join(root, "action/dist"))).values()].flatMap((text) =>
      [...text.matchAll(/\bfrom\s+"([^"]+)"|\bimport\(\s*"([^"]+)"\s*\)|\brequire\(\s*"([^"]+)"\s*\)/g)].map(
        (match) => match[1] ?? match[2] ?? match[3]!,
      ),
    );
    expect(imports.length).toBeGreaterThan(0);
    for (const specifier of imports) expect(specifier).toMatch(/^(node:|\.\/chunk-)/);
  });

  it("action.yml runs the bundle on node24 with a post step, and declares the inputs the code reads", async () => {
    const action = parse(await readFile(join(root, "action.yml"), "utf8")) as {
      runs: { using: string; main: string; post: string };
      inputs: Record<string, unknown>;
    };
    expect(action.runs).toEqual({
      using: "node24",
      main: "action/dist/main.mjs",
      post: "action/dist/post.mjs",
    });
    const source = await readFile(join(root, "action/src/inputs.ts"), "utf8");
    const read = [...source.matchAll(/Input\(env, "([a-z-]+)"/g)].map((match) => match[1]);
    expect(new Set(read)).toEqual(new Set(Object.keys(action.inputs)));
  });
});
