// Gateway throughput and added latency, side by side with nginx and a plain Node proxy.
//
// Every target proxies the same upstream (a node:http process answering 64-byte bodies), each in its own
// process; the load generator is its own process too. Rounds alternate between targets (rotating the order
// each round) because this machine is small and shared: only figures taken in the same run, close in time,
// are compared, and medians and paired ratios are quoted.
//
//   npm run build && bash bench/setup.sh && node bench/gateway-throughput.mjs [--quick]
//
// Options (flags, or the BENCH_* environment variable in brackets):
//   --quick                 3 rounds of 3 s, fixed-rate rounds of 3 s: a smoke run of about two minutes
//   --rounds N              throughput rounds (BENCH_ROUNDS, default 5)
//   --seconds N             seconds per throughput round (BENCH_SECONDS, default 8)
//   --connections N         wrk connections (BENCH_CONNECTIONS, default 32)
//   --threads N             wrk threads (BENCH_THREADS, default 2)
//   --rate N                fixed-rate requests/s (BENCH_RATE, default 1000)
//   --rate-rounds N         fixed-rate rounds (BENCH_RATE_ROUNDS, default 5)
//   --rate-seconds N        seconds per fixed-rate round (BENCH_RATE_SECONDS, default 5)
//   --targets a,b           throughput targets among direct,nginx,plain-undici,tollgate,tollgate-nocache,
//                           tollgate-forwarder (default: the first four); tollgate-forwarder, when named,
//                           is measured at the fixed rate too
//   --skip-throughput       only the fixed-rate part
//   --skip-fixed-rate       only the throughput part
//   --quiet-wait S          before each round, wait up to S seconds for the machine's CPUs to be under 20 %
//                           busy (BENCH_QUIET_WAIT, default 2; 0 disables); rounds that start busy are counted
//   --require-tollgate      fail (instead of reporting "not measured") when the tollgate target cannot start
import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { waitForQuiet } from "./lib/machine-load.mjs";
import { expectBody64, fixed, machineFacts, markdownTable, median, rotate, runWrk } from "./lib/measure.mjs";
import { startNginx } from "./lib/nginx.mjs";
import { cpuTimeMs, readReadyLine, runToCompletion, startProcess, stopProcess } from "./lib/processes.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const REQUEST_PATH = "/bench/hello";
const DEFAULT_TARGETS = ["direct", "nginx", "plain-undici", "tollgate"];
// tollgate-nocache: the same gateway with the verified-token cache off (every request checks the signature).
// tollgate-forwarder: node:http and tollgate's forwarder alone (no token, policy, audit or metrics).
const ALL_TARGETS = [...DEFAULT_TARGETS, "tollgate-nocache", "tollgate-forwarder"];

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    seconds: { type: "string" },
    connections: { type: "string" },
    threads: { type: "string" },
    rate: { type: "string" },
    "rate-rounds": { type: "string" },
    "rate-seconds": { type: "string" },
    targets: { type: "string" },
    "skip-throughput": { type: "boolean", default: false },
    "skip-fixed-rate": { type: "boolean", default: false },
    "require-tollgate": { type: "boolean", default: false },
    "quiet-wait": { type: "string" },
  },
});

/** A positive (or, with `allowZero`, non-negative) integer from a flag, then the environment, then the default. */
function setting(flag, envName, fallback, allowZero = false) {
  const raw = flags[flag] ?? process.env[envName];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1))
    throw new Error(`--${flag} must be an integer ≥ ${allowZero ? 0 : 1}`);
  return value;
}

