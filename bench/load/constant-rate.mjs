// An open-loop, constant-rate load generator (wrk has no fixed-rate mode). Request i is due at
// start + i / rate whatever happened to earlier requests, and its latency is measured from when it was due,
// not from when it was sent, so a stalled server cannot hide its stall by slowing the generator down
// (no coordinated omission). Runs as its own process, sends a bounded number of requests, and stops by
// itself within `warmupSeconds + seconds + 10` seconds. The first `warmupSeconds` are sent at the same rate
// but not recorded: a fresh process (and fresh connections) answers its first second or so far slower while
// the JIT warms up, which would otherwise dominate every p99.
//
// Usage: node constant-rate.mjs '{"url":"http://127.0.0.1:N/path","rate":1000,"seconds":8,"connections":10,
//        "warmupSeconds":1.5,"headers":{}}'
// Prints one JSON line: {sent, warmupRequests, ok, failed, p50Ms, p90Ms, p99Ms, p999Ms, maxMs, achievedRate}.
import { performance } from "node:perf_hooks";
import { Pool } from "undici";

const options = JSON.parse(process.argv[2] ?? "{}");
const { url, rate = 1000, seconds = 8, warmupSeconds = 1.5, connections = 10, headers = {} } = options;
const target = new URL(url);
if (!["127.0.0.1", "localhost", "[::1]"].includes(target.hostname)) {
  throw new Error(`constant-rate only targets loopback, not ${target.hostname}`);
}

const warmup = Math.round(rate * warmupSeconds);
const total = warmup + Math.round(rate * seconds);
const intervalMs = 1000 / rate;
const path = target.pathname + target.search;
const pool = new Pool(target.origin, {
  connections,
  pipelining: 1,
  keepAliveTimeout: 60_000,
  headersTimeout: 5000,
  bodyTimeout: 5000,
});

const latencies = new Float64Array(total - warmup);
let ok = 0;
let failed = 0;
let settled = 0;
let next = 0;
let start = 0;
let lastDoneAt = 0;
let measuredStart = 0;

/** @type {() => void} */
let resolveDone;
const done = new Promise((resolve) => {
  resolveDone = resolve;
});

function settle() {
  settled += 1;
  lastDoneAt = performance.now();
  if (settled === total) resolveDone();
}

function fire(index, dueAt) {
  const recorded = index >= warmup;
  pool.request({ method: "GET", path, headers }).then(
    async (response) => {
      await response.body.arrayBuffer();
      if (!recorded) {
        // Warm-up answers only need to be right; their latency is not recorded.
        if (response.statusCode !== 200) failed += 1;
      } else if (response.statusCode === 200) {
        latencies[ok] = performance.now() - dueAt;
        ok += 1;
      } else {
        failed += 1;
      }
      settle();
    },
    () => {
      failed += 1;
      settle();
    },
  );
}

function tick() {
  const now = performance.now();
  while (next < total && start + next * intervalMs <= now) {
    fire(next, start + next * intervalMs);
    next += 1;
  }
  if (next < total) {
    // Node timers have ~1 ms resolution; each tick fires every request that has come due, so the rate holds
    // even when a tick is late. A busy loop would be more exact but would steal a core from the server.
    setTimeout(tick, Math.max(1, start + next * intervalMs - performance.now()));
  }
}

const hardStop = setTimeout(() => resolveDone(), (warmupSeconds + seconds + 10) * 1000);
start = performance.now();
measuredStart = start + warmup * intervalMs;
tick();
await done;
clearTimeout(hardStop);
// Anything still outstanding at the hard stop counts as failed.
failed += total - settled;
const sent = next - warmup;

const measured = latencies.subarray(0, ok).sort();
const at = (q) => (ok === 0 ? Number.NaN : measured[Math.min(ok - 1, Math.ceil(q * ok) - 1)]);
const result = {
  sent,
  warmupRequests: warmup,
  ok,
  failed,
  p50Ms: at(0.5),
  p90Ms: at(0.9),
  p99Ms: at(0.99),
  p999Ms: at(0.999),
  maxMs: ok === 0 ? Number.NaN : measured[ok - 1],
  achievedRate: ok / ((lastDoneAt - measuredStart) / 1000),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
await pool.destroy();
