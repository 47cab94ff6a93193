import { createHash, randomBytes } from "node:crypto";
import { type IncomingMessage, request, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Socket } from "node:net";
import { Pool } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { isTollgateError, TollgateError } from "../../src/errors/index.js";
import {
  createUpstreamForwarder,
  type ForwardContext,
  type UpstreamForwarderOptions,
} from "../../src/proxy/index.js";
import type { ProxyRoute } from "../../src/proxy/types.js";
import { headerValues, listen, type Outcome, send, startTestProxy, testRoute } from "./harness.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Setup {
  proxyUrl: string;
  nextOutcome(): Promise<Outcome>;
  upstreamOrigin: string;
}

/** Upstream → forwarder → test proxy, all on loopback, torn down after the test. */
async function setup(
  upstreamHandler: (req: IncomingMessage, res: ServerResponse) => void,
  routes: (origin: string) => ProxyRoute[] = (origin) => [testRoute({ upstream: new URL(origin) })],
  context: Partial<ForwardContext> = {},
  options: UpstreamForwarderOptions = {},
): Promise<Setup> {
  const upstream = await listen(upstreamHandler);
  cleanups.push(upstream.close);
  const forwarder = createUpstreamForwarder(options);
  cleanups.push(() => forwarder.close());
  const proxy = await startTestProxy(forwarder, routes(upstream.origin), context);
  cleanups.push(proxy.close);
  return { proxyUrl: proxy.origin, nextOutcome: proxy.nextOutcome, upstreamOrigin: upstream.origin };
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function resultOf(outcome: Outcome) {
  if (!("result" in outcome)) throw new Error(`forward() failed: ${String(outcome.error)}`);
  return outcome.result;
}

function errorOf(outcome: Outcome) {
  if (!("error" in outcome)) throw new Error("forward() succeeded, an error was expected");
  if (!isTollgateError(outcome.error)) throw new Error(`not a TollgateError: ${String(outcome.error)}`);
  return outcome.error;
}

/** Echo upstream: answers with what it saw as JSON. */
function echoUpstream(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    const body = JSON.stringify({
      method: req.method,
      url: req.url,
      rawHeaders: req.rawHeaders,
      bodyBytes: Buffer.concat(chunks).length,
    });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
}

interface Echo {
  method: string;
  url: string;
  rawHeaders: string[];
  bodyBytes: number;
}

const mebibyte = 1024 * 1024;
const chunkSize = 64 * 1024;
const bigSize = 20 * mebibyte;

describe("forwarder: streaming", () => {
  it("streams a 20 MiB upload: the upstream sees the first chunk before the client has sent the rest", async () => {
    const firstChunkUpstream = deferred();
    const { proxyUrl, nextOutcome } = await setup((req, res) => {
      const hash = createHash("sha256");
      let bytes = 0;
      req.on("data", (chunk: Buffer) => {
        if (bytes === 0) firstChunkUpstream.resolve();
        bytes += chunk.length;
        hash.update(chunk);
      });
      req.on("end", () => res.end(JSON.stringify({ bytes, sha256: hash.digest("hex") })));
    });

    const sent = createHash("sha256");
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        `${proxyUrl}/upload`,
        { method: "PUT", headers: { "content-length": String(bigSize) }, agent: false },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (text: string) => {
            body += text;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("error", reject);
      void (async () => {
        const first = randomBytes(chunkSize);
        sent.update(first);
        req.write(first);
        // A proxy that buffered the body would never pass this point.
        await firstChunkUpstream.promise;
        for (let written = chunkSize; written < bigSize; written += chunkSize) {
          const chunk = randomBytes(chunkSize);
          sent.update(chunk);
          if (!req.write(chunk)) await new Promise((resolve) => req.once("drain", resolve));
        }
        req.end();
      })();
    });

    const { status, body } = await answer;
    expect(status).toBe(200);
    expect(JSON.parse(body)).toEqual({ bytes: bigSize, sha256: sent.digest("hex") });
    expect(resultOf(await nextOutcome())).toEqual({
      status: 200,
      bytesIn: bigSize,
      bytesOut: Buffer.byteLength(body),
    });
  });

  it("streams a 20 MiB download: the client sees the first chunk before the upstream has sent the rest", async () => {
    const firstChunkClient = deferred();
    const sentHash = deferred<string>();
    const { proxyUrl, nextOutcome } = await setup((_req, res) => {
      void (async () => {
        const hash = createHash("sha256");
        res.writeHead(200, { "content-type": "application/octet-stream" });
        const first = randomBytes(chunkSize);
        hash.update(first);
        res.write(first);
        await firstChunkClient.promise;
        for (let written = chunkSize; written < bigSize; written += chunkSize) {
          const chunk = randomBytes(chunkSize);
          hash.update(chunk);
          if (!res.write(chunk)) await new Promise((resolve) => res.once("drain", resolve));
        }
        res.end();
        sentHash.resolve(hash.digest("hex"));
      })();
    });

    const received = await new Promise<{ bytes: number; sha256: string; chunked: boolean }>(
      (resolve, reject) => {
        request(`${proxyUrl}/download`, { agent: false }, (res) => {
          const hash = createHash("sha256");
          let bytes = 0;
          res.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
            hash.update(chunk);
            firstChunkClient.resolve();
          });
          res.on("end", () =>
            resolve({
              bytes,
              sha256: hash.digest("hex"),
              chunked: res.headers["transfer-encoding"] === "chunked",
            }),
          );
        })
          .on("error", reject)
          .end();
      },
    );

    expect(received).toEqual({ bytes: bigSize, sha256: await sentHash.promise, chunked: true });
    expect(resultOf(await nextOutcome())).toEqual({ status: 200, bytesIn: 0, bytesOut: bigSize });
  });

  it("forwards a chunked upload sent with Expect: 100-continue, without the Expect header", async () => {
    const { proxyUrl, nextOutcome } = await setup(echoUpstream);
    const echo = await new Promise<Echo>((resolve, reject) => {
      const req = request(
        `${proxyUrl}/chunked`,
        { method: "POST", headers: { expect: "100-continue", "transfer-encoding": "chunked" }, agent: false },
        (res) => {
          let body = "";
          res.on("data", (chunk: Buffer) => {
            body += chunk.toString();
          });
          res.on("end", () => resolve(JSON.parse(body) as Echo));
        },
      );
      req.on("error", reject);
      req.on("continue", () => {
        req.write("a".repeat(1000));
        req.end("b".repeat(234));
      });
    });
    expect(echo.bodyBytes).toBe(1234);
    expect(headerValues(echo.rawHeaders, "expect")).toEqual([]);
    expect(headerValues(echo.rawHeaders, "transfer-encoding")).toEqual(["chunked"]);
    expect(resultOf(await nextOutcome()).bytesIn).toBe(1234);
  });

  it("answers HEAD with the upstream's headers and no body", async () => {
    const { proxyUrl, nextOutcome } = await setup((_req, res) => {
      res.writeHead(200, { "content-length": "42", "x-head": "yes" });
      res.end();
    });
    const response = await send(`${proxyUrl}/thing`, { method: "HEAD" });
    expect(response.status).toBe(200);
    expect(response.headers["content-length"]).toBe("42");
    expect(response.headers["x-head"]).toBe("yes");
    expect(response.body.length).toBe(0);
    expect(resultOf(await nextOutcome())).toEqual({ status: 200, bytesIn: 0, bytesOut: 0 });
  });
});

