// tollgate behind an ingress (issue 15): what nginx's auth_request to tollgate's forward-auth endpoint
// costs, cached and not, against nginx alone and against tollgate as the proxy.
//
// One upstream (a node:http process answering 64-byte bodies), each server its own process, wrk as the
// load generator; rounds alternate between the targets (rotating the order each round), and each round's
// figure is compared with nginx alone in the same round (paired ratios, medians quoted):
//
//   nginx               nginx proxying to the upstream (bench/lib/nginx.mjs, as gateway-throughput.mjs)
//   nginx-auth-cached   examples/ingress/nginx/tollgate-auth.conf: auth_request to tollgate, answers cached
//   nginx-auth          the same configuration without `proxy_cache` (one subrequest per request)
//   tollgate            tollgate as the proxy (bench/targets/tollgate-gateway.mjs)
//   nginx-auth-lua      examples/ingress/nginx/tollgate-auth-lua.conf: decisions kept in a lua_shared_dict
//                       (needs Debian's libnginx-mod-http-lua; left out, and said, without it)
//   nginx-subrequest    the reference for the cached goal: the example configuration with its auth
//                       location answered by nginx itself (`return 200`, no backend, no cache): what
//                       auth_request's subrequest costs nginx whoever decides, the floor of any cached
//                       forward-auth design
//
// Both auth variants ask the same tollgate process (bench/targets/tollgate-forward-auth.mjs,
// server.forward_auth with max_age 60s and one mode: forward_auth route), with one token.
//
//   npm run build && node bench/ingress.mjs [--quick] [--rounds N] [--seconds N] [--connections N]
//                                           [--cache-dir DIR]   (nginx's answer cache; default: a folder
//                                                                in /dev/shm, a tmpfs, as the example says)
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { waitForQuiet } from "./lib/machine-load.mjs";
import { expectBody64, fixed, machineFacts, markdownTable, median, rotate, runWrk } from "./lib/measure.mjs";
import { startNginx } from "./lib/nginx.mjs";
import { freeLoopbackPort, readReadyLine, startProcess, stopProcess } from "./lib/processes.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const exampleConf = join(benchDir, "..", "examples", "ingress", "nginx", "tollgate-auth.conf");
const luaExampleConf = join(benchDir, "..", "examples", "ingress", "nginx", "tollgate-auth-lua.conf");
const nginxModules = "/usr/lib/nginx/modules";
const withLua = existsSync(join(nginxModules, "ngx_http_lua_module.so"));
const TARGETS = [
  "nginx",
  "nginx-auth-cached",
  "nginx-auth",
  "tollgate",
  "nginx-subrequest",
  ...(withLua ? ["nginx-auth-lua"] : []),
];

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    seconds: { type: "string" },
    connections: { type: "string" },
    "cache-dir": { type: "string" },
  },
});
const settings = {
  rounds: Number(flags.rounds ?? (flags.quick ? 3 : 5)),
  seconds: Number(flags.seconds ?? (flags.quick ? 3 : 8)),
  connections: Number(flags.connections ?? 32),
  threads: 2,
  warmupSeconds: 2,
};

function log(message) {
  process.stderr.write(`${message}\n`);
}

async function startNodeTarget(script, args) {
  const started = startProcess(process.execPath, [join(benchDir, "targets", script), ...args]);
  const ready = await readReadyLine(started, 20_000);
  return { started, ready };
}

/**
 * The example nginx configuration with the bench's addresses, wrapped in the same http {} settings as
 * nginx alone (one worker, keep-alive requests raised on both sides: bench/lib/nginx.mjs says why).
 * `cached: false` removes the `proxy_cache` line: every request then asks tollgate.
 */
function authNginxConfig({ dir, cacheDir, name, port, upstreamPort, tollgatePort, cached, floor, lua }) {
  let conf = readFileSync(lua ? luaExampleConf : exampleConf, "utf8");
  if (floor) {
    // The reference: the auth location answers 200 itself (no tollgate, no cache lookup).
    const at = conf.indexOf("    location = /_tollgate_auth {");
    if (at === -1) throw new Error("the example configuration no longer has its auth location");
    conf = `${conf.slice(0, at)}    location = /_tollgate_auth {\n        internal;\n        return 200;\n    }\n}\n`;
  }
  const replacements = {
    ...(lua ? {} : { "/var/cache/nginx/tollgate-auth": join(cacheDir, `${name}-cache`) }),
    "server 127.0.0.1:8080;": `server 127.0.0.1:${tollgatePort};\n    keepalive_requests 1000000;`,
    "server 127.0.0.1:9000;": `server 127.0.0.1:${upstreamPort};\n    keepalive_requests 1000000;`,
    "listen 80;": `listen 127.0.0.1:${port};`,
    ...(cached || floor || lua ? {} : { "        proxy_cache tollgate_auth;\n": "" }),
  };
  for (const [from, to] of Object.entries(replacements)) {
    if (!conf.includes(from)) throw new Error(`the example configuration no longer contains ${from}`);
    conf = conf.split(from).join(to);
  }
  const temp = ["client_body_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"];
  const modules = lua
    ? `load_module ${join(nginxModules, "ndk_http_module.so")};\nload_module ${join(nginxModules, "ngx_http_lua_module.so")};\n`
    : "";
  return `${modules}worker_processes 1;
daemon off;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "nginx-error.log")} warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
${temp.map((name) => `  ${name}_path ${join(dir, name)};`).join("\n")}
${conf}
}
`;
}

