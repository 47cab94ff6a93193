import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** The demo upstream of `tollgate dev`: a private service that shows what the gateway forwarded. */
export interface DemoUpstream {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Starts a small HTTP service on loopback that answers every request with JSON describing it: method,
 * path, and the `Tollgate-Claim-*` and `X-Forwarded-*` headers the gateway added. Credential headers
 * are deliberately not echoed, so the demo cannot teach anyone to print tokens.
 */
export async function createDemoUpstream(
  options: { host?: string; port?: number } = {},
): Promise<DemoUpstream> {
  const server = createServer((req, res) => {
    const forwarded: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (
        (name.startsWith("tollgate-claim-") || name.startsWith("x-forwarded-")) &&
        typeof value === "string"
      ) {
        forwarded[name] = value;
      }
    }
    const body = JSON.stringify({
      service: "tollgate demo upstream",
      method: req.method,
      path: req.url,
      headers_from_gateway: forwarded,
    });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(`${body}\n`);
  });
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve),
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
