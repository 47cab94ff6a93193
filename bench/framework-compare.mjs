// node:http or Fastify for the gateway's server? The same two handlers under both frameworks, measured side
// by side: a trivial 64-byte answer (the framework's fixed cost per request) and a proxy to the upstream
// with the same undici code (the gateway's shape). Rounds alternate between the four servers, rotating the
// order, and the quoted ratio is the median of per-round ratios.
//
//   node bench/framework-compare.mjs [--quick] [--rounds N] [--seconds N] [--connections N] [--threads N]
//                                    [--quiet-wait S]
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { waitForQuiet } from "./lib/machine-load.mjs";
import { expectBody64, fixed, machineFacts, markdownTable, median, rotate, runWrk } from "./lib/measure.mjs";
import { cpuTimeMs, readReadyLine, startProcess, stopProcess } from "./lib/processes.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    seconds: { type: "string" },
    connections: { type: "string" },
    threads: { type: "string" },
    "quiet-wait": { type: "string" },
  },
});

function setting(flag, envName, fallback, allowZero = false) {
  const raw = flags[flag] ?? process.env[envName];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new Error(`--${flag} must be an integer ≥ ${allowZero ? 0 : 1}`);
  }
  return value;
}

const settings = {
  rounds: setting("rounds", "BENCH_ROUNDS", flags.quick ? 3 : 5),
  seconds: setting("seconds", "BENCH_SECONDS", flags.quick ? 2 : 5),
  connections: setting("connections", "BENCH_CONNECTIONS", 32),
  threads: setting("threads", "BENCH_THREADS", 2),
  warmupSeconds: flags.quick ? 1 : 2,
  // Before each round, wait up to this long for the shared machine to be quiet (0: do not wait).
  quietWaitSeconds: setting("quiet-wait", "BENCH_QUIET_WAIT", flags.quick ? 1 : 5, true),
};

const variants = [
  { framework: "node", handler: "trivial" },
  { framework: "fastify", handler: "trivial" },
  { framework: "node", handler: "proxy" },
  { framework: "fastify", handler: "proxy" },
];
const key = (v) => `${v.framework}/${v.handler}`;

async function start(script, args) {
  const started = startProcess(process.execPath, [join(benchDir, "targets", script), ...args]);
  return { started, ready: await readReadyLine(started, 20_000) };
}

const processes = [];
try {
  const upstream = await start("upstream.mjs", []);
  processes.push(upstream.started);
  const upstreamOrigin = `http://127.0.0.1:${upstream.ready.port}`;
  const urls = new Map();
  const pids = new Map();
  for (const variant of variants) {
    const server = await start("framework-server.mjs", [
      JSON.stringify({ ...variant, upstream: upstreamOrigin }),
    ]);
    processes.push(server.started);
    const url = `http://127.0.0.1:${server.ready.port}/bench/hello`;
    await expectBody64(url);
    urls.set(key(variant), url);
    pids.set(key(variant), server.started.child.pid);
  }

  const facts = machineFacts();
  process.stderr.write(`machine: ${facts.nproc} cores, ${facts.cpu}, node ${facts.node}\n`);
  const wrkBase = { threads: settings.threads, connections: settings.connections };
  for (const url of urls.values()) await runWrk({ ...wrkBase, url, seconds: settings.warmupSeconds });

  const results = new Map(variants.map((v) => [key(v), []]));
  for (let round = 0; round < settings.rounds; round += 1) {
    for (const variant of rotate(variants, round)) {
      const machine =
        settings.quietWaitSeconds > 0
          ? await waitForQuiet({ maxWaitMs: settings.quietWaitSeconds * 1000 })
          : { quiet: true, busy: Number.NaN };
      const cpuBefore = cpuTimeMs(pids.get(key(variant)));
      const result = await runWrk({ ...wrkBase, url: urls.get(key(variant)), seconds: settings.seconds });
      result.cpuUsPerRequest = ((cpuTimeMs(pids.get(key(variant))) - cpuBefore) * 1000) / result.requests;
      result.quiet = machine.quiet;
      results.get(key(variant)).push(result);
      const errors = result.non2xx + result.socketErrors;
      process.stderr.write(
        `round ${round + 1}/${settings.rounds} ${key(variant).padEnd(16)} ${fixed(result.rps, 0).padStart(7)} req/s` +
          `  p99 ${fixed(result.p99Ms)} ms  ${fixed(result.cpuUsPerRequest, 1)} µs CPU/req${errors ? `  ERRORS ${errors}` : ""}\n`,
      );
    }
  }

  const rows = ["trivial", "proxy"].map((handler) => {
    const node = results.get(`node/${handler}`);
    const fastify = results.get(`fastify/${handler}`);
    const ratio = median(fastify.map((r, i) => r.rps / node[i].rps));
    const errors = [...node, ...fastify].reduce((sum, r) => sum + r.non2xx + r.socketErrors, 0);
    const busy = [...node, ...fastify].filter((r) => !r.quiet).length;
    return [
      handler,
      fixed(median(node.map((r) => r.rps)), 0),
      fixed(median(fastify.map((r) => r.rps)), 0),
      fixed(ratio),
      fixed(median(node.map((r) => r.p99Ms))),
      fixed(median(fastify.map((r) => r.p99Ms))),
      fixed(median(node.map((r) => r.cpuUsPerRequest)), 1),
      fixed(median(fastify.map((r) => r.cpuUsPerRequest)), 1),
      fixed(median(fastify.map((r, i) => r.cpuUsPerRequest / node[i].cpuUsPerRequest))),
      String(errors),
      `${busy}/${node.length + fastify.length}`,
    ];
  });
  const command = `node bench/framework-compare.mjs ${process.argv.slice(2).join(" ")}`.trim();
  const out = [
    `### node:http vs Fastify (${facts.date})`,
    "",
    `Machine: ${facts.nproc} cores, ${facts.cpu}; node ${facts.node}. Command: \`${command}\``,
    `wrk -t${settings.threads} -c${settings.connections}, ${settings.rounds} rounds × ${settings.seconds} s per server, ` +
      "alternating; ratios are medians of per-round fastify/node:http ratios. CPU is the server process's own " +
      "user + system time per request, which a busy machine disturbs far less than requests/s.",
    "",
    markdownTable(
      [
        "handler",
        "node:http req/s",
        "fastify req/s",
        "fastify / node:http",
        "node:http p99 ms",
        "fastify p99 ms",
        "node:http CPU µs/req",
        "fastify CPU µs/req",
        "fastify / node:http CPU",
        "errors",
        "rounds started busy",
      ],
      rows,
    ),
    "",
  ];
  process.stdout.write(`${out.join("\n")}\n`);
  const resultsDir = join(benchDir, "results");
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(
    join(resultsDir, `framework-compare-${facts.date.replace(/[:.]/g, "-")}.json`),
    `${JSON.stringify({ facts, settings, results: Object.fromEntries(results) }, null, 2)}\n`,
  );
} finally {
  for (const started of processes) await stopProcess(started);
}
