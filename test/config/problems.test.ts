import { describe, expect, it } from "vitest";
import { type ConfigProblem, compileConfigText } from "../../src/config/index.js";

/** The 1-based line of the only line containing `marker` (a `# <- …` comment in the YAML under test). */
function lineOf(text: string, marker: string): number {
  const lines = text.split("\n");
  const matches = lines.flatMap((line, index) => (line.includes(marker) ? [index + 1] : []));
  if (matches.length !== 1) throw new Error(`marker ${marker} found ${matches.length} times`);
  return matches[0]!;
}

function problemAt(problems: readonly ConfigProblem[], path: string): ConfigProblem {
  const found = problems.filter((problem) => problem.path === path);
  if (found.length !== 1)
    throw new Error(`expected one problem at ${path}, got ${JSON.stringify(problems, null, 2)}`);
  return found[0]!;
}

const validBase = `issuers:
  - name: github
    preset: github
    audiences: [tollgate.example.com]
policies:
  ci:
    claims:
      repository_owner_id: 5678
      event_name: push
routes:
  - name: api
    path_prefix: /api/
    upstream: http://api.internal:8080
    allow: [ci]
`;

describe("every problem at once", () => {
  const text = `listne:                       # <- listne
  port: 8080
listen:
  port: "8080"                # <- port
issuers:
  - name: github
    issuer: http://issuer.example.com   # <- http-issuer
    audiences: [tollgate.example.com]
    algorithms: [HS256]       # <- hmac
    clock_skew: 30            # <- clock-skew
policies:
  open:
    claims:                   # <- owner-less
      ref: refs/heads/main
  ci:
    claims:
      repository_owner_id: 5678
      event_name: { regex: "(?=push)" }   # <- bad-regex
routes:
  - name: api
    path_prefix: api/         # <- prefix
    upstream: http://api.internal:8080?debug=1   # <- upstream
    methods: [get]            # <- method
    allow: []                 # <- empty-allow
  - name: api                 # <- duplicate-name
    path_prefix: /b/
    upstream: http://b.internal
    allow: [c1]               # <- unknown-policy
`;
  const result = compileConfigText(text, { sourceName: "bad.yaml" });

  it("reports each mistake, with its path, line and fix, and compiles nothing", () => {
    expect(result.config).toBeUndefined();
    const expected: [path: string, marker: string, message: RegExp, fix?: RegExp][] = [
      ["listne", "<- listne", /unknown key "listne" \(did you mean "listen"\?\)/, /rename it to listen/],
      ["listen.port", "<- port", /must be a whole number|must be a number/, /write port: 8080/],
      ["issuers[0].issuer", "<- http-issuer", /must use https/],
      ["issuers[0].algorithms", "<- hmac", /"HS256" is forbidden/, /algorithms: \[RS256\]/],
      ["issuers[0].clock_skew", "<- clock-skew", /duration string/, /clock_skew: "30s"/],
      ["policies.open.claims", "<- owner-less", /pins no owner/],
      ["policies.ci.claims.event_name.regex", "<- bad-regex", /invalid RE2 regex/],
      ["routes[0].path_prefix", "<- prefix", /must start with "\/"/, /path_prefix: \/api\//],
      ["routes[0].upstream", "<- upstream", /must not have a query or fragment/],
      ["routes[0].methods[0]", "<- method", /must be one of GET, HEAD/, /write GET/],
      ["routes[0].allow", "<- empty-allow", /is empty: nothing is allowed by default/, /allow: \[open\]/],
      ["routes[1].name", "<- duplicate-name", /route name "api" is already used by routes\[0\]/],
      ["routes[1].allow[0]", "<- unknown-policy", /unknown policy "c1" \(did you mean "ci"\?\)/, /write ci/],
    ];
    for (const [path, marker, message, fix] of expected) {
      const problem = problemAt(result.problems, path);
      expect(problem.line, path).toBe(lineOf(text, marker));
      expect(problem.message, path).toMatch(message);
      if (fix) expect(problem.fix, path).toMatch(fix);
    }
    expect(result.problems).toHaveLength(expected.length);
  });

  it("lists problems in file order", () => {
    const lines = result.problems.map((problem) => problem.line ?? 0);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  });

  it("never repeats a secret-bearing URL in a message", () => {
    const withPassword = validBase.replace(
      "http://api.internal:8080",
      "http://admin:hunter2@api.internal:8080",
    );
    const problems = compileConfigText(withPassword).problems;
    expect(problemAt(problems, "routes[0].upstream").message).toBe("must not contain credentials");
    expect(JSON.stringify(problems)).not.toContain("hunter2");
  });
});

describe("single kinds of problem", () => {
  it("accepts the valid base configuration (the twin of every case below)", () => {
    const result = compileConfigText(validBase);
    expect(result.problems).toEqual([]);
    expect(result.config?.routes[0]?.access.allow.map((policy) => policy.name)).toEqual(["ci"]);
  });

  it("suggests the closest key for an unknown one, and lists the allowed keys otherwise", () => {
    const typo = compileConfigText(validBase.replace("path_prefix:", "pathPrefix:")).problems;
    expect(problemAt(typo, "routes[0].pathPrefix")).toMatchObject({
      line: 12,
      message: 'unknown key "pathPrefix" (did you mean "path_prefix"?)',
      fix: "rename it to path_prefix",
    });
    // The renamed key is also missing now: reported at the route, where it must be added.
    expect(problemAt(typo, "routes[0].path_prefix")).toMatchObject({ line: 11, message: "is required" });

    const unrelated = compileConfigText(`${validBase}colour: blue\n`).problems;
    expect(problemAt(unrelated, "colour").message).toBe('unknown key "colour"');
    expect(problemAt(unrelated, "colour").fix).toMatch(
      /^remove it \(keys allowed here: listen, issuers, policies/,
    );
  });

  it("rejects bare numbers as durations, suggesting the unit-bearing string", () => {
    const bare = compileConfigText(validBase.replace("allow: [ci]", "allow: [ci]\n    timeout: 45")).problems;
    expect(problemAt(bare, "routes[0].timeout")).toMatchObject({ line: 15, fix: 'write timeout: "45s"' });
    const unitless = compileConfigText(
      validBase.replace("allow: [ci]", "allow: [ci]\n    timeout: 45 seconds"),
    );
    expect(problemAt(unitless.problems, "routes[0].timeout").message).toMatch(/duration string/);
    const zero = compileConfigText(validBase.replace("allow: [ci]", "allow: [ci]\n    timeout: 0s")).problems;
    expect(problemAt(zero, "routes[0].timeout").message).toBe("must be longer than 0s");
    const good = compileConfigText(validBase.replace("allow: [ci]", "allow: [ci]\n    timeout: 1m30s"));
    expect(good.problems).toEqual([]);
    expect(good.config?.routes[0]?.timeoutMs).toBe(90_000);
  });

  it("rejects a route whose allow list names an unknown policy, and accepts its known twin", () => {
    const unknown = compileConfigText(validBase.replace("allow: [ci]", "allow: [deploy]")).problems;
    expect(problemAt(unknown, "routes[0].allow[0]")).toMatchObject({
      line: 14,
      message: 'unknown policy "deploy"',
      fix: "use one of: ci",
    });
    const unknownDeny = compileConfigText(
      validBase.replace("allow: [ci]", "allow: [ci]\n    deny: [cj]"),
    ).problems;
    expect(problemAt(unknownDeny, "routes[0].deny[0]").message).toBe(
      'unknown policy "cj" (did you mean "ci"?)',
    );
  });

  it("rejects an empty allow on routes, tunnels and broker grants (deny by default: unreachable)", () => {
    const text = `${validBase.replace("allow: [ci]", "allow: []")}tunnels:
  - name: db
    destinations: ["db.internal:5432"]
    allow: []
broker:
  grants:
    - allow: []
      actions: [register]
      scopes: [octo-org]
`;
    const problems = compileConfigText(text).problems;
    expect(problems.map((problem) => [problem.path, problem.line])).toEqual([
      ["routes[0].allow", 14],
      ["tunnels[0].allow", 18],
      ["broker.grants[0].allow", 21],
    ]);
    for (const problem of problems) {
      expect(problem.message).toMatch(/nothing is allowed by default/);
      expect(problem.fix).toBe("list the policies that may use it, e.g. allow: [ci]");
    }
  });

  it("rejects a missing allow as required", () => {
    const problems = compileConfigText(validBase.replace("    allow: [ci]\n", "")).problems;
    expect(problemAt(problems, "routes[0].allow")).toMatchObject({
      line: 11,
      message: "is required",
      fix: "add allow: [org-ci]",
    });
  });

  it("rejects an owner-less policy (from the policy compiler), and accepts the owner-pinned twin", () => {
    const ownerless = compileConfigText(
      validBase.replace("repository_owner_id: 5678", "ref: refs/heads/main"),
    );
    expect(problemAt(ownerless.problems, "policies.ci.claims")).toMatchObject({ line: 7 });
    expect(problemAt(ownerless.problems, "policies.ci.claims").message).toMatch(/pins no owner/);
    expect(ownerless.config).toBeUndefined();
  });

  it("rejects HMAC and none algorithms, and accepts an asymmetric list", () => {
    for (const algorithm of ["HS256", "none"]) {
      const text = validBase.replace("audiences:", `algorithms: [${algorithm}]\n    audiences:`);
      expect(problemAt(compileConfigText(text).problems, "issuers[0].algorithms").message).toMatch(
        /forbidden/,
      );
    }
    const asymmetric = compileConfigText(
      validBase.replace("audiences:", "algorithms: [RS256, ES256]\n    audiences:"),
    );
    expect(asymmetric.problems).toEqual([]);
    expect(asymmetric.config?.issuers[0]?.algorithms).toEqual(["RS256", "ES256"]);
  });

  it("rejects a plain-http issuer unless it is on loopback", () => {
    const withIssuer = (url: string) => validBase.replace("preset: github", `issuer: ${url}`);
    const remote = compileConfigText(withIssuer("http://issuer.example.com")).problems;
    expect(problemAt(remote, "issuers[0].issuer")).toMatchObject({ line: 3 });
    expect(problemAt(remote, "issuers[0].issuer").message).toMatch(/must use https/);
    const loopback = compileConfigText(withIssuer("http://127.0.0.1:9999"));
    expect(loopback.problems).toEqual([]);
    expect(loopback.config?.issuers[0]?.issuer).toBe("http://127.0.0.1:9999");
  });

  it("expands presets and rejects unknown ones, and issuer together with preset", () => {
    const enterprise = compileConfigText(
      validBase.replace("preset: github", "preset: github-enterprise:octo-corp"),
    );
    expect(enterprise.config?.issuers[0]?.issuer).toBe(
      "https://token.actions.githubusercontent.com/octo-corp",
    );
    const unknown = compileConfigText(validBase.replace("preset: github", "preset: gitlab")).problems;
    expect(problemAt(unknown, "issuers[0].preset").message).toMatch(/unknown preset "gitlab"/);
    const both = compileConfigText(
      validBase.replace(
        "preset: github",
        "preset: github\n    issuer: https://token.actions.githubusercontent.com",
      ),
    ).problems;
    expect(problemAt(both, "issuers[0].preset").message).toBe("give either issuer or preset, not both");
    const neither = compileConfigText(validBase.replace("    preset: github\n", "")).problems;
    expect(problemAt(neither, "issuers[0]").message).toMatch(/needs issuer .* or preset/);
  });

  it("rejects duplicate issuer names and URLs, and empty audiences", () => {
    const text = validBase.replace(
      "issuers:\n",
      "issuers:\n  - name: github\n    issuer: https://token.actions.githubusercontent.com\n    audiences: []\n",
    );
    const problems = compileConfigText(text).problems;
    expect(problemAt(problems, "issuers[0].audiences").message).toBe("must list at least one audience");
    expect(problemAt(problems, "issuers[1].name").message).toMatch(/already used by issuers\[0\]/);
    expect(problemAt(problems, "issuers[1].preset").message).toMatch(/same issuer URL/);
  });

  it("rejects bad upstreams, path prefixes and duplicate prefixes", () => {
    const upstream = (value: string) =>
      compileConfigText(validBase.replace("http://api.internal:8080", value)).problems;
    expect(problemAt(upstream("api.internal:8080"), "routes[0].upstream")).toMatchObject({
      message: "must be an http(s) URL",
      fix: expect.stringMatching(/^write upstream: http:\/\/host:port/),
    });
    expect(problemAt(upstream("ftp://api.internal"), "routes[0].upstream").message).toBe(
      "must be an http(s) URL",
    );
    expect(problemAt(upstream("https://api.internal/#x"), "routes[0].upstream").message).toMatch(/fragment/);
    expect(upstream("https://api.internal/base/path")).toEqual([]);

    const dotted = compileConfigText(validBase.replace("/api/", "/api/../admin/")).problems;
    expect(problemAt(dotted, "routes[0].path_prefix").message).toMatch(/normalised path/);

    const twice = `${validBase}  - name: api2\n    path_prefix: /api/\n    upstream: http://b.internal\n    allow: [ci]\n`;
    expect(problemAt(compileConfigText(twice).problems, "routes[1].path_prefix").message).toMatch(
      /already has this path_prefix/,
    );
  });

  it("reports matcher mistakes once, with a suggestion", () => {
    const text = validBase.replace(
      "event_name: push",
      "event_name: { nott: [pull_request_target] }\n      ref: { glob: 1 }",
    );
    const problems = compileConfigText(text).problems;
    expect(problems).toEqual([
      expect.objectContaining({
        path: "policies.ci.claims.event_name.nott",
        line: 9,
        fix: "rename it to not",
      }),
      expect.objectContaining({
        path: "policies.ci.claims.ref.glob",
        line: 10,
        message: "glob must be a string pattern",
      }),
    ]);
  });

  it("requires a url for the redis store, and refuses one for memory", () => {
    expect(
      problemAt(compileConfigText(`${validBase}store:\n  kind: redis\n`).problems, "store.url").message,
    ).toBe("is required with kind: redis");
    const memory = compileConfigText(`${validBase}store:\n  url: redis://127.0.0.1:6379\n`).problems;
    expect(problemAt(memory, "store.url").message).toBe("is used only with kind: redis");
    const redis = compileConfigText(`${validBase}store:\n  kind: redis\n  url: redis://127.0.0.1:6379\n`);
    expect(redis.config?.store).toEqual({ kind: "redis", url: "redis://127.0.0.1:6379" });
  });

  it("takes audit.flush_interval as a duration up to 1s, 20ms by default, and rejects a longer one", () => {
    expect(compileConfigText(validBase).config?.audit).toEqual({
      sink: "stdout",
      flushIntervalMs: 20,
      denials: { windowMs: 10_000, maxSources: 256 },
    });
    const zero = compileConfigText(`${validBase}audit:\n  flush_interval: 0s\n`);
    expect(zero.config?.audit.flushIntervalMs).toBe(0);
    const second = compileConfigText(`${validBase}audit:\n  flush_interval: 1s\n`);
    expect(second.config?.audit.flushIntervalMs).toBe(1000);
    const tooLong = compileConfigText(`${validBase}audit:\n  flush_interval: 5s\n`);
    expect(tooLong.config).toBeUndefined();
    expect(problemAt(tooLong.problems, "audit.flush_interval").message).toMatch(/at most 1s/);
  });

  it("reports YAML syntax errors and duplicate keys with their lines", () => {
    const syntax = compileConfigText("listen:\n  port: [8080\nissuers: x\n").problems;
    expect(syntax.length).toBeGreaterThan(0);
    expect(syntax[0]!.message).toMatch(/^YAML syntax: /);
    expect(syntax[0]!.line).toBeGreaterThanOrEqual(2);

    const duplicate = compileConfigText(
      validBase.replace("    upstream:", "    upstream: http://x\n    upstream:"),
    ).problems;
    expect(duplicate).toEqual([
      expect.objectContaining({
        path: "routes[0].upstream",
        line: 14,
        message: expect.stringMatching(/^duplicate key "upstream"/),
      }),
    ]);
  });

  it("reports an empty file and a file that is not a mapping", () => {
    expect(compileConfigText("# nothing\n").problems).toEqual([
      expect.objectContaining({ path: "", line: 1, message: "the configuration is empty" }),
    ]);
    expect(compileConfigText("- a\n").problems).toEqual([
      expect.objectContaining({ path: "", line: 1, message: "must be a mapping, not a list" }),
    ]);
  });

  it("warns when the broker authorizes nobody, or everybody", () => {
    const none = compileConfigText(`${validBase}broker:\n  authorization: none\n`);
    expect(none.problems).toEqual([]);
    expect(none.warnings).toEqual([
      expect.objectContaining({ id: "broker-authorization-none", path: "broker.authorization", line: 16 }),
    ]);
    const noGrants = compileConfigText(`${validBase}broker:\n  authorization: oidc\n`);
    expect(noGrants.warnings.map((warning) => warning.id)).toEqual(["broker-no-grants"]);
    const granted = compileConfigText(
      `${validBase}broker:\n  grants:\n    - allow: [ci]\n      actions: [jitconfig]\n      scopes: ["{repository}"]\n`,
    );
    expect(granted.problems).toEqual([]);
    expect(granted.warnings).toEqual([]);
  });
});

describe("deny-only policies", () => {
  const yaml = (list: "deny" | "allow") => `issuers:
  - { name: github, preset: github, audiences: [tollgate.example.com] }
policies:
  main:
    claims: { repository_owner_id: 65 }
  fork-events:
    claims: { event_name: [pull_request_target, workflow_run] }
routes:
  - name: r
    path_prefix: /r/
    upstream: http://127.0.0.1:9
    allow: [main${list === "allow" ? ", fork-events" : ""}]
${list === "deny" ? "    deny: [fork-events]\n" : ""}`;

  it("need not pin an owner", () => {
    const result = compileConfigText(yaml("deny"));
    expect(result.problems).toEqual([]);
  });

  it("must pin an owner once they are used to allow (the deny twin)", () => {
    const result = compileConfigText(yaml("allow"));
    expect(result.problems.map((problem) => problem.message).join("\n")).toMatch(/pins no owner/);
  });
});