describe("forwarder: header hygiene", () => {
  const hostile = [
    ["Host", "gateway.example.com:8443"],
    ["Connection", "keep-alive, X-Hop-Custom"],
    ["X-Hop-Custom", "must-go"],
    ["Keep-Alive", "timeout=5"],
    ["Proxy-Connection", "keep-alive"],
    ["Proxy-Authorization", "Basic b2lkYzp0b2tlbg=="],
    ["TE", "trailers"],
    ["Trailer", "X-Trailer"],
    ["Upgrade", "h2c"],
    ["Gateway-Authorization", "Bearer consumed-token"],
    ["Tollgate-Claim-Repository", "evil-org/evil-repo"],
    ["tollgate-claim-admin", "true"],
    ["X-Forwarded-For", "6.6.6.6"],
    ["X-Forwarded-Host", "evil.example"],
    ["X-Forwarded-Proto", "https"],
    ["X-Forwarded-Prefix", "/evil"],
    ["Forwarded", "for=6.6.6.6"],
    ["X-Real-IP", "6.6.6.6"],
    ["X-Request-Id", "spoofed"],
    ["Cookie", "session=kept"],
    ["X-Keep", "kept-1"],
    ["X-Keep", "kept-2"],
    ["Authorization", "Bearer for-the-upstream"],
    // Chunked, so that the Trailer header is legal for the client library sending it.
    ["Transfer-Encoding", "chunked"],
  ].flat();

  it("removes hop-by-hop, consumed, spoofed claim and forwarding headers, and keeps the rest", async () => {
    const { proxyUrl, upstreamOrigin } = await setup(echoUpstream);
    const response = await send(`${proxyUrl}/h`, { method: "POST", headers: hostile, body: "x" });
    const echo = JSON.parse(response.body.toString()) as Echo;
    const seen = (name: string) => headerValues(echo.rawHeaders, name);

    for (const gone of [
      "x-hop-custom",
      "keep-alive",
      "proxy-connection",
      "proxy-authorization",
      "te",
      "trailer",
      "upgrade",
      "gateway-authorization",
      "tollgate-claim-repository",
      "tollgate-claim-admin",
      "x-forwarded-prefix",
      "forwarded",
      "x-real-ip",
    ]) {
      expect(seen(gone), gone).toEqual([]);
    }
    // Allow twin: ordinary headers, duplicates and a non-consumed Authorization pass unchanged.
    expect(seen("cookie")).toEqual(["session=kept"]);
    expect(seen("x-keep")).toEqual(["kept-1", "kept-2"]);
    expect(seen("authorization")).toEqual(["Bearer for-the-upstream"]);
    // Replaced, not appended.
    expect(seen("x-forwarded-for")).toEqual(["127.0.0.1"]);
    expect(seen("x-forwarded-proto")).toEqual(["http"]);
    expect(seen("x-forwarded-host")).toEqual(["gateway.example.com:8443"]);
    expect(seen("x-request-id")).toEqual(["req-1"]);
    expect(seen("host")).toEqual([new URL(upstreamOrigin).host]);
  });

  it("strips Authorization too when the server consumed it", async () => {
    const { proxyUrl } = await setup(echoUpstream, undefined, {
      consumedHeaders: ["gateway-authorization", "authorization"],
    });
    const response = await send(`${proxyUrl}/h`, { method: "POST", headers: hostile, body: "x" });
    const echo = JSON.parse(response.body.toString()) as Echo;
    expect(headerValues(echo.rawHeaders, "authorization")).toEqual([]);
    expect(headerValues(echo.rawHeaders, "gateway-authorization")).toEqual([]);
  });

  it("sends the route's claims as Tollgate-Claim-* and nothing the client claimed", async () => {
    const claims = {
      repository: "octo-org/octo-repo",
      run_id: 42,
      environment: ["not", "a", "string"],
      injected: "a\r\nx-evil: 1",
      unicode: "caf\u00e9",
      unlisted: "not forwarded",
    };
    const { proxyUrl } = await setup(
      echoUpstream,
      (origin) => [
        testRoute({
          upstream: new URL(origin),
          forwardClaims: [
            "repository",
            "run_id",
            "environment",
            "injected",
            "unicode",
            "missing",
            "bad name",
          ],
        }),
      ],
      { claims },
    );
    const response = await send(`${proxyUrl}/c`, {
      // A raw header list: Node then sends no Host of its own.
      headers: [
        "Host",
        "gw.example",
        "Tollgate-Claim-Repository",
        "evil/evil",
        "Tollgate-Claim-Unlisted",
        "spoofed",
      ],
    });
    expect(response.status, response.body.toString()).toBe(200);
    const echo = JSON.parse(response.body.toString()) as Echo;
    const claimHeaders = echo.rawHeaders.filter(
      (_, i) => i % 2 === 0 && /^tollgate-claim-/i.test(echo.rawHeaders[i]!),
    );
    expect(claimHeaders.map((name) => name.toLowerCase()).sort()).toEqual([
      "tollgate-claim-environment",
      "tollgate-claim-repository",
      "tollgate-claim-run_id",
    ]);
    expect(headerValues(echo.rawHeaders, "tollgate-claim-repository")).toEqual(["octo-org/octo-repo"]);
    expect(headerValues(echo.rawHeaders, "tollgate-claim-run_id")).toEqual(["42"]);
    expect(headerValues(echo.rawHeaders, "tollgate-claim-environment")).toEqual(['["not","a","string"]']);
    expect(headerValues(echo.rawHeaders, "x-evil")).toEqual([]);
  });

  it("removes client-sent Tollgate-Claim-* headers on a route that forwards no claims", async () => {
    const { proxyUrl } = await setup(echoUpstream, undefined, {
      claims: { repository: "octo-org/octo-repo" },
    });
    const response = await send(`${proxyUrl}/c`, { headers: { "Tollgate-Claim-Repository": "evil/evil" } });
    const echo = JSON.parse(response.body.toString()) as Echo;
    expect(echo.rawHeaders.some((name, i) => i % 2 === 0 && /^tollgate-claim-/i.test(name))).toBe(false);
  });

  it("appends the peer address to X-Forwarded-For only when the server trusts the one it received", async () => {
    const trusted = await setup(echoUpstream, undefined, { trustedForwardedFor: "203.0.113.9, 10.0.0.2" });
    const echo = JSON.parse((await send(`${trusted.proxyUrl}/x`)).body.toString()) as Echo;
    expect(headerValues(echo.rawHeaders, "x-forwarded-for")).toEqual(["203.0.113.9, 10.0.0.2, 127.0.0.1"]);

    const untrusted = await setup(echoUpstream, undefined, { proto: "https" });
    const spoofed = await send(`${untrusted.proxyUrl}/x`, { headers: { "x-forwarded-for": "203.0.113.9" } });
    const echo2 = JSON.parse(spoofed.body.toString()) as Echo;
    expect(headerValues(echo2.rawHeaders, "x-forwarded-for")).toEqual(["127.0.0.1"]);
    expect(headerValues(echo2.rawHeaders, "x-forwarded-proto")).toEqual(["https"]);
  });

  it("passes response headers through, several Set-Cookie included, without hop-by-hop ones", async () => {
    const { proxyUrl } = await setup((_req, res) => {
      res.writeHead(201, [
        "Set-Cookie",
        "a=1; Path=/",
        "Set-Cookie",
        "b=2; Path=/",
        "X-Upstream",
        "yes",
        "Connection",
        "X-Upstream-Hop",
        "X-Upstream-Hop",
        "must-go",
        "Proxy-Authenticate",
        "Basic",
        "Content-Length",
        "2",
      ]);
      res.end("ok");
    });
    const response = await send(`${proxyUrl}/r`);
    expect(response.status).toBe(201);
    expect(headerValues(response.rawHeaders, "set-cookie")).toEqual(["a=1; Path=/", "b=2; Path=/"]);
    expect(headerValues(response.rawHeaders, "x-upstream")).toEqual(["yes"]);
    expect(headerValues(response.rawHeaders, "x-upstream-hop")).toEqual([]);
    expect(headerValues(response.rawHeaders, "proxy-authenticate")).toEqual([]);
    expect(response.body.toString()).toBe("ok");
  });

  it("lower-cases header names that look like object members, and still drops oddly cased hop-by-hop ones", async () => {
    // Header names are looked up in tables (undici's, our own sets); a name such as `constructor` or
    // `__proto__` must come out as that plain string, not as something a table inherited.
    const { proxyUrl } = await setup(echoUpstream);
    const request = await send(`${proxyUrl}/names`, {
      // A list of headers gets no Host from Node's client; the server refuses a request without one.
      headers: [
        "Host",
        "gateway.example.com",
        "Constructor",
        "c1",
        "__proto__",
        "p1",
        "toString",
        "t1",
        "CONNECTION",
        "X-Odd-Hop",
        "X-ODD-HOP",
        "gone",
        "KEEP-ALIVE",
        "timeout=5",
      ],
    });
    const echo = JSON.parse(request.body.toString()) as Echo;
    expect(headerValues(echo.rawHeaders, "constructor")).toEqual(["c1"]);
    expect(headerValues(echo.rawHeaders, "__proto__")).toEqual(["p1"]);
    expect(headerValues(echo.rawHeaders, "tostring")).toEqual(["t1"]);
    expect(headerValues(echo.rawHeaders, "x-odd-hop")).toEqual([]);
    expect(headerValues(echo.rawHeaders, "keep-alive")).toEqual([]);

    const { proxyUrl: answering } = await setup((_req, res) => {
      res.writeHead(200, [
        "Constructor",
        "c2",
        "__proto__",
        "p2",
        "CONNECTION",
        "X-Odd-Hop",
        "X-ODD-HOP",
        "gone",
        "Content-Length",
        "2",
      ]);
      res.end("ok");
    });
    const response = await send(`${answering}/names`);
    expect(headerValues(response.rawHeaders, "constructor")).toEqual(["c2"]);
    expect(headerValues(response.rawHeaders, "__proto__")).toEqual(["p2"]);
    expect(headerValues(response.rawHeaders, "x-odd-hop")).toEqual([]);
    expect(response.body.toString()).toBe("ok");
  });

  it("keeps every Set-Cookie when the server had already set a header of its own", async () => {
    const upstream = await listen((_req, res) => {
      res.writeHead(200, ["Set-Cookie", "a=1", "Set-Cookie", "b=2", "Content-Length", "0"]);
      res.end();
    });
    cleanups.push(upstream.close);
    const forwarder = createUpstreamForwarder();
    cleanups.push(() => forwarder.close());
    const route = testRoute({ upstream: new URL(upstream.origin) });
    const proxy = await listen((req, res) => {
      res.setHeader("x-gateway", "1");
      void forwarder.forward(req, res, route, {
        path: "/",
        search: "",
        requestId: "r",
        clientIp: "127.0.0.1",
        proto: "http",
        consumedHeaders: [],
      });
    });
    cleanups.push(proxy.close);
    const response = await send(`${proxy.origin}/`);
    expect(headerValues(response.rawHeaders, "set-cookie")).toEqual(["a=1", "b=2"]);
    expect(headerValues(response.rawHeaders, "x-gateway")).toEqual(["1"]);
  });
});

