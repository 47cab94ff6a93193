// Bulk throughput through a CONNECT tunnel versus the same transfer direct on loopback.
//
// Separate processes, so that no two ends of a transfer share an event loop: a sink (TCP server), the
// tollgate gateway (dev issuer + startGateway with one tunnel to the sink, auditing on), a naive CONNECT
// proxy for comparison (node:http 'connect' + net.connect + socket.pipe both ways, no authentication),
// and a fresh client process per transfer. Direct: client → sink. Pipe: client → CONNECT via the naive
// proxy → sink. Tunnel: client → CONNECT via tollgate → sink.
// Both directions are measured: "up" (the client sends, the sink counts) and "down" (the sink sends, the
// client counts). Rounds alternate direct, pipe and tunnel, the order rotating each round; each table cell
// is the median over rounds, and a ratio is the median of the per-round ratios to direct (with its range).
//
// Usage: npm run build && node bench/tunnel-throughput.mjs [--bytes 1073741824] [--rounds 5]
//        [--direction both|up|down] [--quiet-wait 2] [--pipe-proxy node|splice]
// --pipe-proxy splice replaces the naive Node proxy with targets/splice-relay.c (compiled with cc): a
// relay that copies nothing through user space, the bound for any relay on this machine.
// Everything listens on 127.0.0.1; every child is killed when the run ends.
import { once } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startBenchGateway } from "./lib/bench-gateway.mjs";
import { waitForQuiet } from "./lib/machine-load.mjs";
import { fixed, machineFacts, markdownTable, median, rotate } from "./lib/measure.mjs";
import { cpuTimeMs, readReadyLine, runToCompletion, startProcess, stopProcess } from "./lib/processes.mjs";

const self = fileURLToPath(import.meta.url);
const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    role: { type: "string", default: "driver" },
    bytes: { type: "string", default: process.env.BENCH_BYTES ?? String(1024 ** 3) },
    rounds: { type: "string", default: process.env.BENCH_ROUNDS ?? "5" },
    direction: { type: "string", default: process.env.BENCH_DIRECTION ?? "both" },
    "quiet-wait": { type: "string", default: process.env.BENCH_QUIET_WAIT ?? "2" },
    "pipe-proxy": { type: "string", default: process.env.BENCH_PIPE_PROXY ?? "node" },
  },
});

const chunk = Buffer.alloc(256 * 1024, "tollgate tunnel bench ");

switch (args.role) {
  case "sink":
    await runSink();
    break;
  case "gateway":
    await runGateway(JSON.parse(positionals[0] ?? "{}"));
    break;
  case "client":
    await runClient(JSON.parse(positionals[0] ?? "{}"));
    break;
  case "pipe-proxy":
    await runPipeProxy();
    break;
  default:
    await runDriver();
}

/**
 * The destination. A connection starts with one line, `UP <n>` (read n bytes, answer `ok`) or
 * `DOWN <n>` (send n bytes, then end).
 */
async function runSink() {
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    let header = "";
    let remaining = 0;
    let mode;
    socket.on("error", () => socket.destroy());
    socket.on("data", function onData(data) {
      if (mode === undefined) {
        header += data.toString("latin1");
        const newline = header.indexOf("\n");
        if (newline === -1) return;
        const [verb, count] = header.slice(0, newline).split(" ");
        remaining = Number(count);
        mode = verb;
        const extra = Buffer.byteLength(header.slice(newline + 1), "latin1");
        if (mode === "DOWN") return sendDown(socket, remaining);
        remaining -= extra;
      } else {
        remaining -= data.length;
      }
      if (mode === "UP" && remaining <= 0) socket.end("ok\n");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
}

function sendDown(socket, total) {
  let left = total;
  const pump = () => {
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!socket.write(piece)) return socket.once("drain", pump);
    }
    socket.end();
  };
  pump();
}

