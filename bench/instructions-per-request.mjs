// Instructions per request, counted by valgrind's callgrind on each target's main thread. Wall-clock CPU
// per request on this shared 2-core machine moves by ±20 % from round to round, more than most single
// changes to the request path; an instruction count does not depend on the neighbours. Use it to compare
// two builds of the JavaScript path, then confirm with gateway-throughput.mjs: it is not a time.
//
// What it cannot see, and where it misleads:
//   - kernel work (the syscalls are a third of a proxied request's CPU here) and cache misses;
//   - instruction weights: valgrind runs crypto and some builtins in slow generic code, so randomUUID and
//     the audit line encoder count far more instructions than their share of the time;
//   - a full garbage collection that lands in the measured window: each target runs with
//     --single-threaded-gc, so all collector work is on the counted thread, and one mark-compact there
//     adds 10–35 % to the count. So each target gets up to three windows in the same warm process, and the
//     first without a full collection (counted from --trace-gc) is reported; the table says which, and how
//     many landed in it. Compare only rows with none. Without one, repeated runs agreed within 0.3–2 % for
//     the forwarder and 1–4 % for tollgate (whose JIT, under valgrind, was still settling after 3,000
//     requests: hence the 6,000 of warm-up). Differences smaller than that need several runs.
//
// Each target is started under callgrind, gets `--warmup` requests (the JIT settles), then its counters are
// zeroed, `--requests` requests are sent over 4 keep-alive connections, and the counters are dumped. Targets
// run two at a time (callgrind is single-threaded; the machine has 2 cores). 2–4 minutes per pair.
//
//   npm run build && node bench/instructions-per-request.mjs [--targets tollgate,tollgate-forwarder]
//        [--requests 3000] [--warmup 6000] [--tollgate-root DIR]
// For an A/B, add the target tollgate-b: the tollgate target of DIR, another checkout after `npm run build`.
//
// Needs valgrind (Debian package `valgrind`; bench/setup.sh installs it). All traffic stays on 127.0.0.1.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { Pool } from "undici";
import { expectBody64, fixed, machineFacts, markdownTable } from "./lib/measure.mjs";
import { readReadyLine, startProcess, stopProcess } from "./lib/processes.mjs";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const { values: flags } = parseArgs({
  options: {
    targets: { type: "string", default: "tollgate,tollgate-forwarder" },
    requests: { type: "string", default: "3000" },
    warmup: { type: "string", default: "6000" },
    "tollgate-root": { type: "string" },
  },
});
const requests = Number(flags.requests);
const warmup = Number(flags.warmup);
if (!(requests > 0 && requests <= 100_000 && warmup >= 0 && warmup <= 100_000)) {
  throw new Error("--requests must be 1–100000 and --warmup 0–100000");
}
const names = flags.targets.split(",").filter(Boolean);
const work = mkdtempSync(join(tmpdir(), "tollgate-instructions-"));

/** The command line of each target, given its upstream's origin. */
function targetArgs(name, upstream) {
  const tollgateRoot = resolve(flags["tollgate-root"] ?? join(here, ".."));
  if (name === "tollgate" || name === "tollgate-b") {
    const root = name === "tollgate" ? join(here, "..") : tollgateRoot;
    return [
      join(root, "bench/targets/tollgate-gateway.mjs"),
      // 1 s: batches are bounded by size (64 KiB) as at full load, not by the 20 ms timer, which at
      // callgrind's few hundred requests per second would write every few lines.
      JSON.stringify({ upstream, auditPath: join(work, `${name}.jsonl`), flushInterval: "1s" }),
    ];
  }
  if (name === "tollgate-forwarder") return [join(here, "targets/tollgate-forwarder.mjs"), upstream];
  if (name === "plain-undici") return [join(here, "targets/plain-undici-proxy.mjs"), upstream];
  throw new Error(`unknown target ${name} (tollgate, tollgate-b, tollgate-forwarder, plain-undici)`);
}

