import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateConnectorKey, parsePrivateKey, startConnector } from "../../src/connector/index.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";
import { eventually } from "../tunnel/helpers.js";
import { patterns, startConnectorProcess } from "./helpers.js";

/**
 * Two connectors in one pool, real `tollgate connector` processes: new streams go to the one with fewer,
 * and when one is killed (SIGKILL, no goodbye) the edge drops it at once and every request after goes
 * through the other.
 */

async function connectorsOf(harness: GatewayHarness): Promise<number> {
  const body = JSON.stringify(await fetch(`${harness.url}/readyz`).then((res) => res.json()));
  return Number(/"dc1":(\d+)/.exec(body)?.[1] ?? -1);
}

describe("a pool of two connectors", () => {
  const first = generateConnectorKey();
  const second = generateConnectorKey();
  let dir: string;
  let upstream: RecordingUpstream;
  let harness: GatewayHarness;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tollgate-ha-"));
    upstream = await startRecordingUpstream((_req, res) => res.end("ok"));
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}policies:
  ci: { claims: { repository_owner_id: 65 } }
connectors:
  - name: dc1
    public_keys: ["${first.publicKey}", "${second.publicKey}"]
routes:
  - name: inside
    path_prefix: /inside/
    upstream: ${upstream.url}
    allow: [ci]
    via: dc1
`,
    );
    for (const [index, key] of [first, second].entries()) {
      const keyFile = join(dir, `connector-${index}.key`);
      await writeFile(keyFile, key.privateKeyPem, { mode: 0o600 });
      if (index === 0) {
        const started = await startConnectorProcess([
          "--edge",
          harness.url,
          "--pool",
          "dc1",
          "--key",
          keyFile,
          "--allow",
          `127.0.0.1:${upstream.port}`,
        ]);
        children.push(started.child);
      } else {
        // The second one reads the same settings from --config.
        const configFile = join(dir, "connector.yaml");
        await writeFile(
          configFile,
          `edges: ["${harness.url}"]\npool: dc1\nkey: ${keyFile}\nallow: ["127.0.0.1:${upstream.port}"]\n`,
        );
        children.push((await startConnectorProcess(["--config", configFile])).child);
      }
    }
    await eventually(
      () => connectorsOf(harness),
      (count) => count === 2,
    );
  }, 60_000);

  afterAll(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await harness?.close();
    await upstream?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("keeps serving when one connector is killed mid-traffic: at most the request in flight fails, none after", async () => {
    const token = await harness.mint();
    const headers = { "gateway-authorization": `Bearer ${token}` };
    const statuses: number[] = [];
    let killedAt = -1;
    for (let index = 0; index < 40; index++) {
      if (index === 15) {
        children[0]!.kill("SIGKILL");
        killedAt = statuses.length;
      }
      // Separate connections, so requests spread over both connectors' streams.
      const response = await fetch(`${harness.url}/inside/${index}`, {
        headers: { ...headers, connection: "close" },
      });
      await response.text();
      statuses.push(response.status);
    }
    const failures = statuses.filter((status) => status !== 200);
    expect(failures.length).toBeLessThanOrEqual(1);
    // Everything after the first request following the kill succeeded.
    expect(statuses.slice(killedAt + 1).every((status) => status === 200)).toBe(true);
    expect(
      await eventually(
        () => connectorsOf(harness),
        (count) => count === 1,
      ),
    ).toBe(1);
    const disconnected = (await harness.auditEvents()).filter(
      (event) => event.event === "connector.disconnect",
    );
    expect(disconnected).toHaveLength(1);
  });

  it("twin: with the second one killed too, the route answers 502 at once", async () => {
    children[1]!.kill("SIGKILL");
    await eventually(
      () => connectorsOf(harness),
      (count) => count === 0,
    );
    const token = await harness.mint();
    const response = await fetch(`${harness.url}/inside/x`, {
      headers: { "gateway-authorization": `Bearer ${token}` },
    });
    expect(response.status).toBe(502);
  });
});

describe("an edge restarted under its connectors", () => {
  it("the connector reconnects on its own (jittered backoff), and the new edge carries through it", async () => {
    const key = generateConnectorKey();
    const upstream = await startRecordingUpstream((_req, res) => res.end("ok"));
    const yaml = (issuerUrl: string) => `${devIssuerYaml(issuerUrl)}policies:
  ci: { claims: { repository_owner_id: 65 } }
connectors:
  - name: dc1
    public_keys: ["${key.publicKey}"]
routes:
  - name: inside
    path_prefix: /inside/
    upstream: ${upstream.url}
    allow: [ci]
    via: dc1
`;
    let edge = await startGatewayHarness(yaml);
    const port = Number(new URL(edge.url).port);
    const connector = startConnector({
      edges: [new URL(edge.url)],
      pool: "dc1",
      privateKey: parsePrivateKey(key.privateKeyPem),
      allow: patterns(`127.0.0.1:${upstream.port}`),
      logger: pino(new PassThrough()),
      backoff: { baseMs: 50, maxMs: 400 },
    });
    try {
      await connector.waitConnected();
      await edge.close();
      await eventually(
        async () => connector.connected(),
        (count) => count === 0,
      );
      // The same address, a new process's worth of state: no connector is connected until one dials in.
      edge = await startGatewayHarness(yaml, { port });
      await connector.waitConnected(10_000);
      const token = await edge.mint();
      const response = await fetch(`${edge.url}/inside/x`, {
        headers: { "gateway-authorization": `Bearer ${token}` },
      });
      expect(response.status).toBe(200);
      expect(await connectorsOf(edge)).toBe(1);
    } finally {
      await connector.close();
      await edge.close();
      await upstream.close();
    }
  });
});
