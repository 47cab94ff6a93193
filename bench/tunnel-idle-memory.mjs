// Memory per idle CONNECT tunnel: the gateway's RSS and heap with 1,000 tunnels open, each of which has
// carried one small round trip and then sits idle (a psql or ssh session waiting for its next command).
//
// The gateway (dev issuer + startGateway with one tunnel, auditing on) runs in its own process with
// --expose-gc and answers memory questions over IPC, so only the gateway's two sockets per tunnel are
// counted; the clients and the echo destination live in this process. Each round opens the tunnels in
// batches, forces a full GC in the gateway, reads process.memoryUsage(), closes them all, and reads it
// again. Round 1 includes the first growth of every pool; later rounds reuse what round 1 left.
//
// Usage: npm run build && node bench/tunnel-idle-memory.mjs [--tunnels 1000] [--rounds 3]
// Everything listens on 127.0.0.1; the gateway is killed when the run ends.
import { fork } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startBenchGateway } from "./lib/bench-gateway.mjs";
import { fixed, machineFacts, markdownTable, median } from "./lib/measure.mjs";

const self = fileURLToPath(import.meta.url);
const { values: args } = parseArgs({
  options: {
    role: { type: "string", default: "driver" },
    tunnels: { type: "string", default: process.env.BENCH_TUNNELS ?? "1000" },
    rounds: { type: "string", default: process.env.BENCH_ROUNDS ?? "3" },
    destination: { type: "string" },
    audit: { type: "string" },
  },
});

if (args.role === "gateway") await runGateway();
else await runDriver();

async function runGateway() {
  const gateway = await startBenchGateway(
    `tunnels:
  - name: echo
    destinations: ["127.0.0.1:${args.destination}"]
    allow: [bench-ci]`,
    args.audit,
  );
  process.on("message", async (message) => {
    if (message === "memory") {
      // Two full collections: the first may only finish what an incremental marking started.
      globalThis.gc();
      globalThis.gc();
      await new Promise((resolve) => setTimeout(resolve, 200));
      globalThis.gc();
      process.send({ memory: process.memoryUsage() });
    } else if (message === "stop") {
      await gateway.close();
      process.exit(0);
    }
  });
  process.send({ port: gateway.port, token: gateway.token });
}

/** Opens one tunnel and does one 16-byte echo round trip through it; resolves with the open socket. */
async function openTunnel(port, destination, token) {
  const socket = connect({ host: "127.0.0.1", port });
  await once(socket, "connect");
  socket.write(
    `CONNECT 127.0.0.1:${destination} HTTP/1.1\r\nhost: 127.0.0.1:${destination}\r\nproxy-authorization: Bearer ${token}\r\n\r\n`,
  );
  let received = Buffer.alloc(0);
  const headEnd = () => received.indexOf("\r\n\r\n");
  while (headEnd() === -1) received = Buffer.concat([received, (await once(socket, "data"))[0]]);
  if (!received.toString("latin1").startsWith("HTTP/1.1 200"))
    throw new Error(`CONNECT refused: ${received}`);
  received = received.subarray(headEnd() + 4);
  socket.write("0123456789abcdef");
  while (received.length < 16) received = Buffer.concat([received, (await once(socket, "data"))[0]]);
  return socket;
}

async function runDriver() {
  const count = Number(args.tunnels);
  const rounds = Number(args.rounds);
  const dir = await mkdtemp(join(tmpdir(), "tollgate-tunnel-memory-"));
  const echo = createServer((socket) => {
    socket.on("error", () => socket.destroy());
    socket.pipe(socket);
  });
  echo.listen(0, "127.0.0.1");
  await once(echo, "listening");
  const gateway = fork(
    self,
    ["--role", "gateway", "--destination", String(echo.address().port), "--audit", join(dir, "audit.jsonl")],
    { execArgv: ["--expose-gc"], stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  const killGateway = () => gateway.exitCode === null && gateway.kill("SIGKILL");
  process.on("exit", killGateway);
  const ask = async (message) => {
    gateway.send(message);
    const [answer] = await once(gateway, "message");
    return answer;
  };
  try {
    const [{ port, token }] = await once(gateway, "message");
    const openMany = async (n) => {
      const sockets = [];
      for (let i = 0; i < n; i += 50) {
        const batch = Math.min(50, n - i);
        sockets.push(
          ...(await Promise.all(
            Array.from({ length: batch }, () => openTunnel(port, echo.address().port, token)),
          )),
        );
      }
      return sockets;
    };
    const closeAll = async (sockets) => {
      await Promise.all(
        sockets.map((socket) => {
          const closed = once(socket, "close");
          socket.end();
          socket.resume();
          return closed;
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
    };
    // Warm-up: every code path (verification cache, policy, audit, dial, splice) runs before the baseline.
    await closeAll(await openMany(100));
    const rows = [];
    for (let round = 1; round <= rounds; round++) {
      const before = (await ask("memory")).memory;
      const sockets = await openMany(count);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const open = (await ask("memory")).memory;
      await closeAll(sockets);
      const after = (await ask("memory")).memory;
      const per = (key) => (open[key] - before[key]) / count / 1024;
      rows.push({
        round,
        rssKiB: per("rss"),
        heapKiB: per("heapUsed"),
        externalKiB: per("external"),
        rssAfterCloseKiB: (after.rss - before.rss) / 1024,
        heapAfterCloseKiB: (after.heapUsed - before.heapUsed) / 1024,
      });
      process.stderr.write(
        `round ${round}: ${fixed(per("rss"), 1)} KiB RSS, ${fixed(per("heapUsed"), 1)} KiB heap per tunnel\n`,
      );
    }
    const table = markdownTable(
      [
        "round",
        "RSS per tunnel (KiB)",
        "JS heap per tunnel (KiB)",
        "external per tunnel (KiB)",
        "heap left after closing all (KiB)",
      ],
      rows.map((row) => [
        String(row.round),
        fixed(row.rssKiB, 1),
        fixed(row.heapKiB, 1),
        fixed(row.externalKiB, 1),
        fixed(row.heapAfterCloseKiB, 0),
      ]),
    );
    process.stdout.write(
      `\n${count} idle tunnels per round, ${rounds} rounds; medians: ${fixed(median(rows.map((r) => r.rssKiB)), 1)} KiB RSS, ${fixed(median(rows.map((r) => r.heapKiB)), 1)} KiB heap per tunnel\n${table}\n`,
    );
    const resultsDir = join(fileURLToPath(new URL(".", import.meta.url)), "results");
    await mkdir(resultsDir, { recursive: true });
    const file = join(
      resultsDir,
      `tunnel-idle-memory-${new Date().toISOString().replaceAll(":", "-").replace(".", "-")}.json`,
    );
    await writeFile(file, JSON.stringify({ facts: machineFacts(), count, rows }, null, 2));
    process.stdout.write(`raw results: ${file}\n`);
    await ask("stop").catch(() => undefined);
  } finally {
    killGateway();
    echo.close();
    await rm(dir, { recursive: true, force: true });
  }
}
