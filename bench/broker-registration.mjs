// The runner token broker's cost and speed, in one process, all on 127.0.0.1:
//   1. GitHub calls: 1,000 runners registering for one scope, spread evenly over 50 simulated minutes (one
//      request every 3 s of an injected clock), then on to 60 minutes; and 200 concurrent first requests
//      for a cold scope. The GitHub API is a stand-in that counts its calls and answers tokens valid for an
//      hour of the same clock.
//   2. Cached latency: POST /register for a cached scope through the real gateway (startGateway, as
//      `tollgate serve` wires it, auditing on to a file), sequential requests on a keep-alive connection,
//      with `authorization: none` (the github-runner-token-proxy mode) and `authorization: oidc` (a dev
//      issuer's token, verified from the verified-token cache, and a grant on `{repository}`).
//
//   npm run build && node bench/broker-registration.mjs [--quick] [--rounds N] [--requests N]
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Writable } from "node:stream";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";
import { compileConfigText } from "../dist/config/index.js";
import { createDevIssuer, githubLikeClaims } from "../dist/dev/dev-issuer.js";
import { startGateway } from "../dist/server/index.js";
import { fixed, machineFacts, markdownTable, median, rotate } from "./lib/measure.mjs";

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    requests: { type: "string" },
  },
});
const rounds = Number(flags.rounds ?? (flags.quick ? 3 : 5));
// Each latency round is bounded in count (and every request has a timeout).
const requestsPerRound = Number(flags.requests ?? (flags.quick ? 1000 : 3000));
const warmupRequests = 300;
const pat = "ghp_benchmarkbenchmarkbenchmark0000";

let now = Date.parse("2026-01-01T00:00:00Z");
const simulatedClock = () => now;

/** A GitHub API stand-in: counts registration-token calls, answers tokens valid one hour of `clock`. */
async function startGitHubStandIn(clock) {
  const counts = { registration: 0, other: 0 };
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const path = (req.url ?? "").split("?")[0];
      let status = 404;
      let body = { message: "Not Found" };
      if (req.headers.authorization !== `Bearer ${pat}`) {
        status = 401;
        body = { message: "Bad credentials" };
      } else if (req.method === "GET" && path === "/rate_limit") {
        status = 200;
        body = { resources: {} };
      } else if (req.method === "POST" && /\/actions\/runners\/registration-token$/.test(path)) {
        counts.registration++;
        status = 201;
        body = {
          token: `BENCH${String(counts.registration).padStart(24, "0")}`,
          expires_at: new Date(clock() + 3_600_000).toISOString(),
        };
      } else {
        counts.other++;
      }
      const text = JSON.stringify(body);
      res.writeHead(status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(text),
      });
      res.end(text);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    counts,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const discard = new Writable({ write: (_chunk, _encoding, done) => done() });