const quick = flags.quick;
const settings = {
  rounds: setting("rounds", "BENCH_ROUNDS", quick ? 3 : 5),
  seconds: setting("seconds", "BENCH_SECONDS", quick ? 3 : 8),
  connections: setting("connections", "BENCH_CONNECTIONS", 32),
  threads: setting("threads", "BENCH_THREADS", 2),
  rate: setting("rate", "BENCH_RATE", 1000),
  rateRounds: setting("rate-rounds", "BENCH_RATE_ROUNDS", quick ? 3 : 5),
  rateSeconds: setting("rate-seconds", "BENCH_RATE_SECONDS", quick ? 3 : 5),
  warmupSeconds: quick ? 1 : 1.5,
  quietWaitSeconds: setting("quiet-wait", "BENCH_QUIET_WAIT", quick ? 1 : 2, true),
};
const throughputTargets = (flags.targets ?? DEFAULT_TARGETS.join(",")).split(",").map((name) => name.trim());
for (const name of throughputTargets) {
  if (!ALL_TARGETS.includes(name))
    throw new Error(`unknown target ${name}; known: ${ALL_TARGETS.join(", ")}`);
}
// The fixed-rate question is "what does the gateway add over a direct call"; the plain proxy shows how much
// of that any Node proxy adds, and the bare forwarder (when asked for) how much of it the pipeline adds.
const fixedRateTargets = [
  "direct",
  "plain-undici",
  ...(throughputTargets.includes("tollgate-forwarder") ? ["tollgate-forwarder"] : []),
  "tollgate",
];

function log(message) {
  process.stderr.write(`${message}\n`);
}

/** Waits (bounded) for a quiet machine; returns what to record with the round. */
async function beforeRound() {
  if (settings.quietWaitSeconds === 0) return { quiet: true, busyBefore: Number.NaN };
  const { quiet, busy } = await waitForQuiet({ maxWaitMs: settings.quietWaitSeconds * 1000 });
  return { quiet, busyBefore: busy };
}

function noisyNote(result) {
  return result.quiet ? "" : `  (machine ${fixed(result.busyBefore * 100, 0)} % busy before the round)`;
}

/**
 * @typedef {{ name: string, url: string, headers: Record<string, string>, started?: ReturnType<typeof startProcess>, note?: string }} Target
 */

/** Starts a node target script and waits for its ready line. */
async function startNodeTarget(script, args) {
  const started = startProcess(process.execPath, [join(benchDir, "targets", script), ...args]);
  const ready = await readReadyLine(started, 20_000);
  return { started, ready };
}

async function startTargets(workDir) {
  /** @type {Map<string, Target>} */
  const targets = new Map();
  const wanted = new Set([...throughputTargets, ...(flags["skip-fixed-rate"] ? [] : fixedRateTargets)]);

  const upstream = await startNodeTarget("upstream.mjs", []);
  const upstreamOrigin = `http://127.0.0.1:${upstream.ready.port}`;
  targets.set("direct", {
    name: "direct",
    url: upstreamOrigin + REQUEST_PATH,
    headers: {},
    started: upstream.started,
  });

  if (wanted.has("nginx")) {
    const nginx = await startNginx({ dir: workDir, upstreamPort: Number(upstream.ready.port) });
    targets.set("nginx", {
      name: "nginx",
      url: `http://127.0.0.1:${nginx.port}${REQUEST_PATH}`,
      headers: {},
      started: nginx.started,
    });
  }
  if (wanted.has("plain-undici")) {
    const plain = await startNodeTarget("plain-undici-proxy.mjs", [upstreamOrigin]);
    targets.set("plain-undici", {
      name: "plain-undici",
      url: `http://127.0.0.1:${plain.ready.port}${REQUEST_PATH}`,
      headers: {},
      started: plain.started,
    });
  }
  if (wanted.has("tollgate-forwarder")) {
    const bare = await startNodeTarget("tollgate-forwarder.mjs", [upstreamOrigin]);
    targets.set("tollgate-forwarder", {
      name: "tollgate-forwarder",
      url: `http://127.0.0.1:${bare.ready.port}${REQUEST_PATH}`,
      headers: /** @type {Record<string, string>} */ (bare.ready.headers ?? {}),
      started: bare.started,
    });
  }
  for (const name of ["tollgate", "tollgate-nocache"]) {
    if (!wanted.has(name)) continue;
    try {
      const options = {
        upstream: upstreamOrigin,
        auditPath: join(workDir, `${name}-audit.jsonl`),
        tokenCacheSize: name === "tollgate-nocache" ? 0 : 10_000,
      };
      const tollgate = await startNodeTarget("tollgate-gateway.mjs", [JSON.stringify(options)]);
      targets.set(name, {
        name,
        url: `http://127.0.0.1:${tollgate.ready.port}${REQUEST_PATH}`,
        headers: /** @type {Record<string, string>} */ (tollgate.ready.headers ?? {}),
        started: tollgate.started,
      });
    } catch (error) {
      if (flags["require-tollgate"]) throw error;
      log(`${name} target did not start; reporting it as not measured: ${String(error).slice(0, 600)}`);
      targets.set(name, { name, url: "", headers: {}, note: "not measured yet" });
    }
  }

  for (const target of targets.values()) {
    if (target.url === "") continue;
    try {
      await expectBody64(target.url, target.headers);
    } catch (error) {
      if (!target.name.startsWith("tollgate") || flags["require-tollgate"]) throw error;
      log(`${target.name} answered wrongly; reporting it as not measured: ${String(error).slice(0, 300)}`);
      await stopProcess(target.started);
      targets.set(target.name, { name: target.name, url: "", headers: {}, note: "not measured yet" });
    }
  }
  return targets;
}