describe("forwarder: upstream paths", () => {
  const cases: [prefix: string, strip: boolean, base: string, requested: string, expected: string][] = [
    ["/svc/", true, "/base/", "/svc/a/b?x=1&y=2", "/base/a/b?x=1&y=2"],
    ["/svc/", false, "/base/", "/svc/a/b?x=1", "/base/svc/a/b?x=1"],
    ["/svc/", true, "/", "/svc/a", "/a"],
    ["/svc/", false, "/", "/svc/a", "/svc/a"],
    ["/svc/", true, "/base", "/svc", "/base/"],
    ["/svc", true, "/", "/svc/../svc/x", "/x"],
    ["/svc/", true, "/", "/svc/%2e/a%2Db%20c", "/a-b%20c"],
  ];
  it.each(cases)(
    "prefix %j strip %j base %j: %j → %j",
    async (pathPrefix, stripPrefix, base, requested, expected) => {
      const { proxyUrl } = await setup(echoUpstream, (origin) => [
        testRoute({ upstream: new URL(base, origin), pathPrefix, stripPrefix }),
      ]);
      const response = await send(`${proxyUrl}${requested}`);
      expect((JSON.parse(response.body.toString()) as Echo).url).toBe(expected);
    },
  );

  it("shares one dispatcher between routes of the same origin and creates it only when first used", async () => {
    const created: string[] = [];
    const { proxyUrl } = await setup(
      echoUpstream,
      (origin) => [
        testRoute({
          name: "one",
          upstream: new URL("/one/", origin),
          pathPrefix: "/one/",
          stripPrefix: true,
        }),
        testRoute({
          name: "two",
          upstream: new URL("/two/", origin),
          pathPrefix: "/two/",
          stripPrefix: true,
        }),
      ],
      {},
      {
        dispatcherFactory: (origin) => {
          created.push(origin.href);
          return new Pool(origin);
        },
      },
    );
    expect(created).toEqual([]);
    await send(`${proxyUrl}/one/a`);
    await send(`${proxyUrl}/two/a`);
    await send(`${proxyUrl}/one/b`);
    expect(created).toHaveLength(1);
  });
});

