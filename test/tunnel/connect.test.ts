import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { type AddressInfo, createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTunnelFeatureFactory,
  type DialAddress,
  type LookupAll,
  systemDial,
} from "../../src/tunnel/index.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import {
  closed,
  closedPort,
  type EchoServer,
  echoRoundTrip,
  eventually,
  rawConnect,
  startEchoServer,
} from "./helpers.js";

/** Names the injected resolver knows; anything else fails like NXDOMAIN. */
const records = new Map<string, string[]>();
const lookups: string[] = [];
const lookup: LookupAll = async (name) => {
  lookups.push(name);
  const answers = records.get(name);
  if (answers === undefined) throw Object.assign(new Error(`no such name ${name}`), { code: "ENOTFOUND" });
  if (answers.length === 1 && answers[0] === "hang") return new Promise(() => undefined);
  return answers.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
};
/** Every address the gateway dialled; only 127.0.0.1 is really connected, anything else fails at once. */
let dialled: string[] = [];
const dial: DialAddress = (options) => {
  dialled.push(`${options.host}:${options.port}`);
  if (options.host === "127.0.0.1") return systemDial(options);
  return systemDial({ ...options, host: "127.0.0.1", port: unreachable });
};
let unreachable = 0;

describe("CONNECT tunnels through the gateway", () => {
  let harness: GatewayHarness;
  let echo: EchoServer;
  let unnamed: EchoServer;
  let banner: Server;
  let token: string;

  beforeAll(async () => {
    echo = await startEchoServer();
    unnamed = await startEchoServer();
    unreachable = await closedPort();
    banner = createServer((socket) => socket.end("SSH-2.0-banner\r\n"));
    banner.listen(0, "127.0.0.1");
    await once(banner, "listening");
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  ci: { claims: { repository_owner_id: 65 } }
  forks: { claims: { repository_owner_id: 65, event_name: pull_request_target } }
tunnels:
  - name: echo
    destinations: ["127.0.0.1:${echo.port}", "app.rebind.test:${echo.port}", "nameonly.test:${unnamed.port}", "127.0.0.1:${unreachable}", "127.0.0.1:${(banner.address() as AddressInfo).port}"]
    allow: [ci]
    deny: [forks]
    connect_timeout: 400ms
  - name: slow
    destinations: ["slow.test:${echo.port}"]
    allow: [ci]
    connect_timeout: 300ms
`,
      { features: [createTunnelFeatureFactory({ lookup, dial })] },
    );
    token = await harness.mint();
  });
  afterAll(async () => {
    await harness?.close();
    await echo?.close();
    await unnamed?.close();
    banner?.close();
  });

  const port = () => harness.running.address.port;

  it("opens a tunnel to an explicitly named loopback destination with Proxy-Authorization: Bearer", async () => {
    const answer = await rawConnect(port(), `127.0.0.1:${echo.port}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(answer.status).toBe(200);
    expect(await echoRoundTrip(answer.socket, "hello through the tunnel", answer.rest)).toBe(
      "hello through the tunnel",
    );
    answer.socket.end();
    await closed(answer.socket);
  });

  it("carries 16 MiB each way intact (bulk reads, reused buffers, batched writes)", async () => {
    const payload = randomBytes(16 * 1024 * 1024);
    const answer = await rawConnect(port(), `127.0.0.1:${echo.port}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(answer.status).toBe(200);
    const received: Buffer[] = [answer.rest];
    let length = answer.rest.length;
    const done = new Promise<void>((resolve, reject) => {
      answer.socket.on("data", (chunk: Buffer) => {
        received.push(chunk);
        length += chunk.length;
        if (length >= payload.length) resolve();
      });
      answer.socket.once("close", () => reject(new Error(`closed after ${length} bytes`)));
    });
    // Written in uneven pieces, as a real client would, so reads and writes never line up.
    for (let offset = 0; offset < payload.length; ) {
      const size = 1 + ((offset * 7919) % 300_000);
      answer.socket.write(payload.subarray(offset, offset + size));
      offset += size;
    }
    await done;
    expect(createHash("sha256").update(Buffer.concat(received)).digest("hex")).toBe(
      createHash("sha256").update(payload).digest("hex"),
    );
    answer.socket.destroy();
  });

  it("delivers what a destination sends before the client speaks (server-first protocols)", async () => {
    const answer = await rawConnect(port(), `127.0.0.1:${(banner.address() as AddressInfo).port}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(answer.status).toBe(200);
    let text = answer.rest.toString();
    if (!text.includes("\n")) {
      text += await new Promise<string>((resolve) =>
        answer.socket.once("data", (chunk: Buffer) => resolve(chunk.toString())),
      );
    }
    expect(text).toBe("SSH-2.0-banner\r\n");
    answer.socket.destroy();
  });

  it("refuses a loopback port no destination names (the deny twin), without dialling it", async () => {
    const before = unnamed.connections();
    const answer = await rawConnect(port(), `127.0.0.1:${unnamed.port}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: "TG_TUNNEL_DESTINATION_FORBIDDEN" } });
    expect(answer.headers["content-type"]).toBe("application/json");
    expect(answer.headers["content-length"]).toBe(String(Buffer.byteLength(answer.body)));
    expect(unnamed.connections()).toBe(before);
  });

  it("accepts the token as the password of Proxy-Authorization: Basic, and in Gateway-Authorization", async () => {
    const forms: Record<string, string>[] = [
      { "proxy-authorization": `Basic ${Buffer.from(`oidc:${token}`).toString("base64")}` },
      { "gateway-authorization": `Bearer ${token}` },
      { "gateway-authorization": token },
    ];
    for (const headers of forms) {
      const answer = await rawConnect(port(), `127.0.0.1:${echo.port}`, headers);
      expect(answer.status).toBe(200);
      expect(await echoRoundTrip(answer.socket, "ping", answer.rest)).toBe("ping");
      answer.socket.destroy();
    }
  });

  it("answers 407 with Proxy-Authenticate when the credential is missing", async () => {
    const answer = await rawConnect(port(), `127.0.0.1:${echo.port}`);
    expect(answer.status).toBe(407);
    expect(answer.headers["proxy-authenticate"]).toBe('Bearer realm="tollgate", Basic realm="tollgate"');
    expect(answer.headers.connection).toBe("close");
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: "TG_PROXY_AUTH_REQUIRED" } });
  });

  it("answers 407 for a bad token, and audits the token error without the token", async () => {
    const bad = await harness.mint({}, { expiresInSeconds: -600 });
    const answer = await rawConnect(port(), `127.0.0.1:${echo.port}`, {
      "proxy-authorization": `Bearer ${bad}`,
    });
    expect(answer.status).toBe(407);
    expect(answer.headers["proxy-authenticate"]).toContain("Basic");
    const body = JSON.parse(answer.body);
    expect(body).toMatchObject({
      error: { code: "TG_PROXY_AUTH_INVALID", message: "The proxy credential is not valid." },
    });
    const events = await eventually(
      () => harness.auditEvents(),
      (list) => list.some((event) => event.request_id === body.error.request_id),
    );
    const event = events.find((candidate) => candidate.request_id === body.error.request_id)!;
    expect(event).toMatchObject({
      event: "auth.denied",
      decision: "deny",
      reason: "TG_TOKEN_EXPIRED",
      status: 407,
    });
    expect(await harness.allOutput()).not.toContain(bad);
  });

  it("answers 403 when the policy does not admit the caller (deny wins)", async () => {
    const fork = await harness.mint({ event_name: "pull_request_target" });
    const answer = await rawConnect(port(), `127.0.0.1:${echo.port}`, {
      "proxy-authorization": `Bearer ${fork}`,
    });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: "TG_POLICY_DENIED" } });
    const other = await harness.mint({ repository_owner_id: "66" });
    const second = await rawConnect(port(), `127.0.0.1:${echo.port}`, {
      "proxy-authorization": `Bearer ${other}`,
    });
    expect(second.status).toBe(403);
  });

  it("answers 502 when the destination refuses the connection", async () => {
    const answer = await rawConnect(port(), `127.0.0.1:${unreachable}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: "TG_TUNNEL_DESTINATION_UNREACHABLE" } });
  });

  it("answers 502 when the name does not resolve, and 504 when resolving outlasts connect_timeout", async () => {
    records.set("slow.test", ["hang"]);
    const missing = await rawConnect(port(), `app.rebind.test:${echo.port}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(missing.status).toBe(502);
    const slow = await rawConnect(port(), `slow.test:${echo.port}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(slow.status).toBe(504);
    expect(JSON.parse(slow.body)).toMatchObject({ error: { code: "TG_TUNNEL_CONNECT_TIMEOUT" } });
  });

  it("resolves a name once and dials exactly the checked address (no DNS rebinding)", async () => {
    // The second answer would point at the cloud metadata service; the gateway must never ask again.
    let calls = 0;
    records.set("app.rebind.test", ["127.0.0.1"]);
    const rebinding: LookupAll = async (name) => {
      calls += 1;
      return calls === 1 ? lookup(name) : [{ address: "169.254.169.254", family: 4 }];
    };
    const rebindHarness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  ci: { claims: { repository_owner_id: 65 } }
tunnels:
  - name: echo
    destinations: ["127.0.0.1:${echo.port}", "app.rebind.test:${echo.port}"]
    allow: [ci]
`,
      { features: [createTunnelFeatureFactory({ lookup: rebinding, dial })] },
    );
    try {
      dialled = [];
      const before = echo.connections();
      const answer = await rawConnect(rebindHarness.running.address.port, `app.rebind.test:${echo.port}`, {
        "proxy-authorization": `Bearer ${await rebindHarness.mint()}`,
      });
      expect(answer.status).toBe(200);
      expect(await echoRoundTrip(answer.socket, "rebind?", answer.rest)).toBe("rebind?");
      expect(calls).toBe(1);
      expect(dialled).toEqual([`127.0.0.1:${echo.port}`]);
      expect(echo.connections()).toBe(before + 1);
      answer.socket.destroy();
      const events = await eventually(
        () => rebindHarness.auditEvents(),
        (list) => list.some((event) => event.event === "tunnel.open"),
      );
      expect(events.find((event) => event.event === "tunnel.open")).toMatchObject({
        decision: "allow",
        tunnel: "echo",
        destination: `app.rebind.test:${echo.port}`,
        upstream: `127.0.0.1:${echo.port}`,
      });
    } finally {
      await rebindHarness.close();
    }
  });

  it("refuses a name when any of its addresses is forbidden, even if another is allowed (the twin)", async () => {
    records.set("app.rebind.test", ["127.0.0.1", "169.254.169.254"]);
    dialled = [];
    const answer = await rawConnect(port(), `app.rebind.test:${echo.port}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(answer.status).toBe(403);
    expect(dialled).toEqual([]);
  });

  it("does not let a name pattern alone reach loopback: the address must be named explicitly", async () => {
    records.set("nameonly.test", ["127.0.0.1"]);
    dialled = [];
    const before = unnamed.connections();
    const answer = await rawConnect(port(), `nameonly.test:${unnamed.port}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(answer.status).toBe(403);
    expect(dialled).toEqual([]);
    expect(unnamed.connections()).toBe(before);
  });

  it("audits tunnel.open and tunnel.close with bytes both ways and the duration", async () => {
    const answer = await rawConnect(port(), `127.0.0.1:${echo.port}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    const requestId = await latestOpenId();
    await echoRoundTrip(answer.socket, "0123456789", answer.rest);
    answer.socket.end();
    await closed(answer.socket);
    const events = await eventually(
      () => harness.auditEvents(),
      (list) => list.some((event) => event.event === "tunnel.close" && event.request_id === requestId),
    );
    const close = events.find((event) => event.event === "tunnel.close" && event.request_id === requestId)!;
    expect(close).toMatchObject({
      decision: "allow",
      tunnel: "echo",
      policy: "ci",
      bytes_in: 10,
      bytes_out: 10,
      reason: "closed",
    });
    expect(typeof close.duration_ms).toBe("number");
    expect(close.token_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await harness.allOutput()).not.toContain(token);
  });

  async function latestOpenId(): Promise<string> {
    const events = await eventually(
      () => harness.auditEvents(),
      (list) => list.some((event) => event.event === "tunnel.open" && event.decision === "allow"),
    );
    return events.filter((event) => event.event === "tunnel.open" && event.decision === "allow").at(-1)!
      .request_id as string;
  }

  it("never logs user info a client put in the CONNECT target", async () => {
    const answer = await rawConnect(port(), `ci:hunter2-not-a-jwt@127.0.0.1:${echo.port}`, {
      "proxy-authorization": `Bearer ${token}`,
    });
    expect(answer.status).toBe(400);
    const requestId = JSON.parse(answer.body).error.request_id;
    const events = await eventually(
      () => harness.auditEvents(),
      (list) => list.some((event) => event.request_id === requestId),
    );
    expect(events.find((event) => event.request_id === requestId)?.destination).toBe(
      `[user info removed]@127.0.0.1:${echo.port}`,
    );
    expect(await harness.allOutput()).not.toContain("hunter2");
  });

  it("refuses malformed CONNECT targets with 400", async () => {
    for (const target of [
      `[fe80::1%25eth0]:${echo.port}`,
      `[fe80::1%eth0]:${echo.port}`,
      `::1:${echo.port}`,
      "127.0.0.1",
      "127.0.0.1:0",
      "127.0.0.1:65536",
      `user@127.0.0.1:${echo.port}`,
      `127.0.0.1:${echo.port}/path`,
    ]) {
      const answer = await rawConnect(port(), target, { "proxy-authorization": `Bearer ${token}` });
      expect([target, answer.status]).toEqual([target, 400]);
    }
  });
});
