import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const script = new URL("../../scripts/check-import-cycles.mjs", import.meta.url).pathname;

/** Runs the checker on `dir`; resolves with its exit code and output. */
async function check(dir?: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [script, ...(dir ? [dir] : [])]);
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

describe("the import-cycle check of npm run lint", () => {
  let tree: string;
  beforeAll(async () => {
    tree = await mkdtemp(join(tmpdir(), "tollgate-cycles-"));
  });
  afterAll(() => rm(tree, { recursive: true, force: true }));

  async function files(contents: Record<string, string>): Promise<string> {
    const dir = await mkdtemp(join(tree, "src-"));
    for (const [path, text] of Object.entries(contents)) {
      await mkdir(join(dir, path, ".."), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    return dir;
  }

  it("passes on src/ as it is", async () => {
    const { code, output } = await check();
    expect(output).toMatch(/^no import cycles/);
    expect(code).toBe(0);
  });

  it("names two folders that import each other, type-only imports included, with the imports", async () => {
    const dir = await files({
      "broker/feature.ts": 'import type { Contract } from "../server/contract.js";\nexport const x = 1;\n',
      "server/contract.ts": 'import { x } from "../broker/feature.js";\nexport type Contract = typeof x;\n',
    });
    const { code, output } = await check(dir);
    expect(code).toBe(1);
    expect(output).toContain("folders import each other: broker ↔ server");
    expect(output).toContain("broker/feature.ts → server/contract.ts");
  });

  it("names a longer loop of folders, and a loop of files inside one folder", async () => {
    const dir = await files({
      "a/one.ts": 'export { b } from "../b/two.js";\n',
      "b/two.ts": 'import "../c/three.js";\nexport const b = 2;\n',
      "c/three.ts": 'import "../a/one.js";\n',
      "d/left.ts": 'import "./right.js";\n',
      "d/right.ts": 'import "./left.js";\n',
    });
    const { code, output } = await check(dir);
    expect(code).toBe(1);
    expect(output).toContain("folders import each other: a ↔ b ↔ c");
    expect(output).toContain("files import each other: d/left.ts → d/right.ts");
  });

  it("the twin: imports that point one way pass", async () => {
    const dir = await files({
      "server/gateway.ts": 'import { feature } from "../broker/feature.js";\nexport const g = feature;\n',
      "broker/feature.ts": 'import { lib } from "../lib/util.js";\nexport const feature = lib;\n',
      "lib/util.ts": "export const lib = 1;\n",
    });
    expect(await check(dir)).toMatchObject({ code: 0 });
  });
});
