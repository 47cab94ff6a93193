// The abuse controls of issue 13 (src/limits/), measured: what a rate limit costs per request, in memory
// and in Redis, and what a flood of junk tokens from one address does to a valid client's latency, with
// the failed-authentication throttle (`listen.auth_failures`) on and off.
//
//   npm run build && node bench/abuse-controls.mjs [--quick] [--part rate|flood|both] [--profile]
//
// Needs wrk (bench/setup.sh) and redis-server (Debian `redis-server`) on PATH; how long it takes is at the
// end of this comment.
//
// 1. Cost of a rate limit ("rate"). Two gateway processes (this file with --role gateway: a dev issuer
//    and startGateway, as targets/tollgate-gateway.mjs, the same five-condition policy, auditing on to a
//    file, the verified-token cache path), one with
//    `store: {kind: memory}`, one with `store: {kind: redis}` on a redis-server this script starts. Each
//    has a route without a limit (/open/) and one with `rate_limit: {requests: 1000000, per: 60s, key:
//    repository_id}` (/limited/), never reached (wrk's non-2xx count proves it). Four targets:
//      none      memory-store process, /open/          memory   memory-store process, /limited/
//      none-r    Redis-store process, /open/           redis    Redis-store process, /limited/
//    Why two routes per process rather than one process per target: the store is per gateway, so Redis
//    needs a process of its own, but a ratio between two processes also carries their difference (JIT,
//    heap layout), measured earlier at ≈ 4 %, the size of the memory goal. So each limit is compared with
//    the unlimited route of its own process (memory ÷ none, redis ÷ none-r); redis ÷ none (across
//    processes) and the A/A-like none-r ÷ none (the between-process spread, plus an idle Redis
//    connection) are reported too. Rounds alternate over the four targets, the order rotating; each
//    round is wrk (-t2 -c32, keep-alive, one token) for --warmup seconds unmeasured, then --seconds
//    measured, with the gateway's CPU time (user + system, all threads, /proc) read around it; the
//    redis-server's CPU is read too. Ratios are medians of per-round ratios. Before measuring, each
//    process's /check/ route (3 requests per 60 s) must answer 429 within ten requests, so a limit that
//    does not count (a store that never connected) cannot pass for a cheap one.
// 2. Junk-token flood ("flood"). Two more gateway processes (memory store, route /open/ without a
//    limit): throttle off, and `listen.auth_failures: {max: 20, per: 60s}`. Cases: throttle off/on ×
//    junk malformed/badsig × each flood load of --flood-load, in rotating order. Each case: a valid client
//    (this process, one keep-alive connection from 127.0.0.1, sequential requests, the gateway's own valid
//    token) measures its latency for --idle-seconds; then a flood process (this file, --role flood) opens
//    its keep-alive connections from 127.0.0.2 and sends junk tokens for --flood-seconds, while the valid
//    client measures again (from 0.5 s after the flood starts to 0.5 s before it ends). The figure is
//    p50 during the flood ÷ p50 idle, the median over rounds. Loads: `C` is C connections in a closed loop
//    (each sends again as soon as it has its answer: the flood runs as fast as the gateway answers, or as
//    the generator can send, on this 2-core machine); `C@R` caps the C connections at R requests/s in all
//    (request i is due at start + i/R), an attacker whose own capacity is the limit. Junk: "malformed" is
//    256 distinct random base64url strings of 1,000 characters (no JWT at all); "badsig" is 256 distinct
//    well-formed RS256 JWTs with the issuer's iss, aud and kid and the policy's claims, signed by a key the
//    issuer does not publish, so each costs a signature check (the verifier caches only successes, and
//    distinct tokens defeat its sharing of concurrent checks). The throttled address stays blocked for its
//    window (60 s), across cases and rounds: after the first 20 failures every junk request is answered
//    429 before any token work. The generator is a minimal HTTP/1.1 client on net sockets, cheaper per
//    request than an HTTP library, so it takes less of the two cores from the gateway.
//
// Options (flags, or the BENCH_* environment variable in brackets):
//   --quick                   rate: 3 rounds × 3 s; flood: 2 rounds × 3 s (a smoke run)
//   --part rate|flood|both    which part (default both)
//   --rounds N                rate rounds (BENCH_ROUNDS, default 6)
//   --seconds N               measured seconds per rate round (BENCH_SECONDS, default 6)
//   --warmup N                unmeasured wrk seconds before each rate round (BENCH_WARMUP, default 2; before
//                             round 1 every target also gets 3 × N seconds)
//   --connections N           wrk connections (BENCH_CONNECTIONS, default 32)
//   --threads N               wrk threads (BENCH_THREADS, default 2)
//   --tollgate-root DIR       rate part: also start a Redis-store gateway of another build (DIR/dist, a
//                             checkout after `npm run build`): targets none-rb and redis-b, side by side
//   --profile                 after the rate part, run three fresh gateways (none, memory, redis) under
//                             `node --cpu-prof` for --warmup + --seconds of wrk each, and print the profile's
//                             main-thread self time per request by package, and the functions the Redis
//                             limit adds (≈ 1 more minute)
//   --instructions            after the rate part, count instructions per request on the main thread with
//                             valgrind's callgrind (as instructions-per-request.mjs), /open/ against
//                             /limited/ in alternating windows of one process per store: steady where CPU
//                             time on this machine is not, blind to kernel time (needs valgrind)
//   --flood-rounds N          flood rounds, each runs every case (BENCH_FLOOD_ROUNDS, default 3)
//   --flood-seconds N         flood length, at least 2 (BENCH_FLOOD_SECONDS, default 5)
//   --flood-load L,L          flood loads, `C` or `C@R` (BENCH_FLOOD_LOAD, default 32,32@3000)
//   --idle-seconds N          valid client's idle measurement before each flood (default 2)
//   --quiet-wait S            before each round, wait up to S s for the CPUs to be under 20 % busy
//                             (BENCH_QUIET_WAIT, default 2; 0 disables); rounds that start busy are counted
//
// How long: ≈ 8 minutes with the defaults (rate part ≈ 4.5: 4 targets × 6 rounds × ≈ 10 s plus warm-ups;
// flood part ≈ 4: 8 cases × 3 rounds × ≈ 10 s); each more --flood-load shape ≈ 2 minutes, --rounds 10
// ≈ 3, --tollgate-root ≈ 2, --profile ≈ 1, --instructions 2–10 (valgrind; slower when the machine is
// busy); --quick ≈ 3 in all.
//
// Every load loop is bounded in count and time; every process started here is killed at the end (also on
// an error or Ctrl-C, bench/lib/processes.mjs); all traffic stays on 127.0.0.0/8. Raw per-round results
// go to bench/results/ (ignored by git).
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Client, Pool } from "undici";
import { waitForQuiet } from "./lib/machine-load.mjs";
import { expectBody64, fixed, machineFacts, markdownTable, median, rotate, runWrk } from "./lib/measure.mjs";
import {
  cpuTimeMs,
  freeLoopbackPort,
  readReadyLine,
  runToCompletion,
  startProcess,
  stopProcess,
} from "./lib/processes.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const scriptPath = fileURLToPath(import.meta.url);
const distDir = join(benchDir, "..", "dist");
const AUDIENCE = "tollgate-bench";
const RATE_LIMIT = "{ requests: 1000000, per: 60s, key: repository_id }";
const AUTH_FAILURES = { max: 20, per: "60s" };
const JUNK_TOKENS = 256;
const FLOOD_ADDRESS = "127.0.0.2";

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    role: { type: "string" },
    quick: { type: "boolean", default: false },
    part: { type: "string", default: "both" },
    rounds: { type: "string" },
    seconds: { type: "string" },
    warmup: { type: "string" },
    connections: { type: "string" },
    threads: { type: "string" },
    "flood-rounds": { type: "string" },
    "flood-seconds": { type: "string" },
    "flood-load": { type: "string" },
    "idle-seconds": { type: "string" },
    "quiet-wait": { type: "string" },
    profile: { type: "boolean", default: false },
    instructions: { type: "boolean", default: false },
    "tollgate-root": { type: "string" },
  },
});

