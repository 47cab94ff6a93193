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
    ])("warns for %s", (_label, sub, path) => {
      const warnings = policyWarnings("p", { claims: { repository_owner_id: 65, event_name: "push", sub } });
      expect(warnings.map((w) => [w.id, w.path])).toEqual([["sub-leading-wildcard", path]]);
      expect(warnings[0]!.message).toContain("start it with your owner");
    });

    it("is silent for an owner-first pattern and under not", () => {
      expect(ids({ repository_owner_id: 65, event_name: "push", sub: { glob: "repo:octo-org/*" } })).toEqual(
        [],
      );
      expect(
        ids({ repository_owner_id: 65, event_name: "push", sub: { not: { glob: "*:pull_request" } } }),
      ).toEqual([]);
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