describe("forwarder: upstream failures", () => {
  it("answers 502 TG_UPSTREAM_UNAVAILABLE when the upstream refuses connections", async () => {
    const gone = await listen(() => {});
    const origin = gone.origin;
    await gone.close();
    const forwarder = createUpstreamForwarder();
    cleanups.push(() => forwarder.close());
    const proxy = await startTestProxy(forwarder, [testRoute({ name: "dead", upstream: new URL(origin) })]);
    cleanups.push(proxy.close);

    const response = await send(`${proxy.origin}/x`, { method: "POST", body: "payload" });
    expect(response.status).toBe(502);
    expect(JSON.parse(response.body.toString()).error.code).toBe("TG_UPSTREAM_UNAVAILABLE");
    const error = errorOf(await proxy.nextOutcome());
    expect(error.code).toBe("TG_UPSTREAM_UNAVAILABLE");
    expect(error.message).toContain('route "dead"');
    expect(error.message).toContain("ECONNREFUSED");
    expect(error.cause).toBeInstanceOf(Error);
  });

  it("answers 200 when the same route's upstream is up (twin of the refused case)", async () => {
    const { proxyUrl, nextOutcome } = await setup(echoUpstream);
    expect((await send(`${proxyUrl}/x`, { method: "POST", body: "payload" })).status).toBe(200);
    expect(resultOf(await nextOutcome()).bytesIn).toBe(7);
  });

  it("answers 504 TG_UPSTREAM_TIMEOUT when the upstream sends no headers within timeoutMs", async () => {
    const release = deferred();
    const { proxyUrl, nextOutcome } = await setup(
      (_req, res) => {
        void release.promise.then(() => res.end("late"));
      },
      (origin) => [testRoute({ name: "slow", upstream: new URL(origin), timeoutMs: 150 })],
    );
    const response = await send(`${proxyUrl}/slow`);
    release.resolve();
    expect(response.status).toBe(504);
    expect(JSON.parse(response.body.toString()).error.code).toBe("TG_UPSTREAM_TIMEOUT");
    const error = errorOf(await nextOutcome());
    expect(error.code).toBe("TG_UPSTREAM_TIMEOUT");
    expect(error.message).toContain('route "slow"');
  });

  it("answers 200 when the upstream answers within timeoutMs (twin of the timeout case)", async () => {
    const { proxyUrl } = await setup(
      (_req, res) => res.end("prompt"),
      (origin) => [testRoute({ name: "slow", upstream: new URL(origin), timeoutMs: 5_000 })],
    );
    const response = await send(`${proxyUrl}/slow`);
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe("prompt");
  });

  const canary = "UPSTREAM-CANARY-7f3a9c";

  /** A raw TCP upstream that reads the request and answers with `reply`, then closes. */
  async function rawUpstream(reply: (socket: Socket) => void): Promise<string> {
    const server = createNetServer((socket) => {
      socket.once("data", () => reply(socket));
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no address");
    return `http://127.0.0.1:${address.port}`;
  }

  it.each([
    [
      "answers garbage instead of HTTP",
      (socket: Socket) => socket.end(`NOT-HTTP ${canary}\r\n\r\n${canary}`),
    ],
    ["resets the connection", (socket: Socket) => socket.resetAndDestroy()],
    [
      "closes the connection mid-headers",
      (socket: Socket) => socket.end(`HTTP/1.1 200 OK\r\nX-Detail: ${canary}`),
    ],
  ])("never echoes connection error details when the upstream %s", async (_name, reply) => {
    const origin = await rawUpstream(reply);
    const forwarder = createUpstreamForwarder();
    cleanups.push(() => forwarder.close());
    const proxy = await startTestProxy(forwarder, [testRoute({ name: "broken", upstream: new URL(origin) })]);
    cleanups.push(proxy.close);

    const response = await send(`${proxy.origin}/x`);
    expect(response.status).toBe(502);
    expect(response.body.toString()).not.toContain(canary);
    expect(response.rawHeaders.join("\n")).not.toContain(canary);
    const error = errorOf(await proxy.nextOutcome());
    expect(error.code).toBe("TG_UPSTREAM_UNAVAILABLE");
    expect(error.message).not.toContain(canary);
  });

  it("passes an upstream's own 500 answer through as it is (twin: that is the upstream's reply, not a failure)", async () => {
    const { proxyUrl, nextOutcome } = await setup((_req, res) => {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(`upstream says ${canary}`);
    });
    const response = await send(`${proxyUrl}/x`);
    expect(response.status).toBe(500);
    expect(response.body.toString()).toBe(`upstream says ${canary}`);
    expect(resultOf(await nextOutcome()).status).toBe(500);
  });

  it("cuts the client connection when the upstream stalls after the headers, and reports what was sent", async () => {
    const release = deferred();
    const { proxyUrl, nextOutcome } = await setup(
      (_req, res) => {
        res.writeHead(200, { "content-length": "100" });
        res.write("x".repeat(10));
        void release.promise.then(() => res.destroy());
      },
      (origin) => [testRoute({ upstream: new URL(origin), timeoutMs: 150 })],
    );
    const failure = await new Promise<{ status: number; received: number; error: string }>((resolve) => {
      request(`${proxyUrl}/stall`, { agent: false }, (res) => {
        let received = 0;
        res.on("data", (chunk: Buffer) => {
          received += chunk.length;
        });
        res.on("error", (error) => resolve({ status: res.statusCode ?? 0, received, error: error.message }));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, received, error: "none" }));
      }).end();
    });
    release.resolve();
    expect(failure.status).toBe(200);
    expect(failure.received).toBe(10);
    expect(failure.error).not.toBe("none");
    expect(resultOf(await nextOutcome())).toEqual({ status: 200, bytesIn: 0, bytesOut: 10 });
  });
});

