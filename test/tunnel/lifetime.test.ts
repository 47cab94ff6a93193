import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTunnelFeatureFactory, type LookupAll } from "../../src/tunnel/index.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import {
  closed,
  type EchoServer,
  echoRoundTrip,
  eventually,
  rawConnect,
  startEchoServer,
} from "./helpers.js";

/** A resolver that never answers (a CONNECT to a name stays pending until shutdown) and says when asked. */
let lookupEntered: () => void = () => undefined;
const hangingLookup: LookupAll = () => {
  lookupEntered();
  return new Promise(() => undefined);
};

describe("tunnel lifetimes and shutdown", () => {
  let echo: EchoServer;
  let echo2: EchoServer;

  beforeAll(async () => {
    echo = await startEchoServer();
    echo2 = await startEchoServer();
  });
  afterAll(async () => {
    await echo?.close();
    await echo2?.close();
  });

  const config = (issuerUrl: string) => `${devIssuerYaml(issuerUrl)}
policies:
  ci: { claims: { repository_owner_id: 65 } }
tunnels:
  - name: short-idle
    destinations: ["127.0.0.1:${echo.port}"]
    allow: [ci]
    idle_timeout: 300ms
  - name: short-life
    destinations: ["127.0.0.1:${echo2.port}", "lifetime.test:${echo2.port}"]
    allow: [ci]
    max_lifetime: 400ms
`;

  async function closeEventOf(harness: GatewayHarness, socketRequest: () => Promise<void>) {
    await socketRequest();
    const events = await eventually(
      () => harness.auditEvents(),
      (list) => list.some((event) => event.event === "tunnel.close"),
    );
    return events.find((event) => event.event === "tunnel.close")!;
  }

  it("closes an idle tunnel after idle_timeout and audits the bytes it carried", async () => {
    const harness = await startGatewayHarness(config, { features: [createTunnelFeatureFactory()] });
    try {
      const token = await harness.mint();
      const event = await closeEventOf(harness, async () => {
        const answer = await rawConnect(harness.running.address.port, `127.0.0.1:${echo.port}`, {
          "proxy-authorization": `Bearer ${token}`,
        });
        expect(answer.status).toBe(200);
        expect(await echoRoundTrip(answer.socket, "hello", answer.rest)).toBe("hello");
        // Nothing more is sent: the gateway must close the tunnel on its own.
        await closed(answer.socket);
      });
      expect(event).toMatchObject({
        tunnel: "short-idle",
        reason: "idle-timeout",
        bytes_in: 5,
        bytes_out: 5,
      });
      expect(event.duration_ms).toBeGreaterThanOrEqual(0);
    } finally {
      await harness.close();
    }
  });

  it("closes a tunnel at max_lifetime even when idle_timeout is far away", async () => {
    const harness = await startGatewayHarness(config, { features: [createTunnelFeatureFactory()] });
    try {
      const token = await harness.mint();
      const event = await closeEventOf(harness, async () => {
        const answer = await rawConnect(harness.running.address.port, `127.0.0.1:${echo2.port}`, {
          "proxy-authorization": `Bearer ${token}`,
        });
        expect(answer.status).toBe(200);
        expect(await echoRoundTrip(answer.socket, "abc", answer.rest)).toBe("abc");
        await closed(answer.socket);
      });
      expect(event).toMatchObject({
        tunnel: "short-life",
        reason: "max-lifetime",
        bytes_in: 3,
        bytes_out: 3,
      });
    } finally {
      await harness.close();
    }
  });

  it("closes open tunnels and answers pending CONNECTs with 503 on shutdown", async () => {
    const harness = await startGatewayHarness(config, {
      features: [createTunnelFeatureFactory({ lookup: hangingLookup })],
    });
    let stopped = false;
    try {
      const token = await harness.mint();
      const headers = { "proxy-authorization": `Bearer ${token}` };
      const open = await rawConnect(harness.running.address.port, `127.0.0.1:${echo.port}`, headers);
      expect(open.status).toBe(200);
      expect(await echoRoundTrip(open.socket, "before shutdown", open.rest)).toBe("before shutdown");
      const entered = new Promise<void>((resolve) => {
        lookupEntered = resolve;
      });
      const pending = rawConnect(harness.running.address.port, `lifetime.test:${echo2.port}`, headers);
      await entered;
      const socketClosed = closed(open.socket);
      await harness.running.close();
      stopped = true;
      await socketClosed;
      expect((await pending).status).toBe(503);
      const events = await harness.auditEvents();
      expect(events.find((event) => event.event === "tunnel.close")).toMatchObject({
        tunnel: "short-idle",
        reason: "shutdown",
        bytes_in: 15,
        bytes_out: 15,
      });
      expect(events.find((event) => event.event === "tunnel.open" && event.status === 503)).toMatchObject({
        decision: "error",
        reason: "TG_SHUTTING_DOWN",
      });
    } finally {
      if (!stopped) await harness.running.close();
      await harness.close();
    }
  });
});