/** The naive CONNECT proxy the issue compares against: `socket.pipe` both ways, nothing else. */
async function runPipeProxy() {
  const { createServer: createHttpServer } = await import("node:http");
  const server = createHttpServer();
  server.on("connect", (req, client, head) => {
    const [host, port] = req.url.split(":");
    const upstream = connect({ host, port: Number(port) }, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
}

/** The gateway: a dev issuer and tollgate wired as `serve` wires it, one tunnel to the sink. */
async function runGateway({ sinkPort, auditPath }) {
  const gateway = await startBenchGateway(
    `tunnels:
  - name: sink
    destinations: ["127.0.0.1:${sinkPort}"]
    allow: [bench-ci]`,
    auditPath,
  );
  process.stdout.write(`${JSON.stringify({ port: gateway.port, token: gateway.token })}\n`);
  process.on("SIGTERM", async () => {
    await gateway.close();
    process.exit(0);
  });
}

/** One transfer; prints `{ms, bytes}` measured from the first byte written to the last byte seen. */
async function runClient({ mode, direction, bytes, port, sinkPort, token }) {
  const socket = connect({ host: "127.0.0.1", port, noDelay: true });
  await once(socket, "connect");
  if (mode !== "direct") {
    socket.write(
      `CONNECT 127.0.0.1:${sinkPort} HTTP/1.1\r\nhost: 127.0.0.1:${sinkPort}\r\nproxy-authorization: Bearer ${token}\r\n\r\n`,
    );
    const [head] = await once(socket, "data");
    if (!head.toString("latin1").startsWith("HTTP/1.1 200")) throw new Error(`CONNECT refused: ${head}`);
  }
  const started = process.hrtime.bigint();
  let seen = 0;
  if (direction === "up") {
    socket.write(`UP ${bytes}\n`);
    const answered = once(socket, "end");
    socket.resume();
    let left = bytes;
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!socket.write(piece)) await once(socket, "drain");
    }
    await answered;
    seen = bytes;
  } else {
    socket.write(`DOWN ${bytes}\n`);
    socket.on("data", (data) => {
      seen += data.length;
    });
    await once(socket, "end");
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  socket.destroy();
  if (seen !== bytes) throw new Error(`expected ${bytes} bytes, saw ${seen}`);
  process.stdout.write(`${JSON.stringify({ ms, bytes })}\n`);
}

/** The comparison proxy: the naive Node pipe, or the C splice relay compiled into the run's folder. */
async function startPipeProxy(dir) {
  if (args["pipe-proxy"] === "node") return startProcess(process.execPath, [self, "--role", "pipe-proxy"]);
  if (args["pipe-proxy"] !== "splice") throw new Error("--pipe-proxy must be node or splice");
  const binary = join(dir, "splice-relay");
  const source = fileURLToPath(new URL("targets/splice-relay.c", import.meta.url));
  const built = await runToCompletion("cc", ["-O2", "-pthread", "-o", binary, source], 60_000);
  if (built.code !== 0) throw new Error(`cc failed: ${built.stderr.slice(-2000)}`);
  return startProcess(binary, []);
}

async function runDriver() {
  const pipeLabel = args["pipe-proxy"] === "splice" ? "splice relay" : "naive pipe";
  const bytes = Number(args.bytes);
  const rounds = Number(args.rounds);
  const directions = args.direction === "both" ? ["up", "down"] : [args.direction];
  const quietWaitMs = Number(args["quiet-wait"]) * 1000;
  const modes = ["direct", "pipe", "tunnel"];
  const dir = await mkdtemp(join(tmpdir(), "tollgate-tunnel-bench-"));
  const sink = startProcess(process.execPath, [self, "--role", "sink"]);
  let gateway;
  let pipeProxy;
  try {
    const { port: sinkPort } = await readReadyLine(sink);
    // BENCH_GATEWAY_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the gateway alone.
    const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter(Boolean);
    gateway = startProcess(process.execPath, [
      ...nodeArgs,
      self,
      "--role",
      "gateway",
      JSON.stringify({ sinkPort, auditPath: join(dir, "audit.jsonl") }),
    ]);
    const { port, token } = await readReadyLine(gateway, 30_000);
    pipeProxy = await startPipeProxy(dir);
    const { port: pipePort } = await readReadyLine(pipeProxy);
    const portOf = { direct: sinkPort, pipe: pipePort, tunnel: port };
    const processOf = { direct: undefined, pipe: pipeProxy, tunnel: gateway };
    const transfer = async (mode, direction, size) => {
      const input = { mode, direction, bytes: size, port: portOf[mode], sinkPort, token };
      const result = await runToCompletion(
        process.execPath,
        [self, "--role", "client", JSON.stringify(input)],
        300_000,
      );
      if (result.code !== 0) throw new Error(`client failed: ${result.stderr.slice(-2000)}`);
      return JSON.parse(result.stdout.trim().split("\n").at(-1));
    };
    // Warm-up: every path, both directions, a tenth of the size, so JIT and socket buffers settle.
    for (const direction of directions) {
      for (const mode of modes) await transfer(mode, direction, Math.ceil(bytes / 10));
    }
    const samples = [];
    let busyRounds = 0;
    for (let round = 0; round < rounds; round++) {
      if (!(await waitForQuiet({ maxWaitMs: quietWaitMs })).quiet) busyRounds += 1;
      for (const direction of directions) {
        const perMode = {};
        for (const mode of rotate(modes, round)) {
          const pid = processOf[mode]?.child.pid;
          const cpuBefore = pid === undefined ? 0 : cpuTimeMs(pid);
          const { ms } = await transfer(mode, direction, bytes);
          const proxyCpuMs = pid === undefined ? 0 : cpuTimeMs(pid) - cpuBefore;
          perMode[mode] = { ms, mbps: bytes / 1024 ** 2 / (ms / 1000), proxyCpuMs };
          process.stderr.write(
            `round ${round + 1}/${rounds} ${direction} ${mode}: ${fixed(perMode[mode].mbps, 0)} MiB/s\n`,
          );
        }
        samples.push({
          round,
          direction,
          ...perMode,
          pipeRatio: perMode.pipe.mbps / perMode.direct.mbps,
          tunnelRatio: perMode.tunnel.mbps / perMode.direct.mbps,
        });
      }
    }
    const gib = bytes / 1024 ** 3;
    const rows = directions.map((direction) => {
      const of = samples.filter((sample) => sample.direction === direction);
      const mid = (pick) => median(of.map(pick));
      const ratio = (key) =>
        `${fixed(
          mid((s) => s[key]),
          2,
        )}× (${fixed(Math.min(...of.map((s) => s[key])), 2)}–${fixed(Math.max(...of.map((s) => s[key])), 2)})`;
      return [
        direction,
        fixed(
          mid((s) => s.direct.mbps),
          0,
        ),
        fixed(
          mid((s) => s.pipe.mbps),
          0,
        ),
        fixed(
          mid((s) => s.tunnel.mbps),
          0,
        ),
        ratio("pipeRatio"),
        ratio("tunnelRatio"),
        fixed(mid((s) => s.pipe.proxyCpuMs) / gib, 0),
        fixed(mid((s) => s.tunnel.proxyCpuMs) / gib, 0),
      ];
    });
    const table = markdownTable(
      [
        "direction",
        "direct MiB/s",
        `${pipeLabel} MiB/s`,
        "tollgate MiB/s",
        `${pipeLabel} / direct (range)`,
        "tollgate / direct (range)",
        `${pipeLabel} CPU ms/GiB`,
        "tollgate CPU ms/GiB",
      ],
      rows,
    );
    const facts = machineFacts();
    process.stdout.write(
      `\n${bytes} bytes per transfer, ${rounds} rounds, ${busyRounds} round(s) started busy\n${table}\n`,
    );
    const resultsDir = join(fileURLToPath(new URL(".", import.meta.url)), "results");
    await mkdir(resultsDir, { recursive: true });
    const file = join(
      resultsDir,
      `tunnel-throughput-${new Date().toISOString().replaceAll(":", "-").replace(".", "-")}.json`,
    );
    await writeFile(file, JSON.stringify({ facts, bytes, rounds, busyRounds, samples }, null, 2));
    process.stdout.write(`raw results: ${file}\n`);
  } finally {
    await stopProcess(gateway);
    await stopProcess(pipeProxy);
    await stopProcess(sink);
    await rm(dir, { recursive: true, force: true });
  }
}
