import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";

// Characters that change under every encoding, so each form is a different string.
const canary = "tg+canary/Zq8vR2=xLp0~Wm4 Ns7?";
const encodings = (secret: string) => ({
  raw: secret,
  base64: Buffer.from(secret).toString("base64"),
  base64url: Buffer.from(secret).toString("base64url"),
  urlEncoded: encodeURIComponent(secret),
});

/**
 * A registered secret must never reach a log line, whatever a caller puts where the gateway logs it
 * (the request path is audited), and whatever encoding it arrives in.
 */
describe("gateway: secret canary through the whole pipeline", () => {
  let upstream: RecordingUpstream;
  let harness: GatewayHarness;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
# Every denial on its own line: these tests read each one (denial folding: test/audit/denial-aggregation…).
audit: { denials: { window: 0s } }
policies:
  p:
    claims: { repository_owner_id: 65 }
routes:
  - { name: r, path_prefix: /r/, upstream: "${upstream.url}", allow: [p] }
`,
      { secrets: [canary] },
    );
  });

  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  it("redacts the canary in raw, base64, base64url and URL-encoded forms from every log line", async () => {
    const token = await harness.mint();
    const forms = encodings(canary);
    // The raw form cannot travel in a request line (it has a space); these three can, verbatim.
    const sendable = [forms.base64, forms.base64url, forms.urlEncoded];
    for (const form of sendable) {
      await fetch(`${harness.url}/r/${form}`, { headers: { "gateway-authorization": `Bearer ${token}` } });
      await fetch(`${harness.url}/nowhere/${form}`);
    }
    const output = await harness.allOutput();
    expect(output.split("[REDACTED]").length - 1).toBeGreaterThanOrEqual(sendable.length * 2);
    for (const [name, form] of Object.entries(forms)) expect(output.includes(form), name).toBe(false);
    expect(output).not.toContain(token);
  });

  it("redacts the caller's own token from its request's audit line, percent-encoded or base64, routed or not", async () => {
    const token = await harness.mint();
    const spelled = [
      token.replaceAll(".", "%2E"),
      Buffer.from(token).toString("base64url"),
      encodeURIComponent(Buffer.from(token).toString("base64")),
    ];
    for (const form of spelled) {
      for (const prefix of ["/r/", "/nowhere/"]) {
        const response = await fetch(`${harness.url}${prefix}${form}`, {
          headers: { "gateway-authorization": `Bearer ${token}` },
        });
        await response.arrayBuffer();
      }
    }
    const output = await harness.allOutput();
    const signature = token.slice(token.lastIndexOf(".") + 1);
    for (const form of [...spelled, token, Buffer.from(token).toString("base64"), signature]) {
      expect(output.includes(form)).toBe(false);
    }
    // Read as a decoder behind the log would read it: still no signature.
    const decoded = output.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
    expect(decoded).not.toContain(signature);
  });

  it("leaves ordinary paths readable (the twin: redaction is not blanket)", async () => {
    await fetch(`${harness.url}/nowhere/ordinary-path`);
    expect(await harness.allOutput()).toContain("/nowhere/ordinary-path");
  });
});
