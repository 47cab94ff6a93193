import { describe, expect, it } from "vitest";
import { compileConfigText } from "../../src/config/index.js";
import { generateConnectorKey } from "../../src/connector/index.js";

/** `connectors` as `tollgate check` reads it: keys, policies for tokens, or both — never neither. */

const key = generateConnectorKey();

function check(connectors: string, policies = "") {
  return compileConfigText(
    `issuers:
  - name: github
    issuer: https://token.actions.githubusercontent.com
    audiences: [tollgate]
  - name: cluster
    issuer: https://oidc.cluster.example.com
    audiences: [tollgate-connector]
policies:
  ci: { issuer: github, claims: { repository_owner_id: 65, event_name: push } }
  dc1-connector: { issuer: cluster, claims: { sub: system:serviceaccount:tollgate:connector } }
${policies}connectors:
${connectors}`,
    { env: {}, sourceName: "tollgate.yaml" },
  );
}

describe("connectors in tollgate.yaml", () => {
  it("takes a pool admitted by token policies alone, by keys alone, or by both", () => {
    const result = check(`  - name: tokens
    allow: [dc1-connector]
  - name: keys
    public_keys: ["${key.publicKey}"]
  - name: both
    public_keys: ["${key.publicKey}"]
    allow: [dc1-connector]
`);
    expect(result.problems).toEqual([]);
    // A Kubernetes service-account policy draws none of GitHub's warnings.
    expect(result.config?.warnings).toEqual([]);
    const [tokens, keys, both] = result.config!.connectors;
    expect(tokens).toMatchObject({ name: "tokens", keys: [] });
    expect(tokens!.tokenAccess?.allow.map((policy) => policy.name)).toEqual(["dc1-connector"]);
    expect(keys!.tokenAccess).toBeUndefined();
    expect(keys!.keys.map((entry) => entry.text)).toEqual([key.publicKey]);
    expect(both!.tokenAccess?.allow).toHaveLength(1);
    expect(both!.keys).toHaveLength(1);
  });

  it("twin: refuses a pool with neither public_keys nor allow, naming the fix", () => {
    const result = check("  - name: dc1\n");
    expect(result.config).toBeUndefined();
    expect(result.problems).toEqual([
      expect.objectContaining({
        path: "connectors[0]",
        message: expect.stringContaining("neither public_keys nor allow"),
      }),
    ]);
  });

  it("twin: refuses an allow naming no policy, and a policy that pins no namespace", () => {
    const unknown = check("  - name: dc1\n    allow: [dc1-conector]\n");
    expect(unknown.problems.map((problem) => problem.message).join()).toContain(
      'unknown policy "dc1-conector" (did you mean "dc1-connector"?)',
    );
    const open = check(
      "  - name: dc1\n    allow: [any-account]\n",
      '  any-account: { issuer: cluster, claims: { sub: { glob: "system:serviceaccount:*" } } }\n',
    );
    expect(open.problems.map((problem) => problem.message).join()).toContain(
      "system:serviceaccount:NAMESPACE:NAME",
    );
  });
});