async function startAuthNginx(workDir, cacheDir, name, ports, cached, floor = false, lua = false) {
  const dir = join(workDir, name);
  mkdirSync(dir, { recursive: true });
  const port = await freeLoopbackPort();
  const configPath = join(dir, "nginx.conf");
  const config = authNginxConfig({ dir, cacheDir, name, port, ...ports, cached, floor, lua });
  writeFileSync(configPath, config);
  const started = startProcess("nginx", ["-p", dir, "-c", configPath, "-e", join(dir, "early.log")]);
  return { started, port, config };
}

async function main() {
  const workDir = mkdtempSync(join(tmpdir(), "tollgate-bench-ingress-"));
  // As root, nginx's worker runs as nobody: it must reach the cache folder nginx creates for it in here.
  chmodSync(workDir, 0o755);
  // The example keeps nginx's answer cache on a tmpfs (a cache hit reads the entry's file; on a disk file
  // system that also touches the disk's metadata): the bench does as the example says.
  const ownCacheDir = flags["cache-dir"] === undefined && existsSync("/dev/shm");
  const cacheDir =
    flags["cache-dir"] ?? (ownCacheDir ? mkdtempSync("/dev/shm/tollgate-bench-ingress-") : workDir);
  chmodSync(cacheDir, 0o755);
  const stops = [];
  try {
    const upstream = await startNodeTarget("upstream.mjs", []);
    stops.push(upstream.started);
    const upstreamPort = Number(upstream.ready.port);
    const forwardAuth = await startNodeTarget("tollgate-forward-auth.mjs", [
      JSON.stringify({ auditPath: join(workDir, "forward-auth-audit.jsonl") }),
    ]);
    stops.push(forwardAuth.started);
    const proxy = await startNodeTarget("tollgate-gateway.mjs", [
      JSON.stringify({
        upstream: `http://127.0.0.1:${upstreamPort}`,
        auditPath: join(workDir, "proxy-audit.jsonl"),
      }),
    ]);
    stops.push(proxy.started);
    const nginx = await startNginx({ dir: workDir, upstreamPort });
    stops.push(nginx.started);
    const ports = { upstreamPort, tollgatePort: Number(forwardAuth.ready.port) };
    const cached = await startAuthNginx(workDir, cacheDir, "nginx-auth-cached", ports, true);
    stops.push(cached.started);
    const uncached = await startAuthNginx(workDir, cacheDir, "nginx-auth", ports, false);
    stops.push(uncached.started);
    const floor = await startAuthNginx(workDir, cacheDir, "nginx-subrequest", ports, false, true);
    stops.push(floor.started);
    const luaNginx = withLua
      ? await startAuthNginx(workDir, cacheDir, "nginx-auth-lua", ports, false, false, true)
      : undefined;
    if (luaNginx !== undefined) stops.push(luaNginx.started);
    else log("nginx-auth-lua left out: no Lua module (apt-get install libnginx-mod-http-lua)");

    const authHeaders = forwardAuth.ready.headers;
    const targets = new Map([
      ["nginx", { url: `http://127.0.0.1:${nginx.port}/artifacts/hello`, headers: {} }],
      ["nginx-auth-cached", { url: `http://127.0.0.1:${cached.port}/artifacts/hello`, headers: authHeaders }],
      ["nginx-auth", { url: `http://127.0.0.1:${uncached.port}/artifacts/hello`, headers: authHeaders }],
      ["tollgate", { url: `http://127.0.0.1:${proxy.ready.port}/bench/hello`, headers: proxy.ready.headers }],
      ["nginx-subrequest", { url: `http://127.0.0.1:${floor.port}/artifacts/hello`, headers: authHeaders }],
      ...(luaNginx === undefined
        ? []
        : [
            [
              "nginx-auth-lua",
              { url: `http://127.0.0.1:${luaNginx.port}/artifacts/hello`, headers: authHeaders },
            ],
          ]),
    ]);
    for (const [name, target] of targets) {
      await expectBody64(target.url, target.headers);
      // Deny twin: without the token the auth variants must refuse (else they measure nothing).
      if (name.startsWith("nginx-auth")) {
        const refused = await fetch(target.url);
        if (refused.status !== 401) throw new Error(`${name} answered ${refused.status} without a token`);
      }
    }

    const wrkBase = { threads: settings.threads, connections: settings.connections };
    for (const [, target] of targets)
      await runWrk({ ...wrkBase, ...target, seconds: settings.warmupSeconds });
    const results = new Map(TARGETS.map((name) => [name, []]));
    const askedBefore = auditLines(join(workDir, "forward-auth-audit.jsonl"));
    for (let round = 0; round < settings.rounds; round += 1) {
      for (const name of rotate(TARGETS, round)) {
        const { quiet, busy } = await waitForQuiet({ maxWaitMs: 2000 });
        const wrk = await runWrk({ ...wrkBase, ...targets.get(name), seconds: settings.seconds });
        results.get(name).push({ ...wrk, quiet, busy });
        const errors = wrk.non2xx + wrk.socketErrors;
        log(
          `round ${round + 1}/${settings.rounds} ${name.padEnd(18)} ${fixed(wrk.rps, 0).padStart(7)} req/s` +
            `  p50 ${fixed(wrk.p50Ms)} ms  p99 ${fixed(wrk.p99Ms)} ms${errors ? `  ERRORS ${errors}` : ""}` +
            `${quiet ? "" : `  (machine ${fixed(busy * 100, 0)} % busy before)`}`,
        );
      }
    }
    // tollgate's audit lines are its forward-auth answers: how often each variant really asked.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const asked = auditLines(join(workDir, "forward-auth-audit.jsonl")) - askedBefore;
    const authRequests = ["nginx-auth-cached", "nginx-auth", "nginx-auth-lua"].map((name) =>
      (results.get(name) ?? []).reduce((sum, r) => sum + r.requests, 0),
    );

    const base = results.get("nginx");
    const rows = TARGETS.map((name) => {
      const runs = results.get(name);
      const rps = runs.map((r) => r.rps);
      return [
        name,
        fixed(median(rps), 0),
        `${fixed(Math.min(...rps), 0)}–${fixed(Math.max(...rps), 0)}`,
        fixed(median(runs.map((r) => r.p50Ms))),
        fixed(median(runs.map((r) => r.p99Ms))),
        fixed(median(runs.map((r, i) => r.rps / base[i].rps))),
        String(runs.reduce((sum, r) => sum + r.non2xx + r.socketErrors, 0)),
        `${runs.filter((r) => !r.quiet).length}/${runs.length}`,
      ];
    });
    const facts = machineFacts();
    process.stdout.write(
      `${[
        `Machine: ${facts.nproc} cores, ${facts.cpu}; Node ${facts.node}; ${facts.nginx}; ${facts.date}`,
        `Command: node bench/ingress.mjs${flags.quick ? " --quick" : ""} (answer cache in ${ownCacheDir ? "/dev/shm" : cacheDir}; ${settings.rounds} rounds × ${settings.seconds} s, wrk ${settings.threads} threads, ${settings.connections} connections)`,
        "",
        markdownTable(
          [
            "target",
            "req/s (median)",
            "req/s range",
            "p50 ms",
            "p99 ms",
            "× nginx (paired median)",
            "errors",
            "rounds started busy",
          ],
          rows,
        ),
        "",
        `tollgate answered ${asked} forward-auth subrequests for ${authRequests[0] + authRequests[1]} requests through the auth variants (${authRequests[0]} file-cached, ${authRequests[1]} uncached, ${authRequests[2]} kept in Lua's memory).`,
        "",
        "nginx configuration of nginx-auth-cached:",
        "```nginx",
        cached.config.trim(),
        "```",
      ].join("\n")}\n`,
    );
  } finally {
    for (const started of stops.reverse()) await stopProcess(started);
    rmSync(workDir, { recursive: true, force: true });
    if (ownCacheDir) rmSync(cacheDir, { recursive: true, force: true });
  }
}

function auditLines(path) {
  try {
    return readFileSync(path, "utf8")
      .split("\n")
      .filter((line) => line.includes('"forward_auth":true')).length;
  } catch {
    return 0;
  }
}

await main();
