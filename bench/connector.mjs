// The outbound-only connector (issue 14): what carrying traffic through a connector costs against the same
// traffic direct, and the measurement behind the link's protocol (HTTP/2 with the roles reversed).
//
// Every part runs in one harness, each server in its own process so CPU time and memory are read per
// process from /proc (and, for memory, from the process itself after a forced GC: every process this file
// starts as a role runs with --expose-gc and answers SIGUSR2 with one JSON line of process.memoryUsage()).
// Rounds alternate between the compared paths, the order rotating each round; tables quote medians over
// rounds and ratios are medians of per-round ratios. The machine is small and shared: read the figures as
// noisy and compare only within one run.
//
//   1. route     wrk against one edge (dev issuer + startGateway, auditing on): the same upstream (64-byte
//                answers) and the same token through a direct route and through a `via` route carried by
//                one connector process (the product's startConnector); requests/s, p50, CPU µs per request
//                of the edge and of the connector.
//   2. tunnel    bulk bytes up and down through a CONNECT tunnel of the same edge, direct against `via`;
//                the sink and the client are those of bench/tunnel-throughput.mjs (`--role sink|client`).
//   3. idle      1,000 concurrent idle tunnels (each after one 16-byte echo round trip) direct and through
//                the connector: RSS and JS heap per tunnel on the edge and on the connector, after GC.
//   3b. stalled  memory the edge and the connector hold for a tunnel whose client stopped reading while its
//                destination sends without end (50 tunnels, direct and via): what the link's flow-control
//                window costs where a reader stalls.
//   4. protocol  the link's protocol, by measurement: a scratch edge ("proto-edge", no token, policy or
//                audit: only the link) over TLS, carrying routes and tunnels either over the HTTP/2 link as
//                built (the product's connector on the far side) or over one fresh TLS connection per
//                stream, dialled by a scratch connector ("proto-connector") when the edge asks for it on a
//                control connection (the per-stream design of reverse tunnels such as frp's; TLS sessions
//                are resumed, its best case). Route requests/s, tunnel throughput, time to first byte of a
//                new tunnel and memory per idle tunnel. The scratch code is a reference for this
//                comparison, not product code.
//
// Usage: npm run build && node bench/connector.mjs [--quick] [--parts route,tunnel,idle,protocol]
//   --quick         a smoke run of about three minutes (2 rounds of 3 s, 64 MiB transfers, 200 tunnels)
//   --rounds N      rounds per comparison (BENCH_ROUNDS, default 5)
//   --seconds N     seconds per wrk round (BENCH_SECONDS, default 6)
//   --connections N wrk connections (BENCH_CONNECTIONS, default 32)
//   --bytes N       bytes per tunnel transfer (BENCH_BYTES, default 256 MiB)
//   --tunnels N     idle tunnels (BENCH_TUNNELS, default 1000)
//   --stalled N     stalled tunnels (BENCH_STALLED, default 50)
//   --opens N       sequential tunnel opens for the time-to-first-byte figure (BENCH_OPENS, default 200)
//   --quiet-wait S  before each round wait up to S s for the CPUs to be under 20 % busy (default 2)
// BENCH_EDGE_NODE_ARGS / BENCH_CONNECTOR_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") pass Node
// flags to the edge and to the connector. Everything listens on 127.0.0.1; every child is killed at the end.
import { once } from "node:events";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { connect as connectHttp2 } from "node:http2";
import { createServer as createHttpsServer } from "node:https";
import { connect as connectTcp, createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { connect as connectTls, createServer as createTlsServer } from "node:tls";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { startBenchGateway } from "./lib/bench-gateway.mjs";
import { waitForQuiet } from "./lib/machine-load.mjs";
import { expectBody64, fixed, machineFacts, markdownTable, median, rotate, runWrk } from "./lib/measure.mjs";
import { cpuTimeMs, readReadyLine, runToCompletion, startProcess, stopProcess } from "./lib/processes.mjs";
import { streamAnswer } from "./lib/stream-answer.mjs";

const self = fileURLToPath(import.meta.url);
const tunnelBench = fileURLToPath(new URL("tunnel-throughput.mjs", import.meta.url));
const upstreamScript = fileURLToPath(new URL("targets/upstream.mjs", import.meta.url));
const ALL_PARTS = ["route", "tunnel", "idle", "stalled", "protocol"];

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    role: { type: "string", default: "driver" },
    quick: { type: "boolean", default: false },
    parts: { type: "string", default: ALL_PARTS.join(",") },
    rounds: { type: "string" },
    seconds: { type: "string" },
    connections: { type: "string" },
    bytes: { type: "string" },
    tunnels: { type: "string" },
    opens: { type: "string" },
    stalled: { type: "string" },
    "quiet-wait": { type: "string" },
  },
});

