import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A loopback HTTP server with a hand-written handler, for misbehaving issuers. */
export interface StubServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Paths requested so far. */
  readonly paths: string[];
  close(): Promise<void>;
}

export async function startStubServer(
  handler: (request: IncomingMessage, response: ServerResponse, url: string) => void,
): Promise<StubServer> {
  const paths: string[] = [];
  let url = "";
  const server = createServer((request, response) => {
    paths.push(request.url ?? "");
    handler(request, response, url);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    paths,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Answers JSON with a length. */
export function sendJson(response: ServerResponse, body: unknown, status = 200): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}
