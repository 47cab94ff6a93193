// Garbage collection of the gateway under load: how much each young-generation collection promotes and
// how often full collections run. A gateway whose per-request objects die young promotes a few dozen KB
// per scavenge; one where they survive (something old keeps pointing at them) promotes megabytes and
// needs a mark-compact every second or two, which costs CPU on every core. That failure is silent in
// every functional test, so it is measured here (see "Garbage collection" in bench/README.md).
//
//   npm run build && bash bench/setup.sh && node bench/gateway-gc.mjs [--rounds N] [--seconds N]
//
// Each round starts a fresh upstream and tollgate target (`targets/tollgate-gateway.mjs`, as the
// throughput benchmark does) with V8's `--trace-gc-nvp`, warms it up with wrk for 3 s, then loads it
// with wrk -t2 -c32 for `--seconds` and reads the collections V8 reported in that window. Rounds use fresh
// processes because whether objects get promoted en masse can depend on where the first collections fell.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { markdownTable, median, runWrk } from "./lib/measure.mjs";
import { readReadyLine, startProcess, stopProcess } from "./lib/processes.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const { values: flags } = parseArgs({
  options: { rounds: { type: "string", default: "3" }, seconds: { type: "string", default: "6" } },
});
const rounds = Number(flags.rounds);
const seconds = Number(flags.seconds);
if (!(rounds >= 1 && rounds <= 20) || !(seconds >= 1 && seconds <= 60)) {
  throw new Error("--rounds must be 1–20 and --seconds 1–60");
}

/** One `--trace-gc-nvp` line as key=value pairs (V8 prints `[pid:isolate] N ms: pause=… gc=s …`). */
function parseNvp(line) {
  const fields = {};
  for (const part of line.split(" ")) {
    const equals = part.indexOf("=");
    if (equals > 0) fields[part.slice(0, equals)] = part.slice(equals + 1);
  }
  return fields;
}

async function round(index) {
  const workDir = mkdtempSync(join(tmpdir(), "tollgate-gc-"));
  const upstream = startProcess(process.execPath, [join(benchDir, "targets", "upstream.mjs")]);
  let gateway;
  try {
    const upstreamReady = await readReadyLine(upstream);
    gateway = startProcess(process.execPath, [
      "--trace-gc-nvp",
      join(benchDir, "targets", "tollgate-gateway.mjs"),
      JSON.stringify({
        upstream: `http://127.0.0.1:${upstreamReady.port}`,
        auditPath: join(workDir, "audit.jsonl"),
      }),
    ]);
    const collections = [];
    let recording = false;
    let pending = "";
    gateway.child.stdout.on("data", (chunk) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) if (recording && line.includes(" gc=")) collections.push(parseNvp(line));
    });
    const ready = await readReadyLine(gateway, 20_000);
    const url = `http://127.0.0.1:${ready.port}/bench/hello`;
    const load = { url, threads: 2, connections: 32, headers: ready.headers ?? {} };
    await runWrk({ ...load, seconds: 3 });
    recording = true;
    const measured = await runWrk({ ...load, seconds });
    recording = false;
    const scavenges = collections.filter((entry) => entry.gc === "s");
    const full = collections.filter((entry) => entry.gc === "mc" || entry.gc === "ms");
    const requests = measured.requests;
    const result = {
      round: index + 1,
      requests,
      scavengesPer10k: (scavenges.length * 10_000) / requests,
      promotedKiBPerScavenge: median(scavenges.map((entry) => Number(entry.promoted ?? 0) / 1024)),
      scavengePauseMs: median(scavenges.map((entry) => Number(entry.pause ?? 0))),
      fullGcsPer100k: (full.length * 100_000) / requests,
    };
    console.log(
      `round ${result.round}: ${requests} requests, ${scavenges.length} scavenges ` +
        `(median ${result.promotedKiBPerScavenge.toFixed(0)} KiB promoted, ${result.scavengePauseMs.toFixed(2)} ms), ` +
        `${full.length} full collections`,
    );
    return result;
  } finally {
    await stopProcess(gateway);
    await stopProcess(upstream);
    rmSync(workDir, { recursive: true, force: true });
  }
}

const results = [];
for (let index = 0; index < rounds; index++) results.push(await round(index));
console.log(`\n### Gateway garbage collection under load (${new Date().toISOString()})\n`);
console.log(
  `Command: \`node bench/gateway-gc.mjs --rounds ${rounds} --seconds ${seconds}\`; wrk -t2 -c32.\n`,
);
console.log(
  markdownTable(
    [
      "round",
      "requests",
      "scavenges / 10k req",
      "promoted KiB / scavenge (median)",
      "scavenge pause ms (median)",
      "full GCs / 100k req",
    ],
    results.map((r) => [
      r.round,
      r.requests,
      r.scavengesPer10k.toFixed(1),
      r.promotedKiBPerScavenge.toFixed(0),
      r.scavengePauseMs.toFixed(2),
      r.fullGcsPer100k.toFixed(1),
    ]),
  ),
);