async function startBrokerGateway({ yaml, clock, auditSink }) {
  const { config, problems } = compileConfigText(yaml, { env: {}, sourceName: "bench.yaml" });
  if (config === undefined) throw new Error(`bench configuration invalid: ${JSON.stringify(problems)}`);
  const running = await startGateway(config, {
    listen: { host: "127.0.0.1", port: 0 },
    auditSink,
    logDestination: discard,
    logLevel: "warn",
    env: { GITHUB_TOKEN: pat },
    ...(clock ? { clock } : {}),
  });
  await running.keysLoaded;
  const url = `http://127.0.0.1:${running.address.port}`;
  for (let attempt = 0; ; attempt++) {
    const { statusCode, body } = await request(`${url}/readyz`);
    await body.text();
    if (statusCode === 200) break;
    if (attempt > 200) throw new Error("the broker did not become ready");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { running, url };
}

const noneYaml = (apiUrl) => `broker:
  authorization: none
  github:
    api_url: ${apiUrl}
  allowed_scopes: ["match:octo-org/.*"]
`;

const oidcYaml = (apiUrl, issuerUrl) => `issuers:
  - name: dev
    issuer: ${issuerUrl}
    audiences: [tollgate-bench]
policies:
  octo-ci:
    claims:
      repository_owner_id: 65
      event_name: push
broker:
  github:
    api_url: ${apiUrl}
  allowed_scopes: ["match:octo-org/.*"]
  grants:
    - allow: [octo-ci]
      actions: [register, remove]
      scopes: ["{repository}"]
`;

async function register(dispatcher, url, scope, headers = {}) {
  const { statusCode, body } = await request(`${url}/register`, {
    method: "POST",
    dispatcher,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ scope }),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await body.text();
  if (statusCode !== 200) throw new Error(`POST /register answered ${statusCode}: ${text}`);
  return JSON.parse(text);
}

const dir = await mkdtemp(join(tmpdir(), "tollgate-bench-broker-"));
const dispatcher = new Agent({ connections: 1, pipelining: 1, keepAliveTimeout: 60_000 });
const cleanups = [];
try {
  // ---- 1. GitHub calls under a simulated clock ----------------------------------------------------
  const simulatedGitHub = await startGitHubStandIn(simulatedClock);
  cleanups.push(() => simulatedGitHub.close());
  const simulated = await startBrokerGateway({
    yaml: noneYaml(simulatedGitHub.url),
    clock: simulatedClock,
    auditSink: join(dir, "audit-simulated.jsonl"),
  });
  cleanups.push(() => simulated.running.close());
  const start = now;
  const tokens = new Set();
  for (let i = 0; i < 1000; i++) {
    now = start + i * 3000; // 1,000 requests over 49 min 57 s
    tokens.add((await register(dispatcher, simulated.url, "octo-org/fleet")).token);
  }
  const callsIn50Minutes = simulatedGitHub.counts.registration;
  const tokensIn50Minutes = tokens.size;
  for (let i = 1000; i < 1200; i++) {
    now = start + i * 3000; // on to 60 minutes
    await register(dispatcher, simulated.url, "octo-org/fleet");
  }
  const callsIn60Minutes = simulatedGitHub.counts.registration;
  const beforeBurst = simulatedGitHub.counts.registration;
  const burstAgent = new Agent({ connections: 256 });
  await Promise.all(Array.from({ length: 200 }, () => register(burstAgent, simulated.url, "octo-org/burst")));
  await burstAgent.close();
  const burstCalls = simulatedGitHub.counts.registration - beforeBurst;

  // ---- 2. Cached latency, real clock --------------------------------------------------------------
  const github = await startGitHubStandIn(Date.now);
  cleanups.push(() => github.close());
  const issuer = await createDevIssuer({ host: "127.0.0.1" });
  cleanups.push(() => issuer.close());
  const none = await startBrokerGateway({
    yaml: noneYaml(github.url),
    auditSink: join(dir, "audit-none.jsonl"),
  });
  cleanups.push(() => none.running.close());
  const oidc = await startBrokerGateway({
    yaml: oidcYaml(github.url, issuer.issuerUrl),
    auditSink: join(dir, "audit-oidc.jsonl"),
  });
  cleanups.push(() => oidc.running.close());
  const token = await issuer.mint(githubLikeClaims(), { audience: "tollgate-bench", expiresInSeconds: 3600 });
  const targets = {
    none: { url: none.url, headers: {} },
    oidc: { url: oidc.url, headers: { authorization: `Bearer ${token}` } },
  };
  const results = { none: [], oidc: [] };
  for (const target of Object.values(targets)) {
    for (let i = 0; i < warmupRequests; i++)
      await register(dispatcher, target.url, "octo-org/octo-repo", target.headers);
  }
  const callsBeforeLatency = github.counts.registration;
  for (let round = 0; round < rounds; round++) {
    for (const name of rotate(Object.keys(targets), round)) {
      const target = targets[name];
      const samples = new Float64Array(requestsPerRound);
      for (let i = 0; i < requestsPerRound; i++) {
        const began = performance.now();
        await register(dispatcher, target.url, "octo-org/octo-repo", target.headers);
        samples[i] = performance.now() - began;
      }
      const sorted = [...samples].sort((a, b) => a - b);
      const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
      results[name].push({
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
      });
    }
  }
  const callsDuringLatency = github.counts.registration - callsBeforeLatency;

  const facts = machineFacts();
  console.log(`Machine: ${facts.nproc} cores, ${facts.cpu}; node ${facts.node}; ${facts.date}`);
  console.log(
    "\nGitHub calls for one scope (simulated clock, tokens valid 1 h, refreshed 5 min before expiry):\n",
  );
  console.log(
    markdownTable(
      ["workload", "requests", "GitHub calls", "distinct tokens"],
      [
        ["1,000 registrations over 50 min (one every 3 s)", 1000, callsIn50Minutes, tokensIn50Minutes],
        ["… continued to 60 min", 1200, callsIn60Minutes, "—"],
        ["200 concurrent first requests, cold scope", 200, burstCalls, "—"],
      ],
    ),
  );
  console.log(
    `\nCached POST /register, ${rounds} alternating rounds × ${requestsPerRound} sequential requests on one keep-alive connection (after ${warmupRequests} warm-up); medians over rounds, ms:\n`,
  );
  console.log(
    markdownTable(
      ["authorization", "p50", "p90", "p99", "mean", "GitHub calls during measurement"],
      Object.entries(results).map(([name, rows]) => [
        name,
        fixed(median(rows.map((row) => row.p50)), 3),
        fixed(median(rows.map((row) => row.p90)), 3),
        fixed(median(rows.map((row) => row.p99)), 3),
        fixed(median(rows.map((row) => row.mean)), 3),
        callsDuringLatency,
      ]),
    ),
  );
  const p50None = median(results.none.map((row) => row.p50));
  const p50Oidc = median(results.oidc.map((row) => row.p50));
  console.log("\nGoals:");
  console.log(
    `- one GitHub call for 1,000 registrations within 50 minutes: ${callsIn50Minutes} call(s): ${callsIn50Minutes === 1 ? "met" : "NOT met"}`,
  );
  console.log(
    `- cached answer under 1 ms at p50: none ${fixed(p50None, 3)} ms, oidc ${fixed(p50Oidc, 3)} ms: ${p50None < 1 && p50Oidc < 1 ? "met" : "NOT met"}`,
  );
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  await dispatcher.close();
  await rm(dir, { recursive: true, force: true });
}