/** A non-negative integer from a flag, then the environment, then the default. */
function setting(flag, envName, fallback) {
  const raw = flags[flag] ?? process.env[envName];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${flag} must be a non-negative integer`);
  return value;
}

const quick = flags.quick;
const settings = {
  rounds: setting("rounds", "BENCH_ROUNDS", quick ? 2 : 5),
  seconds: setting("seconds", "BENCH_SECONDS", quick ? 3 : 6),
  connections: setting("connections", "BENCH_CONNECTIONS", 32),
  bytes: setting("bytes", "BENCH_BYTES", (quick ? 64 : 256) * 1024 ** 2),
  tunnels: setting("tunnels", "BENCH_TUNNELS", quick ? 200 : 1000),
  opens: setting("opens", "BENCH_OPENS", quick ? 50 : 200),
  stalled: setting("stalled", "BENCH_STALLED", quick ? 20 : 50),
  quietWaitMs: setting("quiet-wait", "BENCH_QUIET_WAIT", quick ? 1 : 2) * 1000,
};
const input = JSON.parse(positionals[0] ?? "{}");
const POOL = "dc1";
const REQUEST_PATH = "/hello";

// ---------------------------------------------------------------------------------------------------------
// Roles: every one prints one JSON ready line, and one JSON line of memory after a forced GC on SIGUSR2.

function answerMemoryQueries() {
  process.on("SIGUSR2", async () => {
    // Two full collections: the first may only finish what an incremental marking started.
    globalThis.gc?.();
    globalThis.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 200));
    globalThis.gc?.();
    process.stdout.write(`${JSON.stringify({ memory: process.memoryUsage() })}\n`);
  });
}

function exitOnTerm(close) {
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => {
      Promise.resolve()
        .then(close)
        .finally(() => process.exit(0));
    });
  }
}

/**
 * The edge: a dev issuer and a gateway wired as `serve` wires it, with one connector pool, a direct and a
 * `via` route to the same upstream, and a direct and a `via` tunnel (each to its own copy of the sink and
 * of the echo destination, since one destination belongs to one tunnel).
 */
async function runEdge({ upstreamPort, direct, via, publicKey, auditPath }) {
  answerMemoryQueries();
  const list = (ports) => `[${ports.map((port) => `"127.0.0.1:${port}"`).join(", ")}]`;
  const upstream = `"http://127.0.0.1:${upstreamPort}"`;
  const gateway = await startBenchGateway(
    `connectors:
  - name: ${POOL}
    public_keys: ["${publicKey}"]
routes:
  - { name: direct, path_prefix: /direct/, strip_prefix: true, upstream: ${upstream}, allow: [bench-ci] }
  - { name: via, path_prefix: /via/, strip_prefix: true, upstream: ${upstream}, allow: [bench-ci], via: ${POOL} }
tunnels:
  - { name: direct, destinations: ${list(direct)}, allow: [bench-ci] }
  - { name: via, destinations: ${list(via)}, allow: [bench-ci], via: ${POOL} }`,
    auditPath,
  );
  process.stdout.write(`${JSON.stringify({ port: gateway.port, token: gateway.token })}\n`);
  exitOnTerm(() => gateway.close());
}

/**
 * A reference for part 2, not product code: one more user-space hop, a TCP forwarder to one target. A
 * direct tunnel through it (client → edge → relay → sink) shows what one more process on the path costs
 * on this machine, whatever that process does. `kind: "pipe"` is the plainest forwarder (`pipe` both
 * ways); `kind: "tollgate"` moves the bytes with tollgate's own direct-tunnel code (`systemDial`'s
 * reused read buffers and `spliceSockets`), the best Node relay we have.
 */
async function runRelay({ target, kind }) {
  const { systemDial, spliceSockets } = await import("../dist/tunnel/index.js");
  const server = createTcpServer({ allowHalfOpen: true }, (client) => {
    if (kind === "tollgate") {
      client.on("error", () => undefined);
      const upstream = systemDial({ host: "127.0.0.1", port: target, family: 4, use: "tunnel" });
      upstream.on("error", () => client.destroy());
      const day = 86_400_000;
      spliceSockets(client, upstream, { idleTimeoutMs: day, maxLifetimeMs: day, onClose: () => undefined });
      return;
    }
    const upstream = connectTcp(target, "127.0.0.1");
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ]) {
      from.on("error", () => to.destroy());
      from.pipe(to);
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
  exitOnTerm(() => new Promise((resolve) => server.close(resolve)));
}

/** The product's connector (startConnector), logging at info to a file as `tollgate connector` would. */
async function runConnector({ edge, privateKeyPem, allow, ca, logPath }) {
  answerMemoryQueries();
  const { startConnector, parsePrivateKey } = await import("../dist/connector/index.js");
  const { parseDestinationPattern } = await import("../dist/tunnel/index.js");
  const { default: pino } = await import("pino");
  const logger = pino({ level: "info" }, pino.destination({ dest: logPath, sync: false }));
  const connector = startConnector({
    edges: [new URL(edge)],
    pool: POOL,
    privateKey: parsePrivateKey(privateKeyPem),
    allow: allow.map((text) => {
      const parsed = parseDestinationPattern(text);
      if (!("pattern" in parsed)) throw new Error(`bad pattern ${text}`);
      return parsed.pattern;
    }),
    ...(ca === undefined ? {} : { ca }),
    logger,
  });
  await connector.waitConnected(15_000);
  process.stdout.write(`${JSON.stringify({ connected: connector.connected() })}\n`);
  exitOnTerm(() => connector.close());
}

// ---------------------------------------------------------------------------------------------------------
// Part 4's scratch edge and connector: a reference for the protocol comparison, not product code. No token,
// policy or audit: a CONNECT (tunnel) or a request (route) on the client port becomes one stream to the
// connector, over the HTTP/2 link as the product sets it up, or over a fresh TLS connection per stream.

/** Reads one `\n`-terminated line from a socket; what follows it is pushed back for the next reader. */
async function readLine(socket, timeoutMs = 10_000) {
  let buffered = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(new Error("no line in time")), timeoutMs);
  try {
    while (buffered.indexOf(10) === -1) {
      const chunk = socket.read();
      if (chunk === null) {
        if (socket.destroyed || socket.readableEnded) throw new Error("closed before a line");
        await Promise.race([once(socket, "readable"), once(socket, "close")]);
        continue;
      }
      buffered = Buffer.concat([buffered, chunk]);
    }
  } finally {
    clearTimeout(timer);
  }
  const newline = buffered.indexOf(10);
  if (newline + 1 < buffered.length) socket.unshift(buffered.subarray(newline + 1));
  return buffered.subarray(0, newline).toString("latin1");
}

/** Pipes two duplexes both ways; either one's end or error ends the other. */
function splice(a, b) {
  a.pipe(b);
  b.pipe(a);
  a.on("error", () => b.destroy());
  b.on("error", () => a.destroy());
  a.once("close", () => b.destroy());
  b.once("close", () => a.destroy());
}

async function runProtoEdge({ transport, certPem, keyPem, upstreamPort }) {
  answerMemoryQueries();
  const { http2Transport } = await import("../dist/connector/handshake.js");
  // The link's settings as the product's edge sets them (absent in builds from before they existed).
  const protocol = await import("../dist/connector/protocol.js");
  /** Opens one stream to `authority` through the connector; resolves with a duplex to it. */
  let openStream;
  let linkServer;
  let attach;
  const attached = new Promise((resolve) => {
    attach = resolve;
  });
  if (transport === "h2") {
    // The link as the product's edge sets it up (src/connector/connector-feature.ts): the connector's
    // CONNECT answered 200, then this edge is the HTTP/2 client on that socket. The connector on the far
    // side is the product's, so it gets a challenge and a welcome; this scratch edge checks no key.
    linkServer = createHttpsServer({ cert: certPem, key: keyPem });
    linkServer.on("connect", (_req, socket, head) => {
      if (head.length > 0) socket.unshift(head);
      socket.setNoDelay(true);
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n", async () => {
        const session = connectHttp2("http://connector.tollgate.invalid", {
          createConnection: () => http2Transport(socket),
          settings: {
            enablePush: false,
            ...(protocol.linkStreamWindowBytes === undefined
              ? {}
              : { initialWindowSize: protocol.linkStreamWindowBytes }),
          },
        });
        session.on("error", () => undefined);
        if (protocol.linkConnectionWindowBytes !== undefined)
          session.once("connect", () => session.setLocalWindowSize(protocol.linkConnectionWindowBytes));
        const ask = (headers) =>
          new Promise((resolve) => {
            const stream = session.request(headers, { endStream: true });
            stream.resume();
            stream.on("response", () => {
              stream.close();
              resolve();
            });
          });
        await ask({
          ":method": "POST",
          ":path": "/_tollgate/hello",
          "tollgate-connector-pool": POOL,
          "tollgate-challenge": "proto".repeat(8),
          "tollgate-binding": "none",
        });
        await ask({ ":method": "POST", ":path": "/_tollgate/welcome" });
        openStream = (authority) =>
          new Promise((resolve, reject) => {
            const stream = session.request(
              { ":method": "CONNECT", ":authority": authority },
              { endStream: false },
            );
            stream.once("error", reject);
            stream.once("response", (headers) => {
              if (headers[":status"] !== 200) reject(new Error(`status ${headers[":status"]}`));
              else resolve(stream);
            });
          });
        attach();
      });
    });
  } else {
    // One fresh TLS connection per stream: the edge asks on the control connection (`OPEN id authority`),
    // the connector dials the destination, then a new TLS connection to this edge starting `STREAM id`.
    const pending = new Map();
    let nextId = 0;
    linkServer = createTlsServer({ cert: certPem, key: keyPem }, async (socket) => {
      socket.on("error", () => undefined);
      const line = await readLine(socket).catch(() => undefined);
      if (line === "CONTROL") {
        readFailures(socket, pending);
        openStream = (authority) =>
          new Promise((resolve, reject) => {
            nextId += 1;
            const id = String(nextId);
            const timer = setTimeout(() => {
              pending.delete(id);
              reject(new Error("no stream connection in time"));
            }, 10_000);
            pending.set(id, (error, stream) => {
              clearTimeout(timer);
              pending.delete(id);
              if (error) reject(error);
              else resolve(stream);
            });
            socket.write(`OPEN ${id} ${authority}\n`);
          });
        attach();
      } else if (line?.startsWith("STREAM ")) {
        const waiter = pending.get(line.slice(7));
        if (waiter) waiter(undefined, socket);
        else socket.destroy();
      } else {
        socket.destroy();
      }
    });
  }
  linkServer.listen(0, "127.0.0.1");
  await once(linkServer, "listening");

  // Routes: a keep-alive pool whose connections are streams through the connector, as via-dispatcher.ts.
  const upstream = `127.0.0.1:${upstreamPort}`;
  const pool = new Pool(`http://${upstream}`, {
    connections: 64,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    connect: (_options, callback) => {
      openStream(upstream).then(
        (stream) => callback(null, stream),
        (error) => callback(error, null),
      );
    },
  });
  const clientServer = createHttpServer(async (request, response) => {
    try {
      const answer = await pool.request({ method: request.method, path: request.url });
      response.writeHead(answer.statusCode, answer.headers);
      streamAnswer(answer, response);
    } catch {
      response.writeHead(502);
      response.end();
    }
  });
  clientServer.keepAliveTimeout = 65_000;
  clientServer.on("connect", async (request, client, head) => {
    client.on("error", () => undefined);
    try {
      const stream = await openStream(request.url);
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) stream.write(head);
      splice(client, stream);
    } catch {
      client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n");
    }
  });
  clientServer.listen(0, "127.0.0.1");
  await once(clientServer, "listening");
  process.stdout.write(
    `${JSON.stringify({ port: clientServer.address().port, linkPort: linkServer.address().port })}\n`,
  );
  await attached;
  process.stdout.write(`${JSON.stringify({ attached: true })}\n`);
  exitOnTerm(() => undefined);
}

