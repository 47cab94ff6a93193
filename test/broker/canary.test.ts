import { describe, expect, it } from "vitest";
import { createAppKeys } from "../helpers/github-api-double.js";
import { type Answer, type BrokerHarness, noneBrokerYaml, startBrokerHarness } from "./broker-harness.js";

/** Every form a secret could take in a log line, a header or a body. */
function forms(secret: string): string[] {
  const bytes = Buffer.from(secret, "utf8");
  return [
    secret,
    JSON.stringify(secret).slice(1, -1),
    bytes.toString("base64"),
    bytes.toString("base64").replace(/=+$/, ""),
    bytes.toString("base64url"),
    encodeURIComponent(secret),
  ];
}

/** The PEM's body lines: a key leaks even when only a part of it is printed. */
function keyLines(pem: string): string[] {
  return pem.split("\n").filter((line) => line.length >= 32 && !line.startsWith("-----"));
}

function expectAbsent(haystack: string, secret: string, what: string): void {
  for (const form of forms(secret)) {
    expect(haystack.includes(form), `${what} appears (as ${form.slice(0, 12)}…)`).toBe(false);
  }
}

/** Drives every path of the broker: success, cache, refusals, each GitHub fault. */
async function exercise(broker: BrokerHarness): Promise<Answer[]> {
  const answers: Answer[] = [];
  const call = async (...args: Parameters<BrokerHarness["call"]>) => answers.push(await broker.call(...args));
  await call("/register", { scope: "octo-org/octo-repo" });
  await call("/register", { scope: "octo-org/octo-repo" });
  await call("/remove", { scope: "octo-org" });
  await call("/jitconfig", { scope: "octo-org/octo-repo", name: "canary", labels: ["x"] });
  await call("/register", { scope: "octo-org/payroll" });
  await call("/register", { scope: "ghost-org" });
  await call("/register", "{not json");
  await call("/register", undefined, { method: "PUT" });
  // GitHub itself echoing the credential in an error body must not carry it any further.
  const echo = {
    message: `Bad credentials: ${broker.double.pat}`,
    documentation_url: "https://docs.github.com/rest",
  };
  broker.double.fault({ path: /\/echo-(401|500)\//, status: 401, body: echo });
  await call("/register", { scope: "octo-org/echo-401" });
  broker.double.fault({ path: /\/octo-org\/down\//, status: 500, body: echo });
  await call("/register", { scope: "octo-org/down" });
  broker.double.fault({
    path: /\/octo-org\/limited\//,
    status: 429,
    headers: { "retry-after": "3" },
    body: echo,
  });
  await call("/register", { scope: "octo-org/limited" });
  broker.double.clearFaults();
  await broker.waitReady();
  return answers;
}

describe("canary: the broker's credential never appears in any output", () => {
  it("a PAT: not in responses, headers, audit events or the operational log", async () => {
    const broker = await startBrokerHarness({ yaml: (_issuer, api) => noneBrokerYaml(api) });
    try {
      await broker.waitReady();
      const answers = await exercise(broker);
      expect(answers.filter((answer) => answer.status === 200).length).toBeGreaterThanOrEqual(3);
      const responses = answers
        .map((answer) => `${JSON.stringify([...answer.headers])}\n${answer.text}`)
        .join("\n");
      const output = await broker.gateway.allOutput();
      expect(output.length).toBeGreaterThan(1000);
      expectAbsent(responses, broker.double.pat, "the PAT (responses)");
      expectAbsent(output, broker.double.pat, "the PAT (logs)");
      // Minted runner tokens reach their caller only, never a log.
      for (const secret of broker.double.issued) expectAbsent(output, secret, "a minted secret");
    } finally {
      await broker.close();
    }
  });

  it("a GitHub App key and its installation tokens: nowhere", async () => {
    const app = createAppKeys("4711");
    const broker = await startBrokerHarness({
      yaml: (_issuer, api) => noneBrokerYaml(api),
      double: { app },
      env: () => ({ GITHUB_APP_ID: app.appId, GITHUB_APP_PRIVATE_KEY: app.privateKeyPkcs1 }),
    });
    try {
      await broker.waitReady();
      const answers = await exercise(broker);
      const everything = `${answers.map((answer) => `${JSON.stringify([...answer.headers])}\n${answer.text}`).join("\n")}\n${await broker.gateway.allOutput()}`;
      for (const pem of [app.privateKeyPkcs1, app.privateKeyPkcs8]) {
        expectAbsent(everything, pem, "the App key");
        for (const line of keyLines(pem))
          expect(everything.includes(line), "a line of the App key appears").toBe(false);
      }
      const installationTokens = broker.double.issued.filter((secret) => secret.startsWith("ghs_"));
      expect(installationTokens.length).toBeGreaterThan(0);
      for (const token of installationTokens) expectAbsent(everything, token, "an installation token");
    } finally {
      await broker.close();
    }
  });
});
