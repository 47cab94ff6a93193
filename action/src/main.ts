import { fileURLToPath } from "node:url";
import { runMain } from "./run-main.js";

// Entry point of action/dist/main.mjs; the background process's script and pipe.mjs are bundled beside it.
process.exitCode = await runMain({
  daemonScript: fileURLToPath(new URL("./daemon.mjs", import.meta.url)),
  pipeScript: fileURLToPath(new URL("./pipe.mjs", import.meta.url)),
  env: process.env,
});
