// The benchmark upstream: node:http on 127.0.0.1 answering every request with the same 64-byte body.
// Runs as its own process so it never shares an event loop with the proxy under test.
// Prints {"port": N} on stdout once listening.
import { createServer } from "node:http";
import { BODY_64 } from "../lib/measure.mjs";

const body = Buffer.from(BODY_64);
const server = createServer((request, response) => {
  // Drain any request body so keep-alive connections stay usable.
  request.resume();
  response.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
  response.end(body);
});
// Longer than nginx's and undici's idle timeouts, so the proxies decide when idle connections close and
// never race a server-side close between rounds.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
