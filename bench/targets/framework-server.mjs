// One server for the framework comparison: node:http or Fastify, answering either a trivial 64-byte body
// or proxying to the upstream with the same undici Pool code. Only the framework differs between the two
// variants of a handler, so the difference in throughput is the framework's own cost.
// Usage: node framework-server.mjs '{"framework":"node"|"fastify","handler":"trivial"|"proxy","upstream":"http://127.0.0.1:N"}'
// Prints {"port": N} once listening.
import { createServer } from "node:http";
import Fastify from "fastify";
import { Pool } from "undici";
import { BODY_64 } from "../lib/measure.mjs";
import { streamAnswer } from "../lib/stream-answer.mjs";

const { framework, handler, upstream } = JSON.parse(process.argv[2] ?? "{}");
if (!["node", "fastify"].includes(framework) || !["trivial", "proxy"].includes(handler)) {
  throw new Error('usage: framework-server.mjs \'{"framework":"node|fastify","handler":"trivial|proxy"}\'');
}
if (handler === "proxy" && !upstream) throw new Error("the proxy handler needs an upstream origin");

const body = Buffer.from(BODY_64);
const pool =
  handler === "proxy" ? new Pool(upstream, { connections: 64, keepAliveTimeout: 60_000 }) : undefined;
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
  const headers = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined && !hopByHop.has(name)) headers[name] = value;
  }
  return headers;
}

/** The shared proxy step: one upstream request; the caller streams `answer.body` back. */
function requestUpstream(method, url, headers) {
  return pool.request({ method, path: url, headers: forwardableHeaders(headers) });
}

let close;
let port;

if (framework === "node") {
  const server = createServer(
    handler === "trivial"
      ? (_request, response) => {
          response.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
          response.end(body);
        }
      : async (request, response) => {
          try {
            const answer = await requestUpstream(request.method, request.url, request.headers);
            response.writeHead(answer.statusCode, forwardableHeaders(answer.headers));
            streamAnswer(answer, response);
          } catch {
            if (!response.headersSent) response.writeHead(502).end();
            else response.destroy();
          }
        },
  );
  server.keepAliveTimeout = 65_000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = server.address().port;
  close = () => {
    server.close();
    server.closeAllConnections();
  };
} else {
  const app = Fastify({ logger: false, keepAliveTimeout: 65_000 });
  if (handler === "trivial") {
    app.get("/*", (_request, reply) => {
      reply.header("content-type", "text/plain").send(body);
    });
  } else {
    app.get("/*", async (request, reply) => {
      try {
        const answer = await requestUpstream(request.method, request.url, request.headers);
        reply.code(answer.statusCode).headers(forwardableHeaders(answer.headers));
        return reply.send(answer.body);
      } catch {
        return reply.code(502).send();
      }
    });
  }
  await app.listen({ port: 0, host: "127.0.0.1" });
  port = app.server.address().port;
  close = () => {
    app.server.closeAllConnections();
    app.close();
  };
}

process.stdout.write(`${JSON.stringify({ port })}\n`);

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    close();
    if (pool) pool.destroy();
    process.exit(0);
  });
}
