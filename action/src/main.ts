import { fileURLToPath } from "node:url";
import { runMain } from "./run-main.js";

// Entry point of action/dist/main.mjs; the background process's script is bundled beside it.
process.exitCode = await runMain({
  daemonScript: fileURLToPath(new URL("./daemon.mjs", import.meta.url)),
  env: process.env,
});
