// Bundles the action (action/src, which uses src/client) into action/dist with esbuild, so the runner
// runs it without `npm install`. The bundle is committed; test/client/action-bundle.test.ts fails when
// it is stale. Usage: `npm run build:action` (or `node action/build.mjs [OUTDIR]`).
import { rm } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Writes main.mjs, post.mjs, daemon.mjs, pipe.mjs and their shared chunks into `outdir` (emptied first). */
export async function buildAction(outdir = resolve(root, "action/dist")) {
  await rm(outdir, { recursive: true, force: true });
  await build({
    // Paths in the bundle's comments are relative to this directory: the same from any cwd.
    absWorkingDir: root,
    entryPoints: {
      main: "action/src/main.ts",
      post: "action/src/post.ts",
      daemon: "action/src/daemon.ts",
      pipe: "action/src/pipe.ts",
    },
    outdir,
    bundle: true,
    platform: "node",
    target: "node24",
    format: "esm",
    splitting: true,
    chunkNames: "chunk-[hash]",
    outExtension: { ".js": ".mjs" },
    legalComments: "eof",
    logLevel: "warning",
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await buildAction(process.argv[2] === undefined ? undefined : resolve(process.argv[2]));
}