/** Runs the throughput rounds; returns per-target lists of wrk results, one per round. */
async function throughputRounds(targets) {
  const live = throughputTargets.filter((name) => targets.get(name)?.url);
  const wrkBase = { threads: settings.threads, connections: settings.connections };
  for (const name of live) {
    const target = targets.get(name);
    await runWrk({
      ...wrkBase,
      url: target.url,
      headers: target.headers,
      seconds: Math.ceil(settings.warmupSeconds),
    });
  }
  /** @type {Map<string, ReturnType<typeof import("./lib/measure.mjs").parseWrkOutput>[]>} */
  const results = new Map(live.map((name) => [name, []]));
  for (let round = 0; round < settings.rounds; round += 1) {
    for (const name of rotate(live, round)) {
      const target = targets.get(name);
      const machine = await beforeRound();
      const cpuBefore = cpuTimeMs(target.started?.child.pid);
      const wrk = await runWrk({
        ...wrkBase,
        url: target.url,
        headers: target.headers,
        seconds: settings.seconds,
      });
      const cpuUsPerRequest = ((cpuTimeMs(target.started?.child.pid) - cpuBefore) * 1000) / wrk.requests;
      const result = { ...wrk, cpuUsPerRequest, ...machine };
      results.get(name).push(result);
      const errors = result.non2xx + result.socketErrors;
      log(
        `round ${round + 1}/${settings.rounds} ${name.padEnd(12)} ${fixed(result.rps, 0).padStart(7)} req/s` +
          `  p50 ${fixed(result.p50Ms)} ms  p99 ${fixed(result.p99Ms)} ms  ${fixed(result.cpuUsPerRequest, 1)} µs CPU/req` +
          `${errors ? `  ERRORS ${errors}` : ""}${noisyNote(result)}`,
      );
    }
  }
  return results;
}

/** Runs the constant-rate generator once against a target. */
async function constantRate(target, seconds) {
  const options = {
    url: target.url,
    rate: settings.rate,
    seconds,
    // Each generator is a fresh process: it warms up (sending, not recording) before measuring.
    warmupSeconds: settings.warmupSeconds,
    connections: 10,
    headers: target.headers,
  };
  const { code, stdout, stderr } = await runToCompletion(
    process.execPath,
    [join(benchDir, "load", "constant-rate.mjs"), JSON.stringify(options)],
    (settings.warmupSeconds + seconds + 30) * 1000,
  );
  if (code !== 0) throw new Error(`constant-rate exited ${code}: ${stderr}`);
  return JSON.parse(stdout.trim().split("\n").pop());
}

