import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { errorCatalogue, TollgateError, toErrorResponse } from "../../src/errors/index.js";

const documented = new Map(
  [
    ...readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8").matchAll(
      /^\| `(TG_[A-Z_]+)` \| (\d+|—) \|/gm,
    ),
  ].map((match) => [match[1]!, match[2]!]),
);

describe("error catalogue", () => {
  it("docs/errors.md lists every code with its status, and nothing else", () => {
    const inCode = Object.entries(errorCatalogue).map(
      ([code, entry]) => [code, code === "TG_CONFIG_INVALID" ? "—" : String(entry.status)] as const,
    );
    expect(new Map(inCode)).toEqual(documented);
  });

  it("never shows a token error's detail to the caller", () => {
    const response = toErrorResponse(
      new TollgateError("TG_TOKEN_SIGNATURE_INVALID", "signature failed for kid k1"),
      "req-1",
    );
    expect(response.status).toBe(401);
    expect(response.body.error.message).not.toContain("kid");
    expect(response.headers["www-authenticate"]).toMatch(/^Bearer /);
    expect(response.body.error.request_id).toBe("req-1");
  });

  it("shows the detail only where the catalogue allows it", () => {
    const response = toErrorResponse(new TollgateError("TG_BAD_REQUEST", "scope must be a string"), "req-2");
    expect(response.body.error.message).toBe("scope must be a string");
  });

  it("maps foreign errors to TG_INTERNAL without their message", () => {
    const response = toErrorResponse(new Error("ECONNREFUSED 10.0.0.1:5432 secret-body"), "req-3");
    expect(response).toMatchObject({
      status: 500,
      body: { error: { code: "TG_INTERNAL", message: "Internal error." } },
    });
  });
});
