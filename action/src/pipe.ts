import { parseArgs } from "node:util";
import { runPipeCommand } from "../../src/client/index.js";

// Entry point of action/dist/pipe.mjs: `tollgate pipe` for later steps of the job, which have the runner's
// node and this bundle but no tollgate installed. The main step's `ssh-proxy-command` output runs it:
//   node …/pipe.mjs %h:%p --gateway URL --audience AUD [--ca FILE]
// Options are read with node's own parseArgs (the bundle carries no command-line library).
const usage = "usage: pipe.mjs HOST:PORT --gateway URL --audience AUD [--ca FILE] [--verbose]";
const log = (line: string) => process.stderr.write(`tollgate pipe: ${line}\n`);

/** The arguments, or `undefined` (after saying why) when they cannot be read. */
function readArguments() {
  try {
    return parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: {
        gateway: { type: "string", default: process.env.TOLLGATE_GATEWAY ?? "" },
        audience: { type: "string", default: process.env.TOLLGATE_AUDIENCE ?? "" },
        ca: { type: "string" },
        verbose: { type: "boolean", default: false },
      },
    });
  } catch (error) {
    log(`${(error as Error).message} (${usage})`);
    return undefined;
  }
}

async function main(): Promise<number> {
  const parsed = readArguments();
  if (parsed === undefined) return 2;
  if (parsed.positionals.length !== 1) {
    log(`one HOST:PORT is needed (${usage})`);
    return 2;
  }
  return runPipeCommand({
    target: parsed.positionals[0]!,
    settings: {
      gatewayUrl: parsed.values.gateway,
      audience: parsed.values.audience,
      ...(parsed.values.ca === undefined ? {} : { caFile: parsed.values.ca }),
      env: process.env,
    },
    input: process.stdin,
    output: process.stdout,
    log,
    verbose: parsed.values.verbose,
  });
}

process.exitCode = await main();