/** Sends exactly `count` requests over 4 keep-alive connections; every answer must be a 200. */
async function send(origin, headers, count) {
  const pool = new Pool(origin, { connections: 4, pipelining: 1, keepAliveTimeout: 60_000 });
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      const answer = await pool.request({ method: "GET", path: "/bench/x", headers });
      await answer.body.arrayBuffer();
      if (answer.statusCode !== 200) failed += 1;
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  await pool.close();
  if (failed > 0) throw new Error(`${failed} of ${count} requests failed`);
}

async function measure(name) {
  const upstreamProcess = startProcess("node", [join(here, "targets/upstream.mjs")]);
  const upstream = `http://127.0.0.1:${(await readReadyLine(upstreamProcess)).port}`;
  const outPrefix = join(work, `callgrind.${name}`);
  const target = startProcess("valgrind", [
    "--tool=callgrind",
    "--separate-threads=yes",
    `--callgrind-out-file=${outPrefix}.%p`,
    "node",
    "--single-threaded-gc",
    "--trace-gc",
    ...targetArgs(name, upstream),
  ]);
  try {
    const ready = await readReadyLine(target, 240_000);
    // --trace-gc prints one line per collection on stdout; the full ones are what moves the count.
    // A chunk may end inside the word: the last 11 characters (one short of it) are searched again with
    // the next chunk, which can never count a whole word twice.
    const word = "Mark-Compact";
    let fullCollections = 0;
    let carried = "";
    target.child.stdout.on("data", (chunk) => {
      const text = carried + String(chunk);
      fullCollections += text.split(word).length - 1;
      carried = text.slice(-(word.length - 1));
    });
    const origin = `http://127.0.0.1:${ready.port}`;
    const headers = /** @type {Record<string, string>} */ (ready.headers ?? {});
    await expectBody64(`${origin}/bench/x`, headers, 60_000);
    await send(origin, headers, warmup);
    // valgrind runs the tool in the launched process itself, so the child's pid is callgrind's.
    const pid = String(target.child.pid);
    // Up to three windows in the same warm process: the first without a full collection is the answer.
    let result;
    for (let window = 1; window <= 3; window++) {
      await run("callgrind_control", ["--zero", pid]);
      const fullBefore = fullCollections;
      await send(origin, headers, requests);
      await run("callgrind_control", ["--dump", pid]);
      const fullInWindow = fullCollections - fullBefore;
      // Thread 1 is the main (JavaScript) thread; its part of dump n is `<prefix>.<pid>.<n>-01`.
      const mainThread = `${outPrefix}.${pid}.${window}-01`;
      for (let waited = 0; !existsSync(mainThread) && waited < 10_000; waited += 100) {
        await new Promise((done) => setTimeout(done, 100));
      }
      const summary = readFileSync(mainThread, "utf8").match(/^summary: (\d+)/m);
      if (!summary) throw new Error(`no summary in ${mainThread}`);
      result = { name, perRequest: Number(summary[1]) / requests, fullInWindow, window };
      if (fullInWindow === 0) break;
    }
    return result;
  } finally {
    await stopProcess(target);
    await stopProcess(upstreamProcess);
  }
}

try {
  await run("callgrind_control", ["--version"]).catch(() => {
    throw new Error("callgrind_control not found: install valgrind (bash bench/setup.sh)");
  });
  const results = [];
  for (let i = 0; i < names.length; i += 2) {
    results.push(...(await Promise.all(names.slice(i, i + 2).map(measure))));
  }
  const reference = results[0];
  console.log(`machine: ${JSON.stringify(machineFacts())}`);
  console.log(`${requests} requests after ${warmup} of warm-up, main thread, --single-threaded-gc\n`);
  console.log(
    markdownTable(
      [
        "target",
        "instructions per request",
        `× ${reference.name}`,
        "full collections in the window",
        "window",
      ],
      results.map((result) => [
        result.name,
        String(Math.round(result.perRequest)),
        fixed(result.perRequest / reference.perRequest, 3),
        String(result.fullInWindow),
        String(result.window),
      ]),
    ),
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