async function fixedRateRounds(targets) {
  const live = fixedRateTargets.filter((name) => targets.get(name)?.url);
  const results = new Map(live.map((name) => [name, []]));
  for (let round = 0; round < settings.rateRounds; round += 1) {
    for (const name of rotate(live, round)) {
      const target = targets.get(name);
      const machine = await beforeRound();
      const cpuBefore = cpuTimeMs(target.started?.child.pid);
      const generated = await constantRate(target, settings.rateSeconds);
      // The generator's warm-up requests also use the target's CPU: divide by everything it sent.
      const sent = generated.ok + generated.failed + generated.warmupRequests;
      const cpuUsPerRequest = ((cpuTimeMs(target.started?.child.pid) - cpuBefore) * 1000) / sent;
      const result = { ...generated, cpuUsPerRequest, ...machine };
      results.get(name).push(result);
      log(
        `fixed-rate round ${round + 1}/${settings.rateRounds} ${name.padEnd(12)} p50 ${fixed(result.p50Ms, 3)} ms` +
          `  p99 ${fixed(result.p99Ms, 3)} ms  ${fixed(result.achievedRate, 0)} req/s` +
          `${result.failed ? `  FAILED ${result.failed}` : ""}${noisyNote(result)}`,
      );
    }
  }
  return results;
}

/** Median over rounds of the per-round ratio a/b (paired: both measured in the same round). */
function pairedRatio(a, b, pick) {
  if (!a || !b) return Number.NaN;
  return median(a.map((result, i) => pick(result) / pick(b[i])));
}

function pairedDifference(a, b, pick) {
  if (!a || !b) return Number.NaN;
  return median(a.map((result, i) => pick(result) - pick(b[i])));
}

function throughputTable(targets, results) {
  const rows = [];
  for (const name of throughputTargets) {
    const runs = results.get(name);
    if (!runs) {
      rows.push([name, targets.get(name)?.note ?? "not measured", "", "", "", "", "", "", "", ""]);
      continue;
    }
    const rps = runs.map((r) => r.rps);
    rows.push([
      name,
      fixed(median(rps), 0),
      `${fixed(Math.min(...rps), 0)}–${fixed(Math.max(...rps), 0)}`,
      fixed(median(runs.map((r) => r.p50Ms))),
      fixed(median(runs.map((r) => r.p99Ms))),
      fixed(pairedRatio(runs, results.get("nginx"), (r) => r.rps)),
      fixed(pairedRatio(runs, results.get("plain-undici"), (r) => r.rps)),
      fixed(median(runs.map((r) => r.cpuUsPerRequest)), 1),
      String(runs.reduce((sum, r) => sum + r.non2xx + r.socketErrors, 0)),
      `${runs.filter((r) => !r.quiet).length}/${runs.length}`,
    ]);
  }
  return markdownTable(
    [
      "target",
      "req/s (median)",
      "req/s range",
      "p50 ms",
      "p99 ms",
      "× nginx",
      "× plain-undici",
      "target CPU µs/req",
      "errors",
      "rounds started busy",
    ],
    rows,
  );
}

function fixedRateTable(targets, results) {
  const direct = results.get("direct");
  const rows = [];
  for (const name of fixedRateTargets) {
    const runs = results.get(name);
    if (!runs) {
      rows.push([name, targets.get(name)?.note ?? "not measured", "", "", "", "", "", "", ""]);
      continue;
    }
    rows.push([
      name,
      fixed(median(runs.map((r) => r.p50Ms)), 3),
      fixed(median(runs.map((r) => r.p99Ms)), 3),
      name === "direct"
        ? "—"
        : fixed(
            pairedDifference(runs, direct, (r) => r.p99Ms),
            3,
          ),
      fixed(median(runs.map((r) => r.p999Ms)), 3),
      fixed(median(runs.map((r) => r.achievedRate)), 0),
      fixed(median(runs.map((r) => r.cpuUsPerRequest)), 1),
      String(runs.reduce((sum, r) => sum + r.failed, 0)),
      `${runs.filter((r) => !r.quiet).length}/${runs.length}`,
    ]);
  }
  return markdownTable(
    [
      "target",
      "p50 ms",
      "p99 ms",
      "p99 added vs direct (ms)",
      "p99.9 ms",
      "achieved req/s",
      "target CPU µs/req",
      "failed",
      "rounds started busy",
    ],
    rows,
  );
}

