// The baseline the issue compares against: a plain Node reverse proxy, node:http server plus an undici
// Pool with keep-alive to the upstream, streaming the answer back with pool.request. No authentication,
// no policy, no audit: the cost of "just proxying" in Node.
// Usage: node plain-undici-proxy.mjs <upstream-origin>; prints {"port": N} once listening.
import { createServer } from "node:http";
import { Pool } from "undici";
import { streamAnswer } from "../lib/stream-answer.mjs";

const upstream = process.argv[2];
if (!upstream) throw new Error("usage: plain-undici-proxy.mjs <upstream-origin>");

// 64 idle connections, like nginx's `keepalive 64` in the comparison.
const pool = new Pool(upstream, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 });

const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "host",
]);

function forwardableHeaders(raw) {
  /** @type {Record<string, string | string[]>} */
  const headers = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined && !hopByHop.has(name)) headers[name] = value;
  }
  return headers;
}

const server = createServer(async (request, response) => {
  try {
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const answer = await pool.request({
      method: request.method,
      path: request.url,
      headers: forwardableHeaders(request.headers),
      body: hasBody ? request : undefined,
    });
    response.writeHead(answer.statusCode, forwardableHeaders(answer.headers));
    streamAnswer(answer, response);
  } catch {
    if (!response.headersSent) {
      response.writeHead(502, { "content-type": "text/plain" });
      response.end("bad gateway\n");
    } else {
      response.destroy();
    }
  }
});
server.keepAliveTimeout = 65_000;

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    pool.destroy().finally(() => process.exit(0));
  });
}
