import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TollgateError } from "../../src/errors/index.js";
import type { FeatureFactory } from "../../src/server/index.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";

/** A feature as the broker and tunnels plug in: claims a path, handles CONNECT, reports readiness. */
let ready = true;
let closed = 0;
const probe: FeatureFactory = (_config, dependencies) => ({
  name: "probe",
  claimsRequest: (req) => req.method === "POST" && req.url === "/probe",
  async handleRequest(req, res, context) {
    if (req.headers["x-fail"] === "yes") throw new TollgateError("TG_BAD_REQUEST", "probe refused");
    dependencies.auditLog.emit({
      event: "auth.denied",
      request_id: context.requestId,
      decision: "allow",
      reason: "probe",
    });
    res.end(`probe ${context.requestId.length}`);
  },
  handleConnect(_req, socket) {
    socket.end("HTTP/1.1 200 Connection Established\r\n\r\nhello-tunnel");
  },
  readiness: () => ({ ready }),
  async close() {
    closed += 1;
  },
});

describe("gateway features", () => {
  let harness: GatewayHarness;

  beforeAll(async () => {
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  p: { claims: { repository_owner_id: 65 } }
routes:
  - { name: r, path_prefix: /, upstream: "http://127.0.0.1:9", allow: [p] }
`,
      { features: [probe] },
    );
  });
  afterAll(async () => {
    await harness?.close();
    expect(closed).toBe(1);
  });

  it("lets a feature answer the requests it claims, before routes", async () => {
    const response = await fetch(`${harness.url}/probe`, { method: "POST" });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("probe 36");
  });

  it("leaves unclaimed requests to the routes (the twin)", async () => {
    expect((await fetch(`${harness.url}/probe`)).status).toBe(401);
  });

  it("maps a feature's TollgateError to the catalogue's answer", async () => {
    const response = await fetch(`${harness.url}/probe`, { method: "POST", headers: { "x-fail": "yes" } });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: { code: "TG_BAD_REQUEST", message: "probe refused" },
    });
  });

  it("hands CONNECT to the feature", async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(harness.running.address.port, "127.0.0.1", () =>
        socket.write("CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\n\r\n"),
      );
      let received = "";
      socket.on("data", (chunk) => {
        received += chunk.toString();
      });
      socket.on("close", () => resolve(received));
      socket.on("error", reject);
    });
    expect(text).toContain("hello-tunnel");
  });

  it("includes feature readiness in /readyz", async () => {
    expect((await fetch(`${harness.url}/readyz`)).status).toBe(200);
    ready = false;
    const response = await fetch(`${harness.url}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ features: [{ feature: "probe", ready: false }] });
    ready = true;
  });
});

describe("gateway without features", () => {
  it("refuses CONNECT with 405", async () => {
    const harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  p: { claims: { repository_owner_id: 65 } }
routes:
  - { name: r, path_prefix: /, upstream: "http://127.0.0.1:9", allow: [p] }
`,
      { features: [] },
    );
    try {
      const text = await new Promise<string>((resolve, reject) => {
        const socket = connect(harness.running.address.port, "127.0.0.1", () =>
          socket.write("CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\n\r\n"),
        );
        let received = "";
        socket.on("data", (chunk) => {
          received += chunk.toString();
        });
        socket.on("close", () => resolve(received));
        socket.on("error", reject);
      });
      expect(text).toMatch(/^HTTP\/1\.1 405/);
    } finally {
      await harness.close();
    }
  });
});