describe("forwarder: cancellation", () => {
  /** An upstream that holds every request open and tells whether the exchange was cut before it answered. */
  function holdingUpstream() {
    const received = deferred();
    const cut = deferred<boolean>();
    const release = deferred();
    const handler = (_req: IncomingMessage, res: ServerResponse) => {
      received.resolve();
      res.on("close", () => cut.resolve(!res.writableFinished));
      void release.promise.then(() => {
        if (!res.destroyed) res.end("done");
      });
    };
    return { handler, received, cut, release };
  }

  it("aborts the upstream request when the client goes away, and reports 499", async () => {
    const upstream = holdingUpstream();
    const { proxyUrl, nextOutcome } = await setup(upstream.handler);
    const client = request(`${proxyUrl}/hold`, { agent: false });
    client.on("error", () => {});
    client.end();
    await upstream.received.promise;
    client.destroy();
    expect(await upstream.cut.promise).toBe(true);
    expect(resultOf(await nextOutcome())).toEqual({ status: 499, bytesIn: 0, bytesOut: 0 });
  });

  it("does not forward at all when the client left before forwarding began, and reports 499", async () => {
    // A client whose connection ended while the gateway was still deciding (its body was malformed and
    // Node answered 400, or it hung up): forwarding then would hold an upstream request open with nobody
    // to answer, until the route's timeout, and hold a graceful stop's pool close as long.
    const upstream = holdingUpstream();
    let upstreamRequests = 0;
    const counting = await listen((req, res) => {
      upstreamRequests += 1;
      upstream.handler(req, res);
    });
    cleanups.push(counting.close);
    const forwarder = createUpstreamForwarder();
    cleanups.push(() => forwarder.close());
    const route = testRoute({ upstream: new URL(counting.origin) });
    const outcome = deferred<Outcome>();
    const proxy = await listen((req, res) => {
      req.socket.once("close", () => {
        forwarder
          .forward(req, res, route, {
            path: "/late",
            search: "",
            requestId: "req-late",
            clientIp: "127.0.0.1",
            proto: "http",
            consumedHeaders: [],
          })
          .then(
            (result) => outcome.resolve({ result }),
            (error: unknown) => outcome.resolve({ error }),
          );
      });
    });
    cleanups.push(proxy.close);
    const client = request(`${proxy.origin}/late`, { method: "POST", agent: false });
    client.on("error", () => {});
    client.write("partial body");
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.destroy();
    expect(resultOf(await outcome.promise)).toMatchObject({ status: 499, bytesOut: 0 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(upstreamRequests).toBe(0);
  });

  it("lets the upstream finish when the client stays (twin of the abort case)", async () => {
    const upstream = holdingUpstream();
    const { proxyUrl, nextOutcome } = await setup(upstream.handler);
    const response = send(`${proxyUrl}/hold`);
    await upstream.received.promise;
    upstream.release.resolve();
    expect((await response).body.toString()).toBe("done");
    expect(await upstream.cut.promise).toBe(false);
    expect(resultOf(await nextOutcome()).status).toBe(200);
  });

  it.each([
    ["no reason", undefined, 502, "TG_UPSTREAM_UNAVAILABLE"],
    ["a TollgateError reason", new TollgateError("TG_SHUTTING_DOWN", "draining"), 503, "TG_SHUTTING_DOWN"],
  ])(
    "aborts the upstream request when the context's signal fires (%s)",
    async (_name, reason, status, code) => {
      const upstream = holdingUpstream();
      const controller = new AbortController();
      const { proxyUrl, nextOutcome } = await setup(upstream.handler, undefined, {
        signal: controller.signal,
      });
      const response = send(`${proxyUrl}/hold`);
      await upstream.received.promise;
      controller.abort(reason);
      expect(await upstream.cut.promise).toBe(true);
      expect(errorOf(await nextOutcome()).code).toBe(code);
      const answer = await response;
      expect(answer.status).toBe(status);
      expect(JSON.parse(answer.body.toString()).error.code).toBe(code);
    },
  );
});
