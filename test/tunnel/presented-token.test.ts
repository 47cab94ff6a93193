import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";

/**
 * The forward proxy's audit line (issue 12, class 5): the proxy credential a request presented is a secret
 * of that line in every form, wherever the request put it (here, base64url in the absolute URL's path),
 * whether the tunnel admitted the request or not.
 */
describe("forward proxy: the presented token in its own audit line", () => {
  let harness: GatewayHarness;
  let destination: RecordingUpstream;

  beforeAll(async () => {
    destination = await startRecordingUpstream();
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
audit: { denials: { window: 0s } }
policies:
  ci: { claims: { repository_owner_id: 65 } }
tunnels:
  - { name: local, destinations: ["127.0.0.1:${destination.port}"], allow: [ci] }
`,
    );
  });
  afterAll(async () => {
    await harness?.close();
    await destination?.close();
  });

  function forward(authority: string, path: string, token: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: harness.running.address.port,
          method: "GET",
          path: `http://${authority}${path}`,
          headers: { host: authority, "proxy-authorization": `Bearer ${token}` },
          agent: false,
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.end();
    });
  }

  it("is redacted from the path of an admitted request and of a refused one", async () => {
    const token = await harness.mint({ repository_owner_id: 65 });
    const spelled = Buffer.from(token).toString("base64url");
    expect(await forward(`127.0.0.1:${destination.port}`, `/x/${spelled}`, token)).toBe(200);
    expect(await forward("127.0.0.1:9", `/x/${spelled}`, token)).toBe(403);
    const output = await harness.allOutput();
    const events = await harness.auditEvents();
    expect(events.filter((event) => String(event.path ?? "").includes("[REDACTED]"))).toHaveLength(2);
    expect(output).not.toContain(spelled);
    expect(output).not.toContain(token.slice(token.lastIndexOf(".") + 1));
  });
});
