// The floor under the tollgate target: node:http plus tollgate's own upstream forwarder
// (createUpstreamForwarder, the code a route's requests go through once allowed), and nothing else: no
// token check, no policy, no audit line, no metrics. The difference between this target and `tollgate`
// is what the gateway's pipeline costs; the difference between this one and `plain-undici` is what the
// forwarder's design saves or costs against the plain way of proxying with undici.
// Requests carry a Gateway-Authorization header of the same size as the tollgate target's token, so both
// parse the same bytes (the forwarder drops it before forwarding, as the gateway does).
// Imports the built package from dist/ (npm run build).
//
// Usage: node tollgate-forwarder.mjs <upstream-origin>
// Prints {"port": N, "headers": {"gateway-authorization": "Bearer …"}} once listening.
import { createServer } from "node:http";
import { createUpstreamForwarder } from "../../dist/proxy/index.js";

const upstream = process.argv[2];
if (!upstream) throw new Error("usage: tollgate-forwarder.mjs <upstream-origin>");

// What the gateway's compiled route holds for the forwarder: a name, the upstream URL and a timeout.
const route = Object.freeze({
  name: "bench",
  upstream: new URL(upstream),
  timeoutMs: 30_000,
  forwardClaims: Object.freeze([]),
});
const forwarder = createUpstreamForwarder({});
const consumedHeaders = Object.freeze(["gateway-authorization"]);

const server = createServer((request, response) => {
  forwarder
    .forward(request, response, route, {
      path: request.url ?? "/",
      search: "",
      requestId: "bench",
      clientIp: request.socket.remoteAddress ?? "",
      proto: "http",
      consumedHeaders,
    })
    .catch(() => response.destroy());
});

// Not a token (nothing here verifies one): filler as long as the header the tollgate target sends with
// its dev-issuer token (1,744 characters, measured; a real GitHub Actions token is somewhat shorter).
const filler = `Bearer eyJhbGciOiJSUzI1NiJ9.${"x".repeat(1706)}.signature`;

server.listen(0, "127.0.0.1", () => {
  const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
  process.stdout.write(`${JSON.stringify({ port, headers: { "gateway-authorization": filler } })}\n`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    forwarder.close().finally(() => process.exit(0));
  });
}
