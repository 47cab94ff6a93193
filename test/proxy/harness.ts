import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { toErrorResponse } from "../../src/errors/index.js";
import {
  clientAddress,
  createRouteTable,
  type ForwardContext,
  type ForwardResult,
  normalizeRequestPath,
  type UpstreamForwarder,
  upstreamPathFor,
} from "../../src/proxy/index.js";
import type { ProxyRoute } from "../../src/proxy/types.js";

/** A compiled route with test defaults; only what a test cares about is given. */
export function testRoute(overrides: Partial<ProxyRoute> & { upstream: URL }): ProxyRoute {
  return {
    name: "test-route",
    pathPrefix: "/",
    stripPrefix: false,
    timeoutMs: 5_000,
    forwardClaims: [],
    authHeader: "gateway-authorization",
    access: { allow: [], deny: [] },
    ...overrides,
  };
}

export interface Listening {
  server: Server;
  port: number;
  origin: string;
  close(): Promise<void>;
}

/** Starts a real node:http server on 127.0.0.1 with an ephemeral port. */
export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Listening> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One forward() outcome as the test proxy saw it. */
export type Outcome = { result: ForwardResult } | { error: unknown };

export interface TestProxy extends Listening {
  /** Outcomes in completion order. */
  outcomes: Outcome[];
  /** Resolves with the next outcome (or one already recorded and not yet taken). */
  nextOutcome(): Promise<Outcome>;
}

/**
 * A miniature of the gateway's pipeline around the forwarder under test: normalise, route, forward,
 * and answer forwarder errors with the catalogue's JSON, as the real server does.
 */
export async function startTestProxy(
  forwarder: UpstreamForwarder,
  routes: readonly ProxyRoute[],
  context: Partial<ForwardContext> = {},
): Promise<TestProxy> {
  const table = createRouteTable(routes);
  const outcomes: Outcome[] = [];
  let taken = 0;
  const waiters: ((outcome: Outcome) => void)[] = [];
  const record = (outcome: Outcome) => {
    outcomes.push(outcome);
    const waiter = waiters.shift();
    if (waiter !== undefined) {
      taken++;
      waiter(outcome);
    }
  };
  const listening = await listen((req, res) => {
    const target = normalizeRequestPath(req.url ?? "");
    const route = target && table.match(req.headers.host, target.path);
    if (target === undefined || route === undefined) {
      res.writeHead(404).end();
      return;
    }
    forwarder
      .forward(req, res, route, {
        path: upstreamPathFor(route, target.path),
        search: target.search,
        requestId: "req-1",
        clientIp: clientAddress(req, false),
        proto: "http",
        consumedHeaders: ["gateway-authorization"],
        ...context,
      })
      .then(
        (result) => record({ result }),
        (error: unknown) => {
          record({ error });
          const response = toErrorResponse(error, "req-1");
          if (res.headersSent) return void res.destroy();
          res.writeHead(response.status, { "content-type": "application/json" });
          res.end(JSON.stringify(response.body));
        },
      );
  });
  return {
    ...listening,
    outcomes,
    nextOutcome: () =>
      new Promise<Outcome>((resolve) => {
        if (taken < outcomes.length) resolve(outcomes[taken++]!);
        else waiters.push(resolve);
      }),
  };
}

export interface ClientResponse {
  status: number;
  rawHeaders: string[];
  headers: IncomingMessage["headers"];
  body: Buffer;
}

/** A plain HTTP/1.1 request without connection reuse; `body` may be a Buffer or written by `write`. */
export function send(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string | string[]> | string[];
    body?: Buffer | string;
  } = {},
): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? "GET", headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            rawHeaders: res.rawHeaders,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Values of every occurrence of a header in a raw header list, case-insensitively. */
export function headerValues(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === name) values.push(rawHeaders[i + 1]!);
  }
  return values;
}
