import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { identityClaimNames, identityFromClaims } from "../../src/audit/index.js";

describe("identityFromClaims", () => {
  it("copies the identity claims of a real GitHub Actions claim set, and nothing else", async () => {
    const claims = JSON.parse(
      await readFile(new URL("../fixtures/claims/push-main.json", import.meta.url), "utf8"),
    ) as Record<string, unknown>;
    const identity = identityFromClaims(claims);
    expect(
      Object.keys(identity).every((name) => (identityClaimNames as readonly string[]).includes(name)),
    ).toBe(true);
    expect(identity.sub).toBe(claims.sub);
    expect(identity.repository).toBe(claims.repository);
    expect(identity.repository_id).toBe(String(claims.repository_id));
    expect(identity).not.toHaveProperty("aud");
    expect(identity).not.toHaveProperty("exp");
  });

  it("keeps strings, turns numbers into text, and drops other values", () => {
    expect(
      identityFromClaims({
        sub: "repo:octo-org/app:ref:refs/heads/main",
        run_id: 42,
        run_attempt: Number.NaN,
        actor: ["octocat"],
        jti: { id: 1 },
        ref: true,
        aud: "tollgate",
      }),
    ).toEqual({ sub: "repo:octo-org/app:ref:refs/heads/main", run_id: "42" });
  });

  it("is frozen, because the audit encoder reuses an identity's bytes for as long as the object lives", () => {
    const identity = identityFromClaims({ sub: "repo:octo-org/app:ref:refs/heads/main" });
    expect(Object.isFrozen(identity)).toBe(true);
    expect(() => {
      (identity as Record<string, string>).sub = "repo:evil/app:ref:refs/heads/main";
    }).toThrow(TypeError);
    expect(identity.sub).toBe("repo:octo-org/app:ref:refs/heads/main");
  });
});
