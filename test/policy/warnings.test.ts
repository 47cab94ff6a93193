import { describe, expect, it } from "vitest";
import { policyWarnings } from "../../src/policy/index.js";
import type { RawMatcher, RawPolicy } from "../../src/policy/types.js";

const closedEvents = { not: ["pull_request_target", "workflow_run"] };

function ids(claims: Record<string, RawMatcher>): string[] {
  return policyWarnings("p", { claims }).map((warning) => warning.id);
}

describe("policyWarnings", () => {
  it("is silent on a policy pinned by ids with closed events", () => {
    expect(policyWarnings("p", { claims: { repository_owner_id: 65, event_name: closedEvents } })).toEqual(
      [],
    );
    expect(ids({ repository_id: "74", event_name: ["push"] })).toEqual([]);
    expect(ids({ enterprise_id: 2, event_name: "push" })).toEqual([]);
    expect(ids({ sub: "repo:octo-org@65/octo-repo@74:ref:refs/heads/main", event_name: "push" })).toEqual([]);
  });

  it("gives a Kubernetes service-account policy no GitHub warnings (no owner ids, no event_name there)", () => {
    expect(ids({ sub: "system:serviceaccount:tollgate:connector" })).toEqual([]);
    expect(ids({ sub: { glob: "system:serviceaccount:tollgate:*" } })).toEqual([]);
    // Twin: a subject that is not a service account of a named namespace keeps both.
    expect(ids({ sub: "system:serviceaccount:" })).toEqual(["no-numeric-owner-id", "event-name-open"]);
    expect(ids({ sub: "repo:octo-org/octo-repo:ref:refs/heads/main" })).toEqual([
      "no-numeric-owner-id",
      "event-name-open",
    ]);
  });

  describe("no-numeric-owner-id", () => {
    it("warns when only names pin the owner, with the path and the fix", () => {
      const [warning] = policyWarnings("org-ci", {
        claims: { repository_owner: "octo-org", repository: { glob: "octo-org/*" }, event_name: "push" },
      });
      expect(warning).toEqual({
        id: "no-numeric-owner-id",
        path: "policies.org-ci.claims",
        message: expect.stringContaining("repository_owner_id: <id>"),
      });
      expect(warning!.message).toContain("renamed");
    });

    it.each<[string, Record<string, RawMatcher>]>([
      ["a name-only sub", { sub: "repo:octo-org/octo-repo:ref:refs/heads/main", event_name: "push" }],
      [
        "an id under not",
        { repository_owner: "octo-org", repository_owner_id: { not: 1 }, event_name: "push" },
      ],
      ["an id by an open regex", { repository_owner_id: { regex: "6.*" }, event_name: "push" }],
    ])("warns for %s", (_label, claims) => {
      expect(ids(claims)).toEqual(["no-numeric-owner-id"]);
    });

    // A deny-only policy can only take access away, so it need not pin an owner at all.
    it.each<[string, Record<string, RawMatcher>]>([
      ["no owner at all", { event_name: ["pull_request_target", "workflow_run"] }],
      ["an owner by name only", { repository_owner: "octo-org", ref: { glob: "refs/heads/wip/*" } }],
    ])("is silent for a policy used only in deny lists that pins %s", (_label, claims) => {
      expect(policyWarnings("refused", { claims }, { deniesOnly: true })).toEqual([]);
    });

    it("still warns for the same policies used in an allow list (the deny-only twins)", () => {
      expect(ids({ event_name: ["pull_request_target", "workflow_run"] })).toEqual([
        "no-numeric-owner-id",
        "event-name-open",
      ]);
      expect(ids({ repository_owner: "octo-org", ref: { glob: "refs/heads/wip/*" } })).toEqual([
        "no-numeric-owner-id",
        "event-name-open",
      ]);
    });
  });

  describe("event-name-open", () => {
    it("warns when event_name is not constrained", () => {
      const warnings = policyWarnings("p", { claims: { repository_owner_id: 65 } });
      expect(warnings).toEqual([
        {
          id: "event-name-open",
          path: "policies.p.claims.event_name",
          message: expect.stringContaining("event_name: { not: [pull_request_target, workflow_run] }"),
        },
      ]);
    });

    it.each<[string, RawMatcher, string]>([
      ["a not that forgets workflow_run", { not: "pull_request_target" }, "workflow_run"],
      ["a list naming pull_request_target", ["push", "pull_request_target"], "pull_request_target"],
      ["a glob admitting both", { glob: "*" }, "pull_request_target and workflow_run"],
      ["a regex admitting workflow_run", { regex: "workflow_.*" }, "workflow_run"],
    ])("warns for %s", (_label, eventName, admitted) => {
      const warnings = policyWarnings("p", { claims: { repository_owner_id: 65, event_name: eventName } });
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.id).toBe("event-name-open");
      expect(warnings[0]!.message).toContain(`admits ${admitted}`);
    });

    it("is silent for a policy used only to deny those events", () => {
      const raw = {
        claims: { repository_owner_id: 65, event_name: ["pull_request_target", "workflow_run"] },
      };
      expect(policyWarnings("fork-events", raw, { deniesOnly: true })).toEqual([]);
      expect(policyWarnings("fork-events", raw).map((w) => w.id)).toEqual(["event-name-open"]);
    });

    it.each<[string, RawMatcher]>([
      ["an exact event", "push"],
      ["a list of safe events", ["push", "workflow_dispatch", "pull_request"]],
      ["a not of both", closedEvents],
      ["a glob that cannot reach them", { glob: "push*" }],
    ])("is silent for %s", (_label, eventName) => {
      expect(ids({ repository_owner_id: 65, event_name: eventName })).toEqual([]);
    });
  });

  describe("regex-looks-like-glob", () => {
    it("flags `/*` and says what was probably meant", () => {
      const warnings = policyWarnings("p", {
        claims: { repository_owner_id: 65, event_name: "push", repository: { regex: "my-org/*" } },
      });
      expect(warnings).toEqual([
        {
          id: "regex-looks-like-glob",
          path: "policies.p.claims.repository.regex",
          message: expect.stringContaining('Did you mean {glob: "my-org/*"} or {regex: "my-org/.*"}?'),
        },
      ]);
    });

    it("flags a leading `*`, in lists and under not, with the nested path", () => {
      const warnings = policyWarnings("p", {
        claims: {
          repository_owner_id: 65,
          event_name: "push",
          workflow_ref: ["x", { not: { regex: "*-test" } }],
        },
      });
      expect(warnings.map((w) => [w.id, w.path])).toEqual([
        ["regex-looks-like-glob", "policies.p.claims.workflow_ref[1].not.regex"],
      ]);
      expect(warnings[0]!.message).toContain('{regex: ".*-test"}');
    });

    it("leaves real regexes and globs alone", () => {
      expect(
        ids({
          repository_owner_id: 65,
          event_name: "push",
          repository: { regex: "my-org/.*" },
          ref: { regex: "refs/(heads|tags)/v[0-9]+" },
          workflow_ref: { glob: "my-org/*" },
        }),
      ).toEqual([]);
    });
  });

  describe("sub-leading-wildcard", () => {
    it.each<[string, RawMatcher, string]>([
      ["a glob", { glob: "*:ref:refs/heads/main" }, "policies.p.claims.sub.glob"],
      ["a regex", { regex: ".*:environment:production" }, "policies.p.claims.sub.regex"],
      ["an anchored regex", { regex: "^.+:environment:production" }, "policies.p.claims.sub.regex"],
      [
        "a list item",
        ["repo:octo-org/a:ref:refs/heads/main", { glob: "*:pull_request" }],
        "policies.p.claims.sub[1].glob",
      ],
      ["a glob starting with `?`", { glob: "?epo:octo-org/*" }, "policies.p.claims.sub.glob"],
      ["a regex group", { regex: "(.*):ref:refs/heads/main" }, "policies.p.claims.sub.regex"],
      ["a regex class", { regex: "[a-z]+:octo-org/app:ref:refs/heads/main" }, "policies.p.claims.sub.regex"],
      ["a regex escape", { regex: "\\w+:octo-org/app:ref:refs/heads/main" }, "policies.p.claims.sub.regex"],
      ["an anchored regex class", { regex: "^[^:]+:octo-org/app:.*" }, "policies.p.claims.sub.regex"],
      ["a regex `.` then literal text", { regex: ".epo:octo-org/.*" }, "policies.p.claims.sub.regex"],
      [
        "a regex with an optional first character",
        { regex: "r?epo:octo-org/.*" },
        "policies.p.claims.sub.regex",
      ],
      [
        "a regex alternation with an open branch",
        { regex: "repo:octo-org/app:.*|.*" },
        "policies.p.claims.sub.regex",
      ],
      ["a case-folded regex", { regex: "(?i)repo:octo-org/.*" }, "policies.p.claims.sub.regex"],
      [
        "a regex list item",
        ["repo:octo-org/a:ref:refs/heads/main", { regex: "(repo|x):.*" }],
        "policies.p.claims.sub[1].regex",
      ],
      [
        "a regex in a list under a double not",
        { not: { not: [{ regex: "\\S+" }] } },
        "policies.p.claims.sub.not.not[0].regex",
      ],
    ])("warns for %s", (_label, sub, path) => {
      const warnings = policyWarnings("p", { claims: { repository_owner_id: 65, event_name: "push", sub } });
      expect(warnings.map((w) => [w.id, w.path])).toEqual([["sub-leading-wildcard", path]]);
      expect(warnings[0]!.message).toContain("start it with your owner");
    });

    // The deny twins of the cases above: each starts with literal text, or sits under `not`.
    it.each<[string, RawMatcher]>([
      ["an owner-first glob", { glob: "repo:octo-org/*" }],
      ["an owner-first glob with `?` later", { glob: "repo:octo-org/app?:ref:refs/heads/main" }],
      // In a glob only `*` and `?` are wildcards: `[r]` is the three characters `[`, `r`, `]`.
      ["a glob with a literal `[`", { glob: "[r]epo:octo-org/*" }],
      ["a glob with a literal `{`", { glob: "{repo}:octo-org/*" }],
      ["an owner-first regex", { regex: "repo:octo-org/.*" }],
      ["an anchored owner-first regex", { regex: "^repo:octo-org/.*:ref:refs/heads/main$" }],
      ["a regex whose branches share the owner", { regex: "repo:octo-org/a:.*|repo:octo-org/b:.*" }],
      ["a regex whose first class is one character", { regex: "[r]epo:octo-org/.*" }],
      ["a regex whose first group is literal", { regex: "(repo):octo-org/.*" }],
      ["a regex starting with an escaped literal", { regex: "repo\\:octo-org/.*" }],
      ["an empty regex", { regex: "" }],
      ["a leading wildcard under not", { not: { glob: "*:pull_request" } }],
      ["a leading regex wildcard in a list under not", { not: ["x", { regex: ".*:pull_request" }] }],
      ["an invalid regex (a compile problem instead)", { regex: "(.*" }],
    ])("is silent for %s", (_label, sub) => {
      expect(ids({ repository_owner_id: 65, event_name: "push", sub })).toEqual([]);
    });

    it("is silent for a policy used only in deny lists, which can only refuse more", () => {
      const raw = { claims: { event_name: "pull_request", sub: { glob: "*:pull_request" } } };
      expect(policyWarnings("refused", raw, { deniesOnly: true })).toEqual([]);
      expect(policyWarnings("refused", raw).map((w) => w.id)).toEqual([
        "no-numeric-owner-id",
        "sub-leading-wildcard",
      ]);
    });
  });

  it("orders warnings stably and skips malformed parts", () => {
    const raw = {
      claims: { sub: { glob: "*x" }, repository: { regex: "o/*" }, event_name: [], repository_owner: "o" },
    } as unknown as RawPolicy;
    expect(policyWarnings("p", raw).map((w) => w.id)).toEqual([
      "no-numeric-owner-id",
      "event-name-open",
      "regex-looks-like-glob",
      "sub-leading-wildcard",
    ]);
    expect(policyWarnings("p", {} as RawPolicy)).toEqual([]);
    expect(policyWarnings("p", null as unknown as RawPolicy)).toEqual([]);
  });
});
