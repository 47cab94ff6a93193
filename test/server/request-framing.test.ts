import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";

/**
 * Request smuggling (docs/security.md): a request whose framing two HTTP parsers could read differently
 * is refused by the gateway's parser (Node's llhttp, strict), so what reaches the upstream is one request
 * framed by undici, never the client's bytes. Each ambiguous framing is sent on a raw socket with a
 * second request hidden where a lenient parser would find it; the upstream must see nothing of it.
 */

/** Writes `raw` on a new connection and returns everything the gateway answered until it closed (bounded). */
function exchange(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(answer);
    }, 2_000);
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1");
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.on("error", reject);
    socket.write(raw);
  });
}

describe("request framing: what two parsers could read differently is refused", () => {
  let upstream: RecordingUpstream;
  let harness: GatewayHarness;
  let token: string;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  p:
    claims: { repository_owner_id: 65 }
routes:
  - { name: r, path_prefix: /r/, upstream: "${upstream.url}", allow: [p] }
`,
    );
    token = await harness.mint();
  });

  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  const hidden = "GET /r/smuggled HTTP/1.1\r\nhost: x\r\n\r\n";
  const ambiguous: Record<string, (auth: string) => string> = {
    "Content-Length and Transfer-Encoding together": (auth) =>
      `POST /r/a HTTP/1.1\r\nhost: x\r\n${auth}content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`,
    "two different Content-Length values": (auth) =>
      `POST /r/a HTTP/1.1\r\nhost: x\r\n${auth}content-length: 4\r\ncontent-length: ${4 + hidden.length}\r\n\r\nbody${hidden}`,
    "a Transfer-Encoding that does not end in chunked": (auth) =>
      `POST /r/a HTTP/1.1\r\nhost: x\r\n${auth}transfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n${hidden}`,
    "whitespace before the colon": (auth) =>
      `POST /r/a HTTP/1.1\r\nhost: x\r\n${auth}transfer-encoding : chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n${hidden}`,
    "an obsolete folded Transfer-Encoding": (auth) =>
      `POST /r/a HTTP/1.1\r\nhost: x\r\n${auth}transfer-encoding: \r\n chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n${hidden}`,
    "a bare LF in a chunk size line": (auth) =>
      `POST /r/a HTTP/1.1\r\nhost: x\r\n${auth}transfer-encoding: chunked\r\n\r\n4\nbody\r\n0\r\n\r\n${hidden}`,
  };

  for (const [name, request] of Object.entries(ambiguous)) {
    it(`refuses ${name} with 400 and forwards nothing of it`, async () => {
      const seen = upstream.seen.length;
      const answer = await exchange(
        harness.running.address.port,
        request(`gateway-authorization: Bearer ${token}\r\n`),
      );
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).not.toContain("hello from upstream");
      expect(upstream.seen.length).toBe(seen);
    });
  }

  it("the twin: a well-framed chunked request followed by a second request is two requests, both judged", async () => {
    const seen = upstream.seen.length;
    const auth = `gateway-authorization: Bearer ${token}\r\n`;
    const answer = await exchange(
      harness.running.address.port,
      `POST /r/a HTTP/1.1\r\nhost: x\r\n${auth}transfer-encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n` +
        `GET /r/second HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
    );
    // The first is forwarded; the second carries no token and is refused on its own.
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain("HTTP/1.1 401 ");
    expect(upstream.seen.slice(seen).map((request) => [request.url, request.body.toString()])).toEqual([
      ["/r/a", "body"],
    ]);
  });
});
