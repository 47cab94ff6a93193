import type { DaemonConfig } from "./daemon-protocol.js";
import { runDaemon } from "./run-daemon.js";

// Entry point of action/dist/daemon.mjs, started detached by the main step.
await runDaemon(JSON.parse(process.argv[2] ?? "{}") as DaemonConfig, process.env);
