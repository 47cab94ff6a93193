import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientAddress } from "../../src/proxy/index.js";
import { type Listening, listen, send } from "./harness.js";

describe("clientAddress", () => {
  let server: Listening;
  beforeAll(async () => {
    server = await listen((req: IncomingMessage, res) => {
      res.end(JSON.stringify({ trusted: clientAddress(req, true), untrusted: clientAddress(req, false) }));
    });
  });
  afterAll(() => server.close());

  const ask = async (headers: Record<string, string> = {}) =>
    JSON.parse((await send(`${server.origin}/`, { headers })).body.toString()) as {
      trusted: string;
      untrusted: string;
    };

  it("uses the last X-Forwarded-For entry, the one our load balancer added, when trusting the proxy", async () => {
    expect(await ask({ "x-forwarded-for": "6.6.6.6, 203.0.113.7" })).toEqual({
      trusted: "203.0.113.7",
      untrusted: "127.0.0.1",
    });
  });

  it("uses the socket peer when nothing trustworthy was forwarded", async () => {
    expect(await ask()).toEqual({ trusted: "127.0.0.1", untrusted: "127.0.0.1" });
    expect(await ask({ "x-forwarded-for": "203.0.113.7, not-an-ip" })).toEqual({
      trusted: "127.0.0.1",
      untrusted: "127.0.0.1",
    });
  });

  it("shows IPv4-mapped IPv6 as IPv4", async () => {
    expect((await ask({ "x-forwarded-for": "::ffff:198.51.100.4" })).trusted).toBe("198.51.100.4");
    expect((await ask({ "x-forwarded-for": "2001:db8::1" })).trusted).toBe("2001:db8::1");
  });
});