/** `FAIL id` lines on the control connection: the connector could not reach the destination. */
async function readFailures(control, pending) {
  for (;;) {
    const line = await readLine(control, 2 ** 31 - 1).catch(() => undefined);
    if (line === undefined) return;
    if (line.startsWith("FAIL ")) pending.get(line.slice(5))?.(new Error("the connector failed"));
  }
}

/** The per-stream prototype's connector: a control connection, then one TLS connection per stream. */
async function runProtoConnector({ linkPort, ca, allow }) {
  answerMemoryQueries();
  const allowed = new Set(allow);
  let session;
  const dialEdge = () =>
    new Promise((resolve, reject) => {
      // Resumed sessions: the per-stream design's best case (no certificate check on each stream).
      const socket = connectTls({ host: "127.0.0.1", port: linkPort, ca, session, servername: "localhost" });
      socket.on("session", (ticket) => {
        session = ticket;
      });
      socket.once("secureConnect", () => resolve(socket));
      socket.once("error", reject);
    });
  const control = await dialEdge();
  control.write("CONTROL\n");
  control.on("error", () => process.exit(1));
  control.on("close", () => process.exit(0));
  for (;;) {
    const line = await readLine(control, 2 ** 31 - 1);
    const [, id, authority] = line.split(" ");
    void (async () => {
      const [host, port] = authority.split(":");
      try {
        if (!allowed.has(authority)) throw new Error("not allowed");
        const destination = connectTcp({ host, port: Number(port), noDelay: true });
        await once(destination, "connect");
        const stream = await dialEdge();
        stream.setNoDelay(true);
        stream.write(`STREAM ${id}\n`);
        splice(stream, destination);
      } catch {
        control.write(`FAIL ${id}\n`);
      }
    })();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The driver.

function log(message) {
  process.stderr.write(`${message}\n`);
}

function startRole(role, roleInput, nodeArgs = []) {
  return startProcess(process.execPath, [
    "--expose-gc",
    ...nodeArgs,
    self,
    "--role",
    role,
    JSON.stringify(roleInput),
  ]);
}

function nodeArgsOf(variable) {
  return (process.env[variable] ?? "").split(" ").filter(Boolean);
}

/** RSS and heap of a role after a forced GC (SIGUSR2 → one JSON line). */
async function memoryOf(started) {
  const answer = readReadyLine(started, 15_000);
  started.child.kill("SIGUSR2");
  return /** @type {NodeJS.MemoryUsage} */ ((await answer).memory);
}

async function beforeRound() {
  const { quiet } = await waitForQuiet({ maxWaitMs: settings.quietWaitMs });
  return quiet;
}

/** Median and range of per-round values, as "median (min–max)". */
function spread(values, digits = 2) {
  return `${fixed(median(values), digits)} (${fixed(Math.min(...values), digits)}–${fixed(Math.max(...values), digits)})`;
}

/** An echo destination: every byte comes back. */
async function startEcho() {
  const server = createTcpServer((socket) => {
    socket.on("error", () => socket.destroy());
    socket.pipe(socket);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

/** A destination that sends 64 KiB chunks for as long as the connection is open and takes them. */
async function startFirehose() {
  const chunk = Buffer.alloc(64 * 1024, "tollgate stalled-reader bench ");
  const server = createTcpServer((socket) => {
    socket.on("error", () => socket.destroy());
    const pump = () => {
      while (!socket.destroyed && socket.write(chunk));
    };
    socket.on("drain", pump);
    pump();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

/** Opens one tunnel and then stops reading: only the CONNECT answer is read, the rest piles up upstream. */
async function openStalled(port, destination, token) {
  const socket = connectTcp({ host: "127.0.0.1", port });
  socket.on("error", () => undefined);
  await once(socket, "connect");
  socket.write(
    `CONNECT ${destination} HTTP/1.1\r\nhost: ${destination}\r\nproxy-authorization: Bearer ${token}\r\n\r\n`,
  );
  const [head] = await once(socket, "data");
  if (!head.toString("latin1").startsWith("HTTP/1.1 200")) throw new Error("CONNECT refused");
  socket.pause();
  return socket;
}

/**
 * Opens one tunnel through a CONNECT proxy and does one 16-byte echo round trip; resolves with the open
 * socket and the milliseconds from the TCP connect to the first echoed byte (time to first byte).
 */
async function openTunnel(port, destination, token) {
  const started = performance.now();
  const socket = connectTcp({ host: "127.0.0.1", port, noDelay: true });
  socket.on("error", () => undefined);
  await once(socket, "connect");
  const auth = token === undefined ? "" : `proxy-authorization: Bearer ${token}\r\n`;
  socket.write(`CONNECT ${destination} HTTP/1.1\r\nhost: ${destination}\r\n${auth}\r\n`);
  let received = Buffer.alloc(0);
  const headEnd = () => received.indexOf("\r\n\r\n");
  while (headEnd() === -1) received = Buffer.concat([received, (await once(socket, "data"))[0]]);
  if (!received.toString("latin1").startsWith("HTTP/1.1 200")) {
    // The error's JSON body says why (its code and message; never a token).
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let more = socket.read(); more !== null; more = socket.read()) {
      received = Buffer.concat([received, more]);
    }
    const text = received.toString("latin1");
    throw new Error(`CONNECT refused: ${text.split("\r\n")[0]} ${text.slice(headEnd() + 4)}`);
  }
  received = received.subarray(headEnd() + 4);
  socket.write("0123456789abcdef");
  while (received.length < 16) received = Buffer.concat([received, (await once(socket, "data"))[0]]);
  return { socket, ms: performance.now() - started };
}

async function openMany(count, port, destination, token) {
  const sockets = [];
  for (let i = 0; i < count; i += 50) {
    const batch = Math.min(50, count - i);
    const opened = await Promise.all(
      Array.from({ length: batch }, () => openTunnel(port, destination, token)),
    );
    sockets.push(...opened.map((tunnel) => tunnel.socket));
  }
  return sockets;
}

async function closeAll(sockets) {
  await Promise.all(
    sockets.map((socket) => {
      const closed = once(socket, "close");
      socket.end();
      socket.resume();
      return closed;
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
}

/** Time to first byte of `count` tunnels opened one after another; the tunnels are closed again. */
async function openLatencies(count, port, destination, token) {
  const times = [];
  for (let i = 0; i < count; i++) {
    const { socket, ms } = await openTunnel(port, destination, token);
    times.push(ms);
    socket.destroy();
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { p50: median(times), p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] };
}

/** One bulk transfer with bench/tunnel-throughput.mjs's client; MiB/s and the CPU ms of the given pids. */
async function transfer({ port, sinkPort, token, direction, bytes, pids }) {
  const cpuBefore = pids.map(cpuTimeMs);
  const clientInput = { mode: "tunnel", direction, bytes, port, sinkPort, token };
  const result = await runToCompletion(
    process.execPath,
    [tunnelBench, "--role", "client", JSON.stringify(clientInput)],
    300_000,
  );
  if (result.code !== 0) throw new Error(`client failed: ${result.stderr.slice(-2000)}`);
  const { ms } = JSON.parse(result.stdout.trim().split("\n").at(-1));
  return {
    mibps: bytes / 1024 ** 2 / (ms / 1000),
    cpuMsPerGiB: pids.map((pid, i) => ((cpuTimeMs(pid) - cpuBefore[i]) / bytes) * 1024 ** 3),
  };
}

/** wrk against a route; requests/s, p50 and CPU µs per request of the given pids. */
async function wrkRound({ url, headers, pids, seconds }) {
  const cpuBefore = pids.map(cpuTimeMs);
  const wrk = await runWrk({ url, headers, threads: 2, connections: settings.connections, seconds });
  return {
    rps: wrk.rps,
    p50Ms: wrk.p50Ms,
    errors: wrk.non2xx + wrk.socketErrors,
    cpuUsPerRequest: pids.map((pid, i) => ((cpuTimeMs(pid) - cpuBefore[i]) * 1000) / wrk.requests),
  };
}

/**
 * Alternating rounds over `paths` (each `{name, run}`); returns per-path lists of results, one per round,
 * and the number of rounds that started on a busy machine.
 */
async function alternate(label, paths, rounds, describe) {
  const results = new Map(paths.map((path) => [path.name, []]));
  let busy = 0;
  for (let round = 0; round < rounds; round++) {
    if (!(await beforeRound())) busy += 1;
    for (const path of rotate(paths, round)) {
      const result = await path.run();
      results.get(path.name).push(result);
      log(`${label} round ${round + 1}/${rounds} ${path.name.padEnd(16)} ${describe(result)}`);
    }
  }
  return { results, busy };
}

const perRound = (a, b, pick) => a.map((result, i) => pick(result) / pick(b[i]));

async function makeCertificate(dir) {
  const key = join(dir, "link.key");
  const cert = join(dir, "link.pem");
  // A self-signed P-256 certificate for 127.0.0.1, valid one day; no argument contains a space.
  const args =
    "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost";
  const made = await runToCompletion(
    "openssl",
    [...args.split(" "), "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
    30_000,
  );
  if (made.code !== 0) throw new Error(`openssl failed: ${made.stderr}`);
  return { certPem: await readFile(cert, "utf8"), keyPem: await readFile(key, "utf8") };
}

async function runDriver() {
  const parts = flags.parts.split(",").map((part) => part.trim());
  for (const part of parts) if (!ALL_PARTS.includes(part)) throw new Error(`unknown part ${part}`);
  const { stdout: limit } = await runToCompletion("sh", ["-c", "ulimit -n"], 5000);
  // Each idle tunnel holds two descriptors in this process (client and echo end) and two in the edge.
  if (parts.includes("idle") && Number(limit) < settings.tunnels * 2 + 500)
    throw new Error(`ulimit -n is ${limit.trim()}: too low for ${settings.tunnels} tunnels`);
  const dir = await mkdtemp(join(tmpdir(), "tollgate-connector-bench-"));
  const report = { facts: machineFacts(), settings, parts: {} };
  const out = [];
  const started = [];
  const keep = (process) => {
    started.push(process);
    return process;
  };
  const echoes = { direct: await startEcho(), via: await startEcho() };
  const firehoses = { direct: await startFirehose(), via: await startFirehose() };
  try {
    const { generateConnectorKey } = await import("../dist/connector/index.js");
    const key = generateConnectorKey();
    const upstream = keep(startProcess(process.execPath, [upstreamScript]));
    const { port: upstreamPort } = await readReadyLine(upstream);
    const sinkDirect = keep(startProcess(process.execPath, [tunnelBench, "--role", "sink"]));
    const sinkVia = keep(startProcess(process.execPath, [tunnelBench, "--role", "sink"]));
    const { port: sinkDirectPort } = await readReadyLine(sinkDirect);
    const { port: sinkViaPort } = await readReadyLine(sinkVia);
    // Part 2's reference: a plain Node forwarder in front of the direct sink (one more hop, nothing else).
    const relay = keep(startRole("relay", { target: sinkDirectPort, kind: "pipe" }));
    const { port: relayPort } = await readReadyLine(relay);
    const tgRelay = keep(startRole("relay", { target: sinkDirectPort, kind: "tollgate" }));
    const { port: tgRelayPort } = await readReadyLine(tgRelay);
    const echoPort = { direct: echoes.direct.address().port, via: echoes.via.address().port };
    const firehosePort = { direct: firehoses.direct.address().port, via: firehoses.via.address().port };
    const edge = keep(
      startRole(
        "edge",
        {
          upstreamPort,
          direct: [sinkDirectPort, echoPort.direct, firehosePort.direct, relayPort, tgRelayPort],
          via: [sinkViaPort, echoPort.via, firehosePort.via],
          publicKey: key.publicKey,
          auditPath: join(dir, "audit.jsonl"),
        },
        nodeArgsOf("BENCH_EDGE_NODE_ARGS"),
      ),
    );
    const { port: edgePort, token } = await readReadyLine(edge, 30_000);
    const connector = keep(
      startRole(
        "connector",
        {
          edge: `http://127.0.0.1:${edgePort}`,
          privateKeyPem: key.privateKeyPem,
          allow: [
            `127.0.0.1:${upstreamPort}`,
            `127.0.0.1:${sinkViaPort}`,
            `127.0.0.1:${echoPort.via}`,
            `127.0.0.1:${firehosePort.via}`,
          ],
          logPath: join(dir, "connector.log"),
        },
        nodeArgsOf("BENCH_CONNECTOR_NODE_ARGS"),
      ),
    );
    await readReadyLine(connector, 30_000);
    const pids = [edge.child.pid, connector.child.pid, relay.child.pid, tgRelay.child.pid];
    const routeHeaders = { "gateway-authorization": `Bearer ${token}` };
    const routeUrl = (name) => `http://127.0.0.1:${edgePort}/${name}${REQUEST_PATH}`;
    for (const name of ["direct", "via"]) await expectBody64(routeUrl(name), routeHeaders);
    out.push(
      `Machine: ${report.facts.nproc} cores, ${report.facts.cpu}; node ${report.facts.node}; ${report.facts.date}`,
    );

    if (parts.includes("route")) {
      for (const name of ["direct", "via"])
        await wrkRound({ url: routeUrl(name), headers: routeHeaders, pids, seconds: 1 });
      const { results, busy } = await alternate(
        "route",
        ["direct", "via"].map((name) => ({
          name,
          run: () =>
            wrkRound({ url: routeUrl(name), headers: routeHeaders, pids, seconds: settings.seconds }),
        })),
        settings.rounds,
        (r) =>
          `${fixed(r.rps, 0)} req/s  p50 ${fixed(r.p50Ms)} ms  edge ${fixed(r.cpuUsPerRequest[0], 1)} µs/req` +
          `  connector ${fixed(r.cpuUsPerRequest[1], 1)} µs/req${r.errors ? `  ERRORS ${r.errors}` : ""}`,
      );
      const direct = results.get("direct");
      const via = results.get("via");
      const rows = [direct, via].map((runs, i) => [
        i === 0 ? "direct route" : "route via connector",
        fixed(median(runs.map((r) => r.rps)), 0),
        fixed(median(runs.map((r) => r.p50Ms))),
        fixed(median(runs.map((r) => r.cpuUsPerRequest[0])), 1),
        i === 0 ? "—" : fixed(median(runs.map((r) => r.cpuUsPerRequest[1])), 1),
        String(runs.reduce((sum, r) => sum + r.errors, 0)),
      ]);
      const ratio = perRound(via, direct, (r) => r.rps);
      out.push(
        `\n## 1. Route via a connector against the same route direct (${settings.rounds} rounds of ${settings.seconds} s, wrk ${settings.connections} connections, ${busy} round(s) started busy)\n`,
        markdownTable(
          ["path", "req/s (median)", "p50 ms", "edge CPU µs/req", "connector CPU µs/req", "errors"],
          rows,
        ),
        `\nvia / direct requests/s: ${spread(ratio)} (goal ≥ 0.70)`,
      );
      report.parts.route = { direct, via, ratio, busy };
    }

    if (parts.includes("tunnel")) {
      const directions = ["up", "down"];
      // "relay": the direct tunnel with one plain Node forwarder before the sink (the reference, above).
      const tunnelPaths = ["direct", "via", "relay", "tollgate-relay"];
      const sinkOf = {
        direct: sinkDirectPort,
        via: sinkViaPort,
        relay: relayPort,
        "tollgate-relay": tgRelayPort,
      };
      for (const direction of directions)
        for (const name of tunnelPaths)
          await transfer({
            port: edgePort,
            sinkPort: sinkOf[name],
            token,
            direction,
            bytes: Math.ceil(settings.bytes / 8),
            pids,
          });
      const rows = [];
      report.parts.tunnel = {};
      for (const direction of directions) {
        const { results, busy } = await alternate(
          `tunnel ${direction}`,
          tunnelPaths.map((name) => ({
            name,
            run: () =>
              transfer({
                port: edgePort,
                sinkPort: sinkOf[name],
                token,
                direction,
                bytes: settings.bytes,
                pids,
              }),
          })),
          settings.rounds,
          (r) =>
            `${fixed(r.mibps, 0)} MiB/s  edge ${fixed(r.cpuMsPerGiB[0], 0)} ms/GiB  connector ${fixed(r.cpuMsPerGiB[1], 0)} ms/GiB`,
        );
        const direct = results.get("direct");
        const via = results.get("via");
        const relayed = results.get("relay");
        const tgRelayed = results.get("tollgate-relay");
        const ratio = perRound(via, direct, (r) => r.mibps);
        const relayRatio = perRound(relayed, direct, (r) => r.mibps);
        const tgRelayRatio = perRound(tgRelayed, direct, (r) => r.mibps);
        const viaToRelay = perRound(via, tgRelayed, (r) => r.mibps);
        rows.push([
          direction,
          fixed(median(direct.map((r) => r.mibps)), 0),
          fixed(median(via.map((r) => r.mibps)), 0),
          spread(ratio),
          fixed(median(relayed.map((r) => r.mibps)), 0),
          spread(relayRatio),
          fixed(median(tgRelayed.map((r) => r.mibps)), 0),
          spread(tgRelayRatio),
          spread(viaToRelay),
          fixed(median(direct.map((r) => r.cpuMsPerGiB[0])), 0),
          fixed(median(via.map((r) => r.cpuMsPerGiB[0])), 0),
          fixed(median(via.map((r) => r.cpuMsPerGiB[1])), 0),
          `${busy}/${settings.rounds}`,
        ]);
        report.parts.tunnel[direction] = {
          direct,
          via,
          relayed,
          tgRelayed,
          ratio,
          relayRatio,
          tgRelayRatio,
          viaToRelay,
          busy,
        };
      }
      out.push(
        `\n## 2. Tunnel via a connector against a direct tunnel (${settings.bytes / 1024 ** 2} MiB per transfer, ${settings.rounds} rounds)\n`,
        markdownTable(
          [
            "direction",
            "direct MiB/s",
            "via MiB/s",
            "via / direct (range)",
            "direct + pipe relay MiB/s",
            "pipe relay / direct (range)",
            "direct + tollgate-code relay MiB/s",
            "tollgate relay / direct (range)",
            "via / tollgate relay (range)",
            "edge CPU ms/GiB direct",
            "edge CPU ms/GiB via",
            "connector CPU ms/GiB",
            "rounds started busy",
          ],
          rows,
        ),
        "\n(goal: via / direct ≥ 0.70. The relay columns are the reference: the direct tunnel with one more " +
          "Node process on the path, a TCP forwarder (stream pipe, or tollgate's own tunnel code), so relay / " +
          "direct is what an extra user-space hop costs here)",
      );
    }

    if (parts.includes("idle")) {
      const destination = (name) => `127.0.0.1:${echoPort[name]}`;
      // Warm-up: every code path (verification cache, policy, audit, dial, splice, streams) before the baseline.
      for (const name of ["direct", "via"])
        await closeAll(await openMany(100, edgePort, destination(name), token));
      const rows = [];
      report.parts.idle = [];
      for (let round = 1; round <= Math.max(2, Math.min(settings.rounds, 3)); round++) {
        for (const name of rotate(["direct", "via"], round)) {
          const before = [await memoryOf(edge), await memoryOf(connector)];
          const sockets = await openMany(settings.tunnels, edgePort, destination(name), token);
          await new Promise((resolve) => setTimeout(resolve, 1000));
          const open = [await memoryOf(edge), await memoryOf(connector)];
          await closeAll(sockets);
          const per = (i, field) => (open[i][field] - before[i][field]) / settings.tunnels / 1024;
          const row = {
            round,
            name,
            edgeRss: per(0, "rss"),
            edgeHeap: per(0, "heapUsed"),
            connectorRss: per(1, "rss"),
            connectorHeap: per(1, "heapUsed"),
          };
          report.parts.idle.push(row);
          log(
            `idle round ${round} ${name}: edge ${fixed(row.edgeRss, 1)} KiB RSS ${fixed(row.edgeHeap, 1)} KiB heap,` +
              ` connector ${fixed(row.connectorRss, 1)} KiB RSS ${fixed(row.connectorHeap, 1)} KiB heap per tunnel`,
          );
          rows.push(row);
        }
      }
      out.push(
        `\n## 3. ${settings.tunnels} concurrent idle tunnels: memory per tunnel after GC (KiB; round 1 includes the first growth of every pool)\n`,
        markdownTable(
          ["round", "path", "edge RSS", "edge JS heap", "connector RSS", "connector JS heap"],
          rows.map((row) => [
            String(row.round),
            row.name === "via" ? "via connector" : "direct",
            fixed(row.edgeRss, 1),
            fixed(row.edgeHeap, 1),
            row.name === "via" ? fixed(row.connectorRss, 1) : "—",
            row.name === "via" ? fixed(row.connectorHeap, 1) : "—",
          ]),
        ),
      );
    }

    if (parts.includes("stalled")) {
      const rows = [];
      report.parts.stalled = [];
      for (const name of ["direct", "via"]) {
        const before = [await memoryOf(edge), await memoryOf(connector)];
        const sockets = [];
        for (let i = 0; i < settings.stalled; i++)
          sockets.push(await openStalled(edgePort, `127.0.0.1:${firehosePort[name]}`, token));
        // Long enough for every queue and window on the way to fill.
        await new Promise((resolve) => setTimeout(resolve, 3000));
        const open = [await memoryOf(edge), await memoryOf(connector)];
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const per = (i, field) => (open[i][field] - before[i][field]) / settings.stalled / 1024;
        const row = {
          name,
          edgeRss: per(0, "rss"),
          edgeBuffers: per(0, "arrayBuffers"),
          connectorRss: per(1, "rss"),
          connectorBuffers: per(1, "arrayBuffers"),
        };
        report.parts.stalled.push(row);
        log(
          `stalled ${name}: edge ${fixed(row.edgeRss, 0)} KiB RSS, ${fixed(row.edgeBuffers, 0)} KiB buffers per tunnel`,
        );
        rows.push([
          name === "via" ? "via connector" : "direct",
          fixed(row.edgeRss, 0),
          fixed(row.edgeBuffers, 0),
          name === "via" ? fixed(row.connectorRss, 0) : "—",
          name === "via" ? fixed(row.connectorBuffers, 0) : "—",
        ]);
      }
      out.push(
        `\n## 3b. ${settings.stalled} tunnels whose client stopped reading, destination sending: KiB held per tunnel\n`,
        markdownTable(["path", "edge RSS", "edge buffers", "connector RSS", "connector buffers"], rows),
      );
    }

    if (parts.includes("protocol")) {
      out.push(...(await protocolPart({ dir, key, upstreamPort, sinkViaPort, echoPort, report, keep })));
      const product = await openLatencies(settings.opens, edgePort, `127.0.0.1:${echoPort.via}`, token);
      const productDirect = await openLatencies(
        settings.opens,
        edgePort,
        `127.0.0.1:${echoPort.direct}`,
        token,
      );
      out.push(
        `\nFor reference, the product edge (token, policy, audit; plain link): time to first byte of a new tunnel ` +
          `p50 ${fixed(productDirect.p50)} ms / p99 ${fixed(productDirect.p99)} ms direct, ` +
          `p50 ${fixed(product.p50)} ms / p99 ${fixed(product.p99)} ms via the connector.`,
      );
    }

    process.stdout.write(`${out.join("\n")}\n`);
    const resultsDir = join(fileURLToPath(new URL(".", import.meta.url)), "results");
    await mkdir(resultsDir, { recursive: true });
    const file = join(
      resultsDir,
      `connector-${new Date().toISOString().replaceAll(":", "-").replace(".", "-")}.json`,
    );
    await writeFile(file, JSON.stringify(report, null, 2));
    process.stdout.write(`raw results: ${file}\n`);
  } finally {
    for (const process of started.reverse()) await stopProcess(process);
    echoes.direct.close();
    echoes.via.close();
    firehoses.direct.close();
    firehoses.via.close();
    if (process.env.BENCH_KEEP_DIR === "1") process.stdout.write(`kept ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  }
}

/** Part 4: the HTTP/2 link against one TLS connection per stream, each with the scratch edge. */
async function protocolPart({ dir, key, upstreamPort, sinkViaPort, echoPort, report, keep }) {
  const { certPem, keyPem } = await makeCertificate(dir);
  const allow = [`127.0.0.1:${upstreamPort}`, `127.0.0.1:${sinkViaPort}`, `127.0.0.1:${echoPort.via}`];
  const arms = {};
  for (const transport of ["h2", "per-stream"]) {
    const edge = keep(
      startRole(
        "proto-edge",
        { transport: transport === "h2" ? "h2" : "tcp", certPem, keyPem, upstreamPort },
        nodeArgsOf("BENCH_EDGE_NODE_ARGS"),
      ),
    );
    const { port, linkPort } = await readReadyLine(edge, 30_000);
    const attached = readReadyLine(edge, 30_000);
    const connector = keep(
      transport === "h2"
        ? startRole("connector", {
            edge: `https://127.0.0.1:${linkPort}`,
            privateKeyPem: key.privateKeyPem,
            allow,
            ca: certPem,
            logPath: join(dir, "proto-connector.log"),
          })
        : startRole("proto-connector", { linkPort, ca: certPem, allow }),
    );
    await attached;
    if (transport === "h2") await readReadyLine(connector, 30_000);
    await expectBody64(`http://127.0.0.1:${port}${REQUEST_PATH}`);
    arms[transport] = { edge, connector, port, pids: [edge.child.pid, connector.child.pid] };
  }
  const names = Object.keys(arms);
  const routeUrl = (name) => `http://127.0.0.1:${arms[name].port}${REQUEST_PATH}`;
  for (const name of names)
    await wrkRound({ url: routeUrl(name), headers: {}, pids: arms[name].pids, seconds: 1 });
  const route = await alternate(
    "protocol route",
    names.map((name) => ({
      name,
      run: () =>
        wrkRound({ url: routeUrl(name), headers: {}, pids: arms[name].pids, seconds: settings.seconds }),
    })),
    settings.rounds,
    (r) =>
      `${fixed(r.rps, 0)} req/s  edge ${fixed(r.cpuUsPerRequest[0], 1)} µs/req  connector ${fixed(r.cpuUsPerRequest[1], 1)} µs/req`,
  );
  const tunnel = {};
  for (const direction of ["up", "down"]) {
    const run = (name, bytes) =>
      transfer({ port: arms[name].port, sinkPort: sinkViaPort, direction, bytes, pids: arms[name].pids });
    for (const name of names) await run(name, Math.ceil(settings.bytes / 8));
    tunnel[direction] = await alternate(
      `protocol tunnel ${direction}`,
      names.map((name) => ({ name, run: () => run(name, settings.bytes) })),
      settings.rounds,
      (r) =>
        `${fixed(r.mibps, 0)} MiB/s  edge ${fixed(r.cpuMsPerGiB[0], 0)} ms/GiB  connector ${fixed(r.cpuMsPerGiB[1], 0)} ms/GiB`,
    );
  }
  const echo = `127.0.0.1:${echoPort.via}`;
  const latency = await alternate(
    "protocol open",
    names.map((name) => ({ name, run: () => openLatencies(settings.opens, arms[name].port, echo) })),
    settings.rounds,
    (r) => `time to first byte p50 ${fixed(r.p50)} ms  p99 ${fixed(r.p99)} ms`,
  );
  const idle = new Map(names.map((name) => [name, []]));
  for (const name of names) await closeAll(await openMany(100, arms[name].port, echo));
  for (let round = 0; round < Math.max(2, Math.min(settings.rounds, 3)); round++) {
    for (const name of rotate(names, round)) {
      const { edge, connector, port } = arms[name];
      const before = [await memoryOf(edge), await memoryOf(connector)];
      const sockets = await openMany(settings.tunnels, port, echo);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const open = [await memoryOf(edge), await memoryOf(connector)];
      await closeAll(sockets);
      const per = (i, field) => (open[i][field] - before[i][field]) / settings.tunnels / 1024;
      const row = { rss: [per(0, "rss"), per(1, "rss")], heap: [per(0, "heapUsed"), per(1, "heapUsed")] };
      idle.get(name).push(row);
      log(
        `protocol idle round ${round + 1} ${name}: edge ${fixed(row.rss[0], 1)} KiB RSS ${fixed(row.heap[0], 1)} heap,` +
          ` connector ${fixed(row.rss[1], 1)} KiB RSS ${fixed(row.heap[1], 1)} heap per tunnel`,
      );
    }
  }
  for (const name of names) {
    await stopProcess(arms[name].connector);
    await stopProcess(arms[name].edge);
  }
  const mid = (list, pick, digits = 0) => fixed(median(list.map(pick)), digits);
  const rows = names.map((name) => {
    const r = route.results.get(name);
    const up = tunnel.up.results.get(name);
    const down = tunnel.down.results.get(name);
    const open = latency.results.get(name);
    // Round 1 of the idle part includes the first growth of the pools: quote the later rounds.
    const settled = idle.get(name).slice(1);
    return [
      name === "h2" ? "HTTP/2 link (as built)" : "TLS connection per stream (scratch)",
      mid(r, (x) => x.rps),
      `${mid(r, (x) => x.cpuUsPerRequest[0], 1)} / ${mid(r, (x) => x.cpuUsPerRequest[1], 1)}`,
      mid(up, (x) => x.mibps),
      mid(down, (x) => x.mibps),
      `${mid(up, (x) => x.cpuMsPerGiB[0])} / ${mid(up, (x) => x.cpuMsPerGiB[1])}`,
      `${mid(open, (x) => x.p50, 2)} / ${mid(open, (x) => x.p99, 2)}`,
      `${mid(settled, (x) => x.rss[0], 1)} / ${mid(settled, (x) => x.heap[0], 1)}`,
      `${mid(settled, (x) => x.rss[1], 1)} / ${mid(settled, (x) => x.heap[1], 1)}`,
    ];
  });
  const ratio = (results, pick) => spread(perRound(results.get("h2"), results.get("per-stream"), pick));
  report.parts.protocol = {
    route: Object.fromEntries(route.results),
    up: Object.fromEntries(tunnel.up.results),
    down: Object.fromEntries(tunnel.down.results),
    latency: Object.fromEntries(latency.results),
    idle: Object.fromEntries(idle),
  };
  const busy = route.busy + tunnel.up.busy + tunnel.down.busy + latency.busy;
  return [
    `\n## 4. The link's protocol: HTTP/2 link against one TLS connection per stream (scratch edge, TLS link, ${settings.rounds} rounds, ${busy} round(s) started busy)\n`,
    markdownTable(
      [
        "transport",
        "route req/s",
        "route CPU µs/req edge / connector",
        "tunnel up MiB/s",
        "tunnel down MiB/s",
        "up CPU ms/GiB edge / connector",
        "new tunnel TTFB ms p50 / p99",
        `idle tunnel edge KiB RSS / heap`,
        `idle tunnel connector KiB RSS / heap`,
      ],
      rows,
    ),
    `\nHTTP/2 / per-stream, per round: route req/s ${ratio(route.results, (x) => x.rps)}, ` +
      `tunnel up ${ratio(tunnel.up.results, (x) => x.mibps)}, down ${ratio(tunnel.down.results, (x) => x.mibps)}, ` +
      `time to first byte (p50) ${ratio(latency.results, (x) => x.p50)}`,
  ];
}

// Dispatched last: the roles use functions and constants declared above.
switch (flags.role) {
  case "edge":
    await runEdge(input);
    break;
  case "connector":
    await runConnector(input);
    break;
  case "relay":
    await runRelay(input);
    break;
  case "proto-edge":
    await runProtoEdge(input);
    break;
  case "proto-connector":
    await runProtoConnector(input);
    break;
  case "driver":
    await runDriver();
    break;
  default:
    throw new Error(`unknown role ${flags.role}`);
}