function goalLines(throughput, fixedRate) {
  const lines = [];
  const ratio = pairedRatio(throughput?.get("tollgate"), throughput?.get("nginx"), (r) => r.rps);
  if (Number.isFinite(ratio)) {
    lines.push(
      `- throughput: tollgate ${fixed(ratio)}× nginx (goal ≥ 0.40×): ${ratio >= 0.4 ? "met" : "NOT met"}`,
    );
  }
  const added = pairedDifference(fixedRate?.get("tollgate"), fixedRate?.get("direct"), (r) => r.p99Ms);
  if (Number.isFinite(added)) {
    lines.push(
      `- added p99 at ${settings.rate} req/s: ${fixed(added, 3)} ms (goal ≤ 1 ms): ${added <= 1 ? "met" : "NOT met"}`,
    );
  }
  return lines;
}

async function main() {
  const startedAt = Date.now();
  const workDir = mkdtempSync(join(tmpdir(), "tollgate-bench-"));
  /** @type {Map<string, Target>} */
  let targets = new Map();
  try {
    targets = await startTargets(workDir);
    const facts = machineFacts();
    log(`machine: ${facts.nproc} cores, ${facts.cpu}, node ${facts.node}, ${facts.nginx}`);
    log(`settings: ${JSON.stringify(settings)}`);

    const throughput = flags["skip-throughput"] ? undefined : await throughputRounds(targets);
    const fixedRate = flags["skip-fixed-rate"] ? undefined : await fixedRateRounds(targets);

    const command = `node bench/gateway-throughput.mjs ${process.argv.slice(2).join(" ")}`.trim();
    const out = [
      `### Gateway benchmark (${facts.date})`,
      "",
      `Machine: ${facts.nproc} cores, ${facts.cpu}; node ${facts.node}; ${facts.nginx}.`,
      `Command: \`${command}\``,
      "",
    ];
    if (throughput) {
      out.push(
        `Throughput: wrk -t${settings.threads} -c${settings.connections}, ${settings.rounds} rounds × ` +
          `${settings.seconds} s per target, alternating; 64-byte responses. Ratios are medians of per-round ratios.`,
        "",
        throughputTable(targets, throughput),
        "",
      );
    }
    if (fixedRate) {
      out.push(
        `Fixed rate: ${settings.rate} req/s open loop over 10 connections, ${settings.rateRounds} rounds × ` +
          `${settings.rateSeconds} s per target, alternating; latency from each request's due time. ` +
          "Added p99 is the median of per-round differences.",
        "",
        fixedRateTable(targets, fixedRate),
        "",
      );
    }
    const goals = goalLines(throughput, fixedRate);
    if (goals.length > 0) out.push("Goals:", ...goals, "");
    process.stdout.write(`${out.join("\n")}\n`);

    const resultsDir = join(benchDir, "results");
    mkdirSync(resultsDir, { recursive: true });
    const raw = {
      facts,
      settings,
      throughput: throughput ? Object.fromEntries(throughput) : null,
      fixedRate: fixedRate ? Object.fromEntries(fixedRate) : null,
    };
    const rawPath = join(resultsDir, `gateway-throughput-${facts.date.replace(/[:.]/g, "-")}.json`);
    writeFileSync(rawPath, `${JSON.stringify(raw, null, 2)}\n`);
    log(`raw results: ${rawPath}; took ${fixed((Date.now() - startedAt) / 1000, 0)} s`);
  } finally {
    for (const target of targets.values()) await stopProcess(target.started);
    // Auditing is on during the benchmark: show that every request produced its event (the gateway
    // flushes the file when it stops).
    for (const name of ["tollgate", "tollgate-nocache"]) {
      if (!targets.get(name)?.url) continue;
      const auditPath = join(workDir, `${name}-audit.jsonl`);
      log(
        `${name}: ${await countLines(auditPath)} audit events written to ${auditPath} (removed with the run)`,
      );
    }
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Counts lines of a possibly large file without reading it whole. */
async function countLines(path) {
  let lines = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines += 1;
    }
  } catch {
    return 0;
  }
  return lines;
}

await main();