function log(message) {
  process.stderr.write(`${message}\n`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------
// Role: the gateway target. A dev issuer and startGateway with the options in the JSON argument; prints
// {"port", "headers", "issuerUrl", "keyId", "audience"} once the issuer's keys are loaded. The token is a
// throwaway signed by this process's own dev issuer, written only to the harness's pipe.
// ---------------------------------------------------------------------------------------------------
async function serveGateway(options) {
  const dist = options.distDir ?? distDir;
  const { compileConfigText } = await import(join(dist, "config/index.js"));
  const { createDevIssuer, githubLikeClaims } = await import(join(dist, "dev/dev-issuer.js"));
  const { startGateway } = await import(join(dist, "server/index.js"));
  const issuer = await createDevIssuer({ host: "127.0.0.1" });
  const authFailures = options.authFailures
    ? `  auth_failures: { max: ${options.authFailures.max}, per: ${options.authFailures.per} }\n`
    : "";
  const store =
    options.redisUrl === undefined
      ? "store:\n  kind: memory\n"
      : `store:\n  kind: redis\n  url: ${options.redisUrl}\n`;
  const route = (name, limit) =>
    `  - name: ${name}\n    path_prefix: /${name}/\n    upstream: ${options.upstream}\n    allow: [bench-ci]\n` +
    (limit ? `    rate_limit: ${limit}\n` : "");
  // The policy of targets/tollgate-gateway.mjs: numeric owner and repository ids, a branch, the fork-risky
  // events excluded, and a glob on the workflow. repository_id is pinned, so it may key a rate limit.
  const yaml = `listen:
  host: 127.0.0.1
  port: 0
${authFailures}issuers:
  - name: bench
    issuer: ${issuer.issuerUrl}
    audiences: [${AUDIENCE}]
policies:
  bench-ci:
    issuer: bench
    claims:
      repository_owner_id: 65
      repository_id: 74
      ref: refs/heads/main
      event_name: { not: [pull_request_target, workflow_run] }
      job_workflow_ref: { glob: "octo-org/octo-repo/.github/workflows/*.yml@refs/heads/main" }
routes:
${route("open")}${route("limited", RATE_LIMIT)}${route("check", "{ requests: 3, per: 60s, key: repository_id }")}${store}audit:
  sink: ${options.auditPath}
  flush_interval: 20ms
oidc:
  token_cache_size: 10000
  fetch_timeout: ${options.fetchTimeout ?? "5s"}
`;
  const { config, problems } = compileConfigText(yaml, { sourceName: "abuse-bench.yaml" });
  if (!config) throw new Error(`bench configuration rejected: ${JSON.stringify(problems)}`);
  const running = await startGateway(config, {
    listen: { host: "127.0.0.1", port: 0 },
    logLevel: process.env.LOG_LEVEL ?? "warn",
    auditSink: options.auditPath,
  });
  await running.keysLoaded;
  if (!running.verifier.isReady()) throw new Error("the gateway could not load the dev issuer's keys");
  // One hour, so the whole run reuses one token: the verified-token cache path, as production clients.
  const token = await issuer.mint(githubLikeClaims(), { audience: AUDIENCE, expiresInSeconds: 3600 });
  process.stdout.write(
    `${JSON.stringify({
      port: running.address.port,
      headers: { "gateway-authorization": `Bearer ${token}` },
      issuerUrl: issuer.issuerUrl,
      keyId: issuer.keyId,
      audience: AUDIENCE,
    })}\n`,
  );
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => {
      Promise.allSettled([running.close(), issuer.close()]).finally(() => process.exit(0));
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// Role: the flood generator. `concurrency` keep-alive connections from `localAddress`, each sending the
// next junk token as soon as the previous answer is complete (closed loop), for `seconds`. A minimal
// HTTP/1.1 client on net sockets (every answer here carries content-length), far cheaper per request than
// an HTTP library, so the generator takes less of the two cores from the gateway. Prints {"flooding":
// true} when the connections are open and sending starts, and a summary line at the end; exits by itself
// at the latest 5 s after the flood should have ended.
// ---------------------------------------------------------------------------------------------------
async function runFlood(options) {
  const { port, localAddress, concurrency, seconds, path, rate } = options;
  if (!/^127\./.test(localAddress)) throw new Error("the flood only comes from loopback addresses");
  const safety = setTimeout(() => finish("safety timeout"), (seconds + 5) * 1000);
  const tokens =
    options.kind === "malformed"
      ? Array.from({ length: JUNK_TOKENS }, () => randomBytes(750).toString("base64url"))
      : JSON.parse(readFileSync(options.tokensFile, "utf8"));
  const requests = tokens.map((token) =>
    Buffer.from(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nGateway-Authorization: Bearer ${token}\r\n\r\n`,
      "latin1",
    ),
  );
  const statuses = {};
  let answered = 0;
  let errors = 0;
  let connects = 0;
  let deadline = Number.POSITIVE_INFINITY;
  let issued = 0;
  let startedAt = 0;
  let finished = false;

  function finish(note) {
    if (finished) return;
    finished = true;
    clearTimeout(safety);
    const elapsed = (performance.now() - startedAt) / 1000;
    process.stdout.write(
      `${JSON.stringify({ summary: true, answered, statuses, errors, connects, seconds: elapsed, note })}\n`,
    );
    process.exit(0);
  }

  function open() {
    return new Promise((resolve) => {
      connects += 1;
      const socket = connect({ host: "127.0.0.1", port, localAddress });
      socket.setNoDelay(true);
      socket.once("connect", () => resolve(socket));
      socket.once("error", () => {
        errors += 1;
        resolve(undefined);
      });
    });
  }

  /** Sends requests on one socket until the deadline or the socket closes. */
  function drive(socket, firstIndex) {
    return new Promise((resolve) => {
      let cursor = firstIndex;
      /** @type {Buffer | undefined} */
      let buffered;
      const write = () => {
        if (socket.destroyed) return;
        if (performance.now() >= deadline) {
          socket.destroy();
          return;
        }
        socket.write(requests[cursor % requests.length]);
        cursor += 1;
      };
      // Closed loop: at once. With a rate: when the next request of the whole flood is due.
      const send = () => {
        if (rate === undefined) return write();
        const wait = startedAt + (issued * 1000) / rate - performance.now();
        issued += 1;
        if (wait <= 0) write();
        else setTimeout(write, wait);
      };
      socket.on("data", (chunk) => {
        buffered = buffered === undefined ? chunk : Buffer.concat([buffered, chunk]);
        while (buffered !== undefined) {
          const headEnd = buffered.indexOf("\r\n\r\n");
          if (headEnd === -1) return;
          const head = buffered.toString("latin1", 0, headEnd);
          const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          if (length === null) {
            errors += 1;
            socket.destroy();
            return;
          }
          const total = headEnd + 4 + Number(length[1]);
          if (buffered.length < total) return;
          const status = head.slice(9, 12);
          statuses[status] = (statuses[status] ?? 0) + 1;
          answered += 1;
          buffered = buffered.length > total ? buffered.subarray(total) : undefined;
          if (/\r\nconnection:\s*close/i.test(head) || performance.now() >= deadline) {
            socket.destroy();
            return;
          }
          send();
        }
      });
      socket.on("error", () => {
        errors += 1;
      });
      socket.on("close", () => resolve(cursor));
      send();
    });
  }

  async function worker(socket, index) {
    let cursor = Math.floor((index * requests.length) / concurrency);
    let current = socket;
    // Bounded: by the deadline, and by at most 1,000 connections per worker.
    for (let attempt = 0; attempt < 1000 && performance.now() < deadline; attempt += 1) {
      if (current === undefined) {
        current = await open();
        if (current === undefined) {
          await sleep(10);
          continue;
        }
      }
      cursor = await drive(current, cursor);
      current = undefined;
    }
    current?.destroy();
  }

  const sockets = await Promise.all(Array.from({ length: concurrency }, () => open()));
  startedAt = performance.now();
  deadline = startedAt + seconds * 1000;
  process.stdout.write(`${JSON.stringify({ flooding: true })}\n`);
  await Promise.all(sockets.map((socket, index) => worker(socket, index)));
  finish(undefined);
}

// ---------------------------------------------------------------------------------------------------
// The harness.
// ---------------------------------------------------------------------------------------------------

/** A positive (or, with `allowZero`, non-negative) integer from a flag, then the environment, then the default. */
function setting(flag, envName, fallback, allowZero = false) {
  const raw = flags[flag] ?? (envName ? process.env[envName] : undefined);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1) || value > 3600)
    throw new Error(`--${flag} must be an integer from ${allowZero ? 0 : 1} to 3600`);
  return value;
}

/**
 * `--flood-load 32,32@3000`: each shape is a case of its own, measured in the same rounds. `C` is C
 * connections in a closed loop (each sends again as soon as it has its answer); `C@R` is C connections
 * that together send at most R requests/s (request i is due at start + i/R).
 */
function floodLoads(text) {
  return String(text)
    .split(",")
    .map((shape) => {
      const match = /^(\d+)(?:@(\d+))?$/.exec(shape.trim());
      const concurrency = Number(match?.[1]);
      const rate = match?.[2] === undefined ? undefined : Number(match[2]);
      if (
        !match ||
        !(concurrency >= 1 && concurrency <= 1000) ||
        (rate !== undefined && !(rate >= 1 && rate <= 100_000))
      )
        throw new Error(
          "--flood-load takes shapes C or C@R (1–1000 connections, 1–100000 requests/s), comma-separated",
        );
      return {
        concurrency,
        rate,
        label: rate === undefined ? `c${concurrency}` : `c${concurrency}@${rate}/s`,
      };
    });
}

function harnessSettings() {
  const quick = flags.quick;
  if (!["rate", "flood", "both"].includes(flags.part)) throw new Error("--part must be rate, flood or both");
  return {
    part: flags.part,
    rounds: setting("rounds", "BENCH_ROUNDS", quick ? 3 : 6),
    seconds: setting("seconds", "BENCH_SECONDS", quick ? 3 : 6),
    warmup: setting("warmup", "BENCH_WARMUP", quick ? 1 : 2),
    connections: setting("connections", "BENCH_CONNECTIONS", 32),
    threads: setting("threads", "BENCH_THREADS", 2),
    floodRounds: setting("flood-rounds", "BENCH_FLOOD_ROUNDS", quick ? 2 : 3),
    floodSeconds: Math.max(2, setting("flood-seconds", "BENCH_FLOOD_SECONDS", quick ? 3 : 5)),
    floodLoads: floodLoads(flags["flood-load"] ?? process.env.BENCH_FLOOD_LOAD ?? "32,32@3000"),
    idleSeconds: setting("idle-seconds", undefined, quick ? 1 : 2),
    quietWait: setting("quiet-wait", "BENCH_QUIET_WAIT", quick ? 1 : 2, true),
    profile: flags.profile,
    instructions: flags.instructions,
  };
}

/** User and system CPU time (ms) of one process, all its threads, from /proc/PID/stat. */
function cpuSplitMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
  } catch {
    return { user: Number.NaN, system: Number.NaN };
  }
}

async function beforeRound(settings) {
  if (settings.quietWait === 0) return { quiet: true, busyBefore: Number.NaN };
  const { quiet, busy } = await waitForQuiet({ maxWaitMs: settings.quietWait * 1000 });
  return { quiet, busyBefore: busy };
}

/** Starts a redis-server on a free loopback port, without persistence; waits until it answers PING. */
async function startRedis() {
  const port = await freeLoopbackPort();
  const started = startProcess("redis-server", [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
  ]);
  started.child.stdout.resume();
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const { stdout } = await runToCompletion("redis-cli", ["-p", String(port), "ping"], 2000);
    if (stdout.trim() === "PONG") return { started, port, url: `redis://127.0.0.1:${port}` };
    await sleep(100);
  }
  throw new Error(`redis-server did not answer on ${port}: ${started.stderr().slice(-500)}`);
}

/** Starts a gateway child (this script, --role gateway); `nodeFlags` go before the script (--cpu-prof). */
async function startGatewayProcess(options, nodeFlags = []) {
  const started = startProcess(process.execPath, [
    ...nodeFlags,
    scriptPath,
    "--role",
    "gateway",
    JSON.stringify(options),
  ]);
  const ready = await readReadyLine(started, 30_000);
  return { started, ready, origin: `http://127.0.0.1:${ready.port}` };
}

/** The /check/ route allows 3 requests per 60 s: a 429 within ten requests proves the store counts. */
async function expectLimitEnforced(gateway, name) {
  const statuses = [];
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const client = new Client(gateway.origin);
    try {
      const answer = await client.request({
        method: "GET",
        path: "/check/x",
        headers: gateway.ready.headers,
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      await answer.body.dump();
      statuses.push(answer.statusCode);
      if (answer.statusCode === 429) return statuses;
    } finally {
      await client.close();
    }
    await sleep(100);
  }
  throw new Error(`${name}: the 3-per-minute check route never answered 429 (${statuses.join(", ")})`);
}

// --- Part 1: the cost of a rate limit ----------------------------------------------------------------

async function rateRounds(settings, targets, redis) {
  const wrkBase = { threads: settings.threads, connections: settings.connections };
  const results = new Map(targets.map((target) => [target.name, []]));
  // A first warm-up of every target, so that round 1 does not measure a JIT still settling.
  for (const target of targets) {
    await runWrk({ ...wrkBase, url: target.url, headers: target.headers, seconds: 3 * settings.warmup });
  }
  for (let round = 0; round < settings.rounds; round += 1) {
    for (const target of rotate(targets, round)) {
      const machine = await beforeRound(settings);
      await runWrk({ ...wrkBase, url: target.url, headers: target.headers, seconds: settings.warmup });
      const pid = target.gateway.started.child.pid;
      const cpuBefore = cpuTimeMs(pid);
      const splitBefore = cpuSplitMs(pid);
      const redisBefore = redis ? cpuTimeMs(redis.started.child.pid) : Number.NaN;
      const wrk = await runWrk({
        ...wrkBase,
        url: target.url,
        headers: target.headers,
        seconds: settings.seconds,
      });
      const splitAfter = cpuSplitMs(pid);
      const perRequest = (ms) => (ms * 1000) / wrk.requests;
      const result = {
        ...wrk,
        ...machine,
        cpuUsPerRequest: perRequest(cpuTimeMs(pid) - cpuBefore),
        userUsPerRequest: perRequest(splitAfter.user - splitBefore.user),
        systemUsPerRequest: perRequest(splitAfter.system - splitBefore.system),
        redisUsPerRequest: redis ? perRequest(cpuTimeMs(redis.started.child.pid) - redisBefore) : Number.NaN,
      };
      results.get(target.name).push(result);
      const errors = result.non2xx + result.socketErrors;
      log(
        `rate round ${round + 1}/${settings.rounds} ${target.name.padEnd(7)} ${fixed(result.rps, 0).padStart(6)} req/s` +
          `  ${fixed(result.cpuUsPerRequest, 1)} µs CPU/req (user ${fixed(result.userUsPerRequest, 1)}, sys ${fixed(result.systemUsPerRequest, 1)})` +
          `  redis-server ${fixed(result.redisUsPerRequest, 1)} µs/req${errors ? `  ERRORS ${errors}` : ""}` +
          `${result.quiet ? "" : `  (machine ${fixed(result.busyBefore * 100, 0)} % busy before)`}`,
      );
    }
  }
  return results;
}

/** Median over rounds of the per-round ratio a/b (both measured in the same round). */
function pairedRatio(a, b, pick) {
  if (!a || !b) return Number.NaN;
  return median(a.map((result, i) => pick(result) / pick(b[i])));
}

function ratioRange(a, b, pick) {
  const ratios = a.map((result, i) => pick(result) / pick(b[i]));
  return `${fixed(Math.min(...ratios))}–${fixed(Math.max(...ratios))}`;
}

function rateTables(results) {
  const describe = {
    none: "memory-store process, /open/ (no limit)",
    memory: "memory-store process, /limited/ (memory)",
    "none-r": "Redis-store process, /open/ (no limit)",
    redis: "Redis-store process, /limited/ (Redis)",
    "none-rb": "--tollgate-root build, Redis-store process, /open/",
    "redis-b": "--tollgate-root build, Redis-store process, /limited/",
  };
  const order = Object.keys(describe).filter((name) => results.has(name));
  const rows = order.map((name) => {
    const runs = results.get(name);
    const cpu = runs.map((r) => r.cpuUsPerRequest);
    return [
      name,
      describe[name],
      fixed(median(runs.map((r) => r.rps)), 0),
      fixed(median(cpu), 1),
      `${fixed(Math.min(...cpu), 1)}–${fixed(Math.max(...cpu), 1)}`,
      fixed(median(runs.map((r) => r.userUsPerRequest)), 1),
      fixed(median(runs.map((r) => r.systemUsPerRequest)), 1),
      name.startsWith("redis") ? fixed(median(runs.map((r) => r.redisUsPerRequest)), 1) : "—",
      fixed(median(runs.map((r) => r.p50Ms))),
      String(runs.reduce((sum, r) => sum + r.non2xx + r.socketErrors, 0)),
      `${runs.filter((r) => !r.quiet).length}/${runs.length}`,
    ];
  });
  const table = markdownTable(
    [
      "target",
      "what",
      "req/s",
      "gateway CPU µs/req",
      "range",
      "user",
      "system",
      "redis-server µs/req",
      "p50 ms",
      "non-2xx + socket errors",
      "rounds started busy",
    ],
    rows,
  );
  const cpu = (r) => r.cpuUsPerRequest;
  const pairs = [
    ["b/a: memory ÷ none (same process)", "memory", "none", 1.05],
    ["c/a: redis ÷ none-r (same process)", "redis", "none-r", 1.25],
    ["c/a across processes: redis ÷ none", "redis", "none", 1.25],
    ["none-r ÷ none (two processes, neither limited)", "none-r", "none", undefined],
    ["redis-b ÷ none-rb (the other build, same process)", "redis-b", "none-rb", 1.25],
    ["redis-b ÷ redis (the other build ÷ this one)", "redis-b", "redis", undefined],
  ].filter(([, a, b]) => results.has(a) && results.has(b));
  const ratioRows = pairs.map(([label, a, b, goal]) => {
    const ratio = pairedRatio(results.get(a), results.get(b), cpu);
    return [
      label,
      fixed(ratio, 3),
      ratioRange(results.get(a), results.get(b), cpu),
      goal === undefined ? "—" : `≤ ${fixed(goal)}: ${ratio <= goal ? "met" : "NOT met"}`,
    ];
  });
  const ratios = markdownTable(
    ["ratio of gateway CPU per request", "median of per-round ratios", "range", "goal"],
    ratioRows,
  );
  return { table, ratios, ratioRows };
}

// --- Instructions: the rate limits' cost where CPU time cannot resolve it --------------------------------

const INSTRUCTION_WARMUP = 6000;
const INSTRUCTION_REQUESTS = 3000;

/** Sends exactly `count` requests over 4 keep-alive connections; every answer must be a 200. */
async function sendCount(origin, path, headers, count) {
  const pool = new Pool(origin, { connections: 4, pipelining: 1, keepAliveTimeout: 60_000 });
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      const answer = await pool.request({
        method: "GET",
        path,
        headers,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
      await answer.body.dump();
      if (answer.statusCode !== 200) failed += 1;
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  await pool.close();
  if (failed > 0) throw new Error(`${failed} of ${count} requests to ${path} failed`);
}

/**
 * One gateway process under callgrind (as instructions-per-request.mjs runs its targets: main thread,
 * --single-threaded-gc, full collections counted from --trace-gc), its two routes measured in alternating
 * windows of INSTRUCTION_REQUESTS requests (open, limited, limited, open, open, limited) after
 * INSTRUCTION_WARMUP requests to each.
 */
async function instructionsOf(name, options, workDir) {
  const outPrefix = join(workDir, `callgrind.${name}`);
  const started = startProcess("valgrind", [
    "--tool=callgrind",
    "--separate-threads=yes",
    `--callgrind-out-file=${outPrefix}.%p`,
    process.execPath,
    "--single-threaded-gc",
    "--trace-gc",
    scriptPath,
    "--role",
    "gateway",
    JSON.stringify(options),
  ]);
  try {
    const ready = await readReadyLine(started, 240_000);
    const word = "Mark-Compact";
    let fullCollections = 0;
    let carried = "";
    started.child.stdout.on("data", (chunk) => {
      const text = carried + String(chunk);
      fullCollections += text.split(word).length - 1;
      carried = text.slice(-(word.length - 1));
    });
    const origin = `http://127.0.0.1:${ready.port}`;
    await expectBody64(`${origin}/limited/x`, ready.headers, 60_000);
    for (const path of ["/open/x", "/limited/x"])
      await sendCount(origin, path, ready.headers, INSTRUCTION_WARMUP);
    const pid = String(started.child.pid);
    const windows = [];
    const order = ["open", "limited", "limited", "open", "open", "limited"];
    for (let index = 0; index < order.length; index += 1) {
      await runToCompletion("callgrind_control", ["--zero", pid], 60_000);
      const fullBefore = fullCollections;
      await sendCount(origin, `/${order[index]}/x`, ready.headers, INSTRUCTION_REQUESTS);
      await runToCompletion("callgrind_control", ["--dump", pid], 60_000);
      // Thread 1 is the main (JavaScript) thread; its part of dump n is `<prefix>.<pid>.<n>-01`.
      const mainThread = `${outPrefix}.${pid}.${index + 1}-01`;
      for (let waited = 0; !existsSync(mainThread) && waited < 10_000; waited += 100) await sleep(100);
      const summary = /^summary: (\d+)/m.exec(readFileSync(mainThread, "utf8"));
      if (!summary) throw new Error(`no summary in ${mainThread}`);
      windows.push({
        route: order[index],
        perRequest: Number(summary[1]) / INSTRUCTION_REQUESTS,
        fullCollections: fullCollections - fullBefore,
      });
      log(
        `instructions ${name} ${order[index]}: ${fixed(Number(summary[1]) / INSTRUCTION_REQUESTS / 1000, 1)}k per request`,
      );
    }
    return windows;
  } finally {
    await stopProcess(started, 10_000);
  }
}

async function instructionRun(upstreamOrigin, redis, workDir) {
  const variants = [
    // Under valgrind the issuer's key set, fetched from this same process, takes far longer than 5 s.
    [
      "memory-store",
      {
        upstream: upstreamOrigin,
        auditPath: join(workDir, "instructions-memory.jsonl"),
        fetchTimeout: "120s",
      },
    ],
    [
      "redis-store",
      {
        upstream: upstreamOrigin,
        auditPath: join(workDir, "instructions-redis.jsonl"),
        redisUrl: redis.url,
        fetchTimeout: "120s",
      },
    ],
  ];
  // Two at a time: callgrind runs a process on one core.
  const measured = await Promise.all(
    variants.map(([name, options]) => instructionsOf(name, options, workDir)),
  );
  const rows = variants.map(([name], index) => {
    const windows = measured[index];
    // Windows with a full collection count 10–35 % more (instructions-per-request.mjs): left out when
    // the route has a window without one.
    const pick = (route) => {
      const all = windows.filter((w) => w.route === route);
      const clean = all.filter((w) => w.fullCollections === 0);
      return {
        values: (clean.length > 0 ? clean : all).map((w) => w.perRequest),
        dropped: all.length - clean.length,
      };
    };
    const open = pick("open");
    const limited = pick("limited");
    const ratio = median(limited.values) / median(open.values);
    return [
      name,
      `${fixed(median(open.values) / 1000, 1)}k (${open.values.map((v) => fixed(v / 1000, 1)).join(", ")})`,
      `${fixed(median(limited.values) / 1000, 1)}k (${limited.values.map((v) => fixed(v / 1000, 1)).join(", ")})`,
      fixed(ratio, 3),
      String(open.dropped + limited.dropped),
    ];
  });
  return markdownTable(
    [
      "process",
      "/open/ instructions per request (windows)",
      "/limited/ (windows)",
      "limited ÷ open",
      "windows left out (full collection)",
    ],
    rows,
  );
}

// --- Profile: where the Redis limit's time goes ---------------------------------------------------------

const packagePatterns = [
  [
    "ioredis and its parser",
    /node_modules\/(ioredis|@ioredis|redis-parser|redis-errors|standard-as-callback|denque|cluster-key-slot|lodash\.)/,
  ],
  ["rate-limiter-flexible", /node_modules\/rate-limiter-flexible\//],
  ["undici", /node_modules\/undici\//],
  ["other dependencies", /node_modules\//],
  ["tollgate (dist/)", /\/dist\//],
  ["node: internals", /^node:/],
];

function categoryOf(callFrame) {
  const { url, functionName } = callFrame;
  if (functionName === "(garbage collector)") return "garbage collector";
  if (functionName === "(program)") return "(program): V8/native outside JS";
  if (functionName === "(idle)") return "(idle)";
  if (functionName === "(root)") return "(root)";
  for (const [name, pattern] of packagePatterns) if (pattern.test(url)) return name;
  if (url === "") return "native functions (syscalls, builtins)";
  return "other";
}

/** Self time (µs) per category and per function of one .cpuprofile. */
function summariseProfile(path) {
  const profile = JSON.parse(readFileSync(path, "utf8"));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map();
  for (let i = 0; i < profile.samples.length; i += 1) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const categories = new Map();
  const functions = new Map();
  for (const [id, us] of selfUs) {
    const { callFrame } = byId.get(id);
    const category = categoryOf(callFrame);
    categories.set(category, (categories.get(category) ?? 0) + us);
    const where = callFrame.url.replace(/^.*\/(node_modules|dist)\//, "$1/");
    const key = `${callFrame.functionName || "(anonymous)"} ${where}${where ? `:${callFrame.lineNumber + 1}` : ""}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
  }
  return { categories, functions };
}

async function profileRun(settings, upstreamOrigin, redis, workDir) {
  const variants = [
    { name: "none", path: "/open/x", redisUrl: undefined },
    { name: "memory", path: "/limited/x", redisUrl: undefined },
    { name: "redis", path: "/limited/x", redisUrl: redis.url },
  ];
  const summaries = new Map();
  for (const variant of variants) {
    const dir = join(workDir, `profile-${variant.name}`);
    mkdirSync(dir, { recursive: true });
    const gateway = await startGatewayProcess(
      {
        upstream: upstreamOrigin,
        auditPath: join(workDir, `profile-${variant.name}.jsonl`),
        redisUrl: variant.redisUrl,
      },
      ["--cpu-prof", "--cpu-prof-dir", dir],
    );
    try {
      const url = gateway.origin + variant.path;
      await expectBody64(url, gateway.ready.headers);
      await beforeRound(settings);
      const wrkBase = {
        threads: settings.threads,
        connections: settings.connections,
        headers: gateway.ready.headers,
      };
      const warm = await runWrk({ ...wrkBase, url, seconds: settings.warmup });
      const measured = await runWrk({ ...wrkBase, url, seconds: settings.seconds });
      await stopProcess(gateway.started, 10_000);
      const file = readdirSync(dir).find((name) => name.endsWith(".cpuprofile"));
      if (file === undefined) throw new Error(`no CPU profile written for ${variant.name}`);
      // The profile covers the whole process (start-up and warm-up too): divide by every request served.
      const requests = warm.requests + measured.requests + 1;
      summaries.set(variant.name, { ...summariseProfile(join(dir, file)), requests });
      log(`profile ${variant.name}: ${requests} requests`);
    } finally {
      await stopProcess(gateway.started);
    }
  }
  const perRequest = (name, map, key) => (map.get(key) ?? 0) / summaries.get(name).requests;
  const categories = [...new Set([...summaries.values()].flatMap((s) => [...s.categories.keys()]))]
    .filter((category) => category !== "(idle)" && category !== "(root)")
    .sort(
      (a, b) =>
        perRequest("redis", summaries.get("redis").categories, b) -
        perRequest("redis", summaries.get("redis").categories, a),
    );
  const categoryRows = categories.map((category) => [
    category,
    ...variants.map((v) => fixed(perRequest(v.name, summaries.get(v.name).categories, category), 2)),
  ]);
  const total = (name) =>
    [...summaries.get(name).categories]
      .filter(([category]) => category !== "(idle)" && category !== "(root)")
      .reduce((sum, [, us]) => sum + us, 0) / summaries.get(name).requests;
  categoryRows.push(["all but idle", ...variants.map((v) => fixed(total(v.name), 2))]);
  const categoryTable = markdownTable(
    ["self time, µs per request (main thread, --cpu-prof)", ...variants.map((v) => v.name)],
    categoryRows,
  );
  const redisFunctions = summaries.get("redis").functions;
  const memoryFunctions = summaries.get("memory").functions;
  const added = [...redisFunctions.keys()]
    .map((key) => [key, perRequest("redis", redisFunctions, key), perRequest("memory", memoryFunctions, key)])
    .filter(([key]) => !/^\((idle|root)\)/.test(key))
    .sort((a, b) => b[1] - b[2] - (a[1] - a[2]))
    .slice(0, 15);
  const functionTable = markdownTable(
    ["function (self time)", "redis µs/req", "memory µs/req", "added"],
    added.map(([key, r, m]) => [`\`${key}\``, fixed(r, 2), fixed(m, 2), fixed(r - m, 2)]),
  );
  return { categoryTable, functionTable };
}

// --- Part 2: junk-token flood ----------------------------------------------------------------------------

/** Well-formed RS256 JWTs with the issuer's iss, aud and kid, signed by a key it does not publish. */
async function forgedTokens(ready, path) {
  const { generateDevSigningKey, signDevToken } = await import(join(distDir, "dev/dev-issuer-keys.js"));
  const { githubLikeClaims } = await import(join(distDir, "dev/dev-issuer.js"));
  const foreign = await generateDevSigningKey();
  const tokens = [];
  for (let i = 0; i < JUNK_TOKENS; i += 1) {
    tokens.push(
      await signDevToken(
        foreign,
        ready.issuerUrl,
        githubLikeClaims(),
        { audience: ready.audience, expiresInSeconds: 3600, keyId: ready.keyId },
        Date.now(),
      ),
    );
  }
  writeFileSync(path, JSON.stringify(tokens));
  return path;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Sequential valid requests on one keep-alive connection for `durationMs` (at most 50,000). */
async function measureValid(client, headers, durationMs) {
  const latencies = [];
  let failed = 0;
  const end = performance.now() + durationMs;
  while (performance.now() < end && latencies.length + failed < 50_000) {
    const started = performance.now();
    try {
      const answer = await client.request({
        method: "GET",
        path: "/open/x",
        headers,
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      await answer.body.dump();
      if (answer.statusCode === 200) latencies.push(performance.now() - started);
      else failed += 1;
    } catch {
      failed += 1;
    }
  }
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    failed,
    p50Ms: percentile(latencies, 50),
    p90Ms: percentile(latencies, 90),
    p99Ms: percentile(latencies, 99),
  };
}

/** Collects a child's stdout JSON lines; `waitFor` resolves with the first line that `test` accepts. */
function jsonLines(started) {
  const lines = [];
  const waiters = [];
  let buffered = "";
  started.child.stdout.setEncoding("utf8");
  started.child.stdout.on("data", (chunk) => {
    buffered += chunk;
    let newline = buffered.indexOf("\n");
    while (newline !== -1) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf("\n");
      if (!line.startsWith("{")) continue;
      try {
        const value = JSON.parse(line);
        lines.push(value);
        for (const waiter of [...waiters]) {
          if (waiter.test(value)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(value);
          }
        }
      } catch {
        // Not ours.
      }
    }
  });
  return {
    waitFor(test, timeoutMs) {
      const found = lines.find(test);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no such line after ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          test,
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value);
          },
        });
      });
    },
  };
}

async function floodCase(settings, gateway, validClient, junk) {
  const idle = await measureValid(validClient, gateway.ready.headers, settings.idleSeconds * 1000);
  const pid = gateway.started.child.pid;
  const flood = startProcess(process.execPath, [
    scriptPath,
    "--role",
    "flood",
    JSON.stringify({
      port: gateway.ready.port,
      localAddress: FLOOD_ADDRESS,
      concurrency: junk.load.concurrency,
      rate: junk.load.rate,
      seconds: settings.floodSeconds,
      path: "/open/x",
      kind: junk.kind,
      tokensFile: junk.tokensFile,
    }),
  ]);
  const lines = jsonLines(flood);
  try {
    await lines.waitFor((line) => line.flooding === true, 20_000);
    const cpuBefore = cpuTimeMs(pid);
    const floodStarted = performance.now();
    await sleep(500);
    const during = await measureValid(
      validClient,
      gateway.ready.headers,
      settings.floodSeconds * 1000 - 1000 - (performance.now() - floodStarted - 500),
    );
    const summary = await lines.waitFor((line) => line.summary === true, (settings.floodSeconds + 10) * 1000);
    const cpuMs = cpuTimeMs(pid) - cpuBefore;
    return {
      idle,
      during,
      ratio: during.p50Ms / idle.p50Ms,
      flood: summary,
      floodRate: summary.answered / summary.seconds,
      // Everything the gateway answered in the window: the flood's requests and the valid client's.
      gatewayUsPerRequest: (cpuMs * 1000) / (summary.answered + during.requests + during.failed),
    };
  } finally {
    await stopProcess(flood);
  }
}

async function floodRounds(settings, gateways, validClients, junkFor) {
  const cases = [];
  for (const load of settings.floodLoads)
    for (const throttle of ["off", "on"])
      for (const kind of ["malformed", "badsig"])
        cases.push({ throttle, kind, load, name: `${throttle}/${kind}/${load.label}` });
  const results = new Map(cases.map((c) => [c.name, []]));
  for (let round = 0; round < settings.floodRounds; round += 1) {
    for (const c of rotate(cases, round)) {
      const machine = await beforeRound(settings);
      const result = await floodCase(settings, gateways[c.throttle], validClients[c.throttle], {
        kind: c.kind,
        load: c.load,
        tokensFile: junkFor[c.throttle],
      });
      results.get(c.name).push({ ...result, ...machine });
      log(
        `flood round ${round + 1}/${settings.floodRounds} ${c.name.padEnd(18)}` +
          `  valid p50 idle ${fixed(result.idle.p50Ms, 3)} ms, flood ${fixed(result.during.p50Ms, 3)} ms (×${fixed(result.ratio)})` +
          `  flood ${fixed(result.floodRate, 0)} answers/s ${JSON.stringify(result.flood.statuses)}` +
          `  gateway ${fixed(result.gatewayUsPerRequest, 1)} µs CPU/req` +
          `${result.idle.failed + result.during.failed ? `  VALID FAILED ${result.idle.failed + result.during.failed}` : ""}` +
          `${machine.quiet ? "" : `  (machine ${fixed(machine.busyBefore * 100, 0)} % busy before)`}`,
      );
    }
  }
  return results;
}

function floodTable(results) {
  const rows = [];
  for (const [name, runs] of results) {
    const statuses = {};
    for (const run of runs)
      for (const [status, count] of Object.entries(run.flood.statuses))
        statuses[status] = (statuses[status] ?? 0) + count;
    const ratios = runs.map((r) => r.ratio);
    rows.push([
      name,
      fixed(median(runs.map((r) => r.idle.p50Ms)), 3),
      fixed(median(runs.map((r) => r.during.p50Ms)), 3),
      `**${fixed(median(ratios))}**`,
      `${fixed(Math.min(...ratios))}–${fixed(Math.max(...ratios))}`,
      fixed(median(runs.map((r) => r.during.p99Ms)), 3),
      fixed(median(runs.map((r) => r.during.requests)), 0),
      fixed(median(runs.map((r) => r.floodRate)), 0),
      Object.entries(statuses)
        .map(([status, count]) => `${status}: ${count}`)
        .join(", "),
      fixed(median(runs.map((r) => r.gatewayUsPerRequest)), 1),
      String(runs.reduce((sum, r) => sum + r.idle.failed + r.during.failed + r.flood.errors, 0)),
      `${runs.filter((r) => !r.quiet).length}/${runs.length}`,
    ]);
  }
  return markdownTable(
    [
      "throttle / junk / flood connections",
      "valid p50 idle ms",
      "valid p50 in flood ms",
      "flood ÷ idle (median)",
      "range",
      "valid p99 in flood ms",
      "valid requests in flood",
      "flood answers/s",
      "flood statuses (all rounds)",
      "gateway CPU µs/req in flood",
      "errors",
      "rounds started busy",
    ],
    rows,
  );
}

// --- main ---------------------------------------------------------------------------------------------

async function main() {
  const settings = harnessSettings();
  const startedAt = Date.now();
  const facts = machineFacts();
  log(`machine: ${facts.nproc} cores, ${facts.cpu}, node ${facts.node}`);
  log(`settings: ${JSON.stringify(settings)}`);
  const workDir = mkdtempSync(join(tmpdir(), "tollgate-abuse-"));
  const processes = [];
  const clients = [];
  const raw = { facts, settings };
  const out = [];
  const command = `node bench/abuse-controls.mjs ${process.argv.slice(2).join(" ")}`.trim();
  out.push(
    `### Abuse controls (${facts.date})`,
    "",
    `Machine: ${facts.nproc} cores, ${facts.cpu}; node ${facts.node}.`,
  );
  out.push(`Command: \`${command}\``, "");
  try {
    const upstream = startProcess(process.execPath, [join(benchDir, "targets", "upstream.mjs")]);
    processes.push(upstream);
    const upstreamOrigin = `http://127.0.0.1:${(await readReadyLine(upstream)).port}`;

    if (settings.part !== "flood") {
      const redis = await startRedis();
      processes.push(redis.started);
      const memoryGateway = await startGatewayProcess({
        upstream: upstreamOrigin,
        auditPath: join(workDir, "memory.jsonl"),
      });
      processes.push(memoryGateway.started);
      const redisGateway = await startGatewayProcess({
        upstream: upstreamOrigin,
        auditPath: join(workDir, "redis.jsonl"),
        redisUrl: redis.url,
      });
      processes.push(redisGateway.started);
      const target = (name, gateway, path) => ({
        name,
        gateway,
        url: gateway.origin + path,
        headers: gateway.ready.headers,
      });
      const targets = [
        target("none", memoryGateway, "/open/x"),
        target("memory", memoryGateway, "/limited/x"),
        target("none-r", redisGateway, "/open/x"),
        target("redis", redisGateway, "/limited/x"),
      ];
      if (flags["tollgate-root"] !== undefined) {
        // Another build (a checkout after `npm run build`), with the Redis store: side by side with this one.
        const other = await startGatewayProcess({
          upstream: upstreamOrigin,
          auditPath: join(workDir, "redis-b.jsonl"),
          // Database 1: its counters apart from this build's, so neither can use up the other's limit.
          redisUrl: `${redis.url}/1`,
          distDir: resolve(flags["tollgate-root"], "dist"),
        });
        processes.push(other.started);
        targets.push(target("none-rb", other, "/open/x"), target("redis-b", other, "/limited/x"));
        log(
          `other build counts: /check/ answered ${(await expectLimitEnforced(other, "redis-b")).join(", ")}`,
        );
      }
      for (const t of targets) await expectBody64(t.url, t.headers);
      log(
        `memory store counts: /check/ answered ${(await expectLimitEnforced(memoryGateway, "memory")).join(", ")}`,
      );
      log(
        `Redis store counts: /check/ answered ${(await expectLimitEnforced(redisGateway, "redis")).join(", ")}`,
      );
      const results = await rateRounds(settings, targets, redis);
      const keys = await runToCompletion(
        "redis-cli",
        ["-p", String(redis.port), "--scan", "--pattern", "tollgate:rl:*"],
        5000,
      );
      const counters = [];
      for (const key of keys.stdout.split("\n").filter(Boolean)) {
        const value = await runToCompletion("redis-cli", ["-p", String(redis.port), "get", key], 5000);
        counters.push(`${key} = ${value.stdout.trim()}`);
      }
      log(`Redis counters after the run: ${counters.join("; ")}`);
      const { table, ratios } = rateTables(results);
      raw.rate = Object.fromEntries(results);
      raw.redisCounters = counters;
      out.push(
        `Cost of a rate limit: wrk -t${settings.threads} -c${settings.connections}, keep-alive, one token; ` +
          `${settings.rounds} rounds × ${settings.seconds} s per target after ${settings.warmup} s unmeasured, ` +
          "alternating, the order rotating. CPU is the gateway process's own (user + system, all threads).",
        "",
        table,
        "",
        ratios,
        "",
        `Redis counters after the run: ${counters.length > 0 ? counters.join("; ") : "none left (the 60 s window of the last Redis round had ended)"}`,
        "",
      );
      if (settings.instructions) {
        const table = await instructionRun(upstreamOrigin, redis, workDir);
        out.push(
          `Instructions on the main thread (valgrind callgrind, --single-threaded-gc; one process per store, ` +
            `${INSTRUCTION_WARMUP} requests of warm-up per route, then alternating windows of ${INSTRUCTION_REQUESTS} ` +
            "requests over 4 connections; medians of the windows; blind to kernel time, so not the Redis limit's whole cost):",
          "",
          table,
          "",
        );
      }
      if (settings.profile) {
        const { categoryTable, functionTable } = await profileRun(settings, upstreamOrigin, redis, workDir);
        out.push(
          `CPU profile (\`node --cpu-prof\`, one fresh gateway per variant, ${settings.warmup} + ${settings.seconds} s of wrk; ` +
            "self time of the main thread divided by the requests served):",
          "",
          categoryTable,
          "",
          "Functions with the most self time added by the Redis limit (redis − memory):",
          "",
          functionTable,
          "",
        );
      }
    }

    if (settings.part !== "rate") {
      const gateways = {};
      const validClients = {};
      const junkFor = {};
      for (const throttle of ["off", "on"]) {
        const gateway = await startGatewayProcess({
          upstream: upstreamOrigin,
          auditPath: join(workDir, `flood-${throttle}.jsonl`),
          ...(throttle === "on" ? { authFailures: AUTH_FAILURES } : {}),
        });
        processes.push(gateway.started);
        await expectBody64(`${gateway.origin}/open/x`, gateway.ready.headers);
        gateways[throttle] = gateway;
        const client = new Client(gateway.origin, { keepAliveTimeout: 60_000, pipelining: 1 });
        clients.push(client);
        validClients[throttle] = client;
        junkFor[throttle] = await forgedTokens(gateway.ready, join(workDir, `forged-${throttle}.json`));
      }
      const results = await floodRounds(settings, gateways, validClients, junkFor);
      raw.flood = Object.fromEntries(results);
      out.push(
        `Junk-token flood: a valid client (127.0.0.1, sequential, one keep-alive connection) measures p50 for ` +
          `${settings.idleSeconds} s idle, then during a ${settings.floodSeconds} s flood from ${FLOOD_ADDRESS} ` +
          `(keep-alive connections; cN: N connections in a closed loop, cN@R/s: N connections capped at R ` +
          `requests/s in all); ${settings.floodRounds} rounds of all cases, rotating. Throttle on: ` +
          `listen.auth_failures { max: ${AUTH_FAILURES.max}, per: ${AUTH_FAILURES.per} }.`,
        "",
        floodTable(results),
        "",
      );
    }

    process.stdout.write(`${out.join("\n")}\n`);
    const resultsDir = join(benchDir, "results");
    mkdirSync(resultsDir, { recursive: true });
    const rawPath = join(resultsDir, `abuse-controls-${facts.date.replace(/[:.]/g, "-")}.json`);
    writeFileSync(rawPath, `${JSON.stringify(raw, null, 2)}\n`);
    log(`raw results: ${rawPath}; took ${fixed((Date.now() - startedAt) / 1000, 0)} s`);
  } finally {
    for (const client of clients) await client.close().catch(() => {});
    for (const started of processes.reverse()) await stopProcess(started);
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (flags.role === "gateway") await serveGateway(JSON.parse(positionals[0] ?? "{}"));
else if (flags.role === "flood") await runFlood(JSON.parse(positionals[0] ?? "{}"));
else if (flags.role !== undefined) throw new Error(`unknown --role ${flags.role}`);
else {
  await main();
  // undici's sockets and the children's pipes are closed; exit without waiting for stray timers.
  process.exit(0);
}
