import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDevIssuer, type DevIssuer } from "../../src/dev/dev-issuer.js";
import { type ActionsTokenEndpoint, startActionsTokenEndpoint } from "../helpers/actions-token-endpoint.js";
import { runTool } from "./client-harness.js";

// `tollgate token` (the built CLI) against the stand-in for the runner's token endpoint.
let issuer: DevIssuer;
let endpoint: ActionsTokenEndpoint;

beforeAll(async () => {
  issuer = await createDevIssuer();
  endpoint = await startActionsTokenEndpoint(issuer);
});

afterAll(async () => {
  await endpoint.close();
  await issuer.close();
});

const token = (args: string[], env: Record<string, string>) =>
  runTool(process.execPath, ["bin/tollgate.js", "token", ...args], { PATH: process.env.PATH ?? "", ...env });

describe("tollgate token", () => {
  it("prints the token alone on stdout, after masking it on stderr inside Actions", async () => {
    const result = await token(["--audience", "gateway.example.com"], endpoint.env());
    expect(result.code).toBe(0);
    const printed = result.stdout.trimEnd();
    expect(result.stdout).toBe(`${printed}\n`);
    expect(decodeJwt(printed).aud).toBe("gateway.example.com");
    // The mask comes first and on stderr, so `TOKEN=$(tollgate token …)` captures only the token.
    expect(result.stderr).toBe(`::add-mask::${printed}\n`);
    expect(endpoint.audiences.at(-1)).toBe("gateway.example.com");
  });

  it("does not print workflow commands outside Actions", async () => {
    const result = await token(["--audience", "gateway.example.com"], {
      ...endpoint.env(),
      GITHUB_ACTIONS: "",
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
  });

  it("fails with the permission to grant when the runner gave no token endpoint", async () => {
    const result = await token(["--audience", "gateway.example.com"], { GITHUB_ACTIONS: "true" });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("TG_CLIENT_TOKEN_UNAVAILABLE");
    expect(result.stderr).toContain("permissions: id-token: write");
  });

  it("fails without printing anything token-like when the endpoint refuses", async () => {
    const result = await token(["--audience", "gateway.example.com"], {
      ...endpoint.env(),
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: "not-the-runtime-token",
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("HTTP 401");
    expect(result.stderr).not.toContain("not-the-runtime-token");
  });

  it("requires --audience", async () => {
    const result = await token([], endpoint.env());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--audience");
  });
});
