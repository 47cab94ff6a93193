import {
  runPipeCommand
} from "./chunk-QF6Z6VOP.mjs";

// action/src/pipe.ts
import { parseArgs } from "node:util";
var usage = "usage: pipe.mjs HOST:PORT --gateway URL --audience AUD [--ca FILE] [--verbose]";
var log = (line) => process.stderr.write(`tollgate pipe: ${line}
`);
function readArguments() {
  try {
    return parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: {
        gateway: { type: "string", default: process.env.TOLLGATE_GATEWAY ?? "" },
        audience: { type: "string", default: process.env.TOLLGATE_AUDIENCE ?? "" },
        ca: { type: "string" },
        verbose: { type: "boolean", default: false }
      }
    });
  } catch (error) {
    log(`${error.message} (${usage})`);
    return void 0;
  }
}
async function main() {
  const parsed = readArguments();
  if (parsed === void 0) return 2;
  if (parsed.positionals.length !== 1) {
    log(`one HOST:PORT is needed (${usage})`);
    return 2;
  }
  return runPipeCommand({
    target: parsed.positionals[0],
    settings: {
      gatewayUrl: parsed.values.gateway,
      audience: parsed.values.audience,
      ...parsed.values.ca === void 0 ? {} : { caFile: parsed.values.ca },
      env: process.env
    },
    input: process.stdin,
    output: process.stdout,
    log,
    verbose: parsed.values.verbose
  });
}
process.exitCode = await main();
