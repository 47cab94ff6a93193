import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { compileConfigText } from "../../src/config/index.js";
import { root } from "./client-harness.js";

// What users copy must follow the hardening guide: least privilege, actions pinned by full commit SHA,
// a gateway-specific audience, no stored secret, no token printed.
const folder = join(root, "examples/workflows");
const workflowFiles = (await readdir(folder)).filter((name) => name.endsWith(".yml")).sort();

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Workflow {
  permissions?: unknown;
  jobs: Record<string, { permissions?: unknown; steps: Step[] }>;
}

/** The YAML code blocks of the README that show a workflow (they contain `steps:`). */
async function readmeWorkflowSnippets(): Promise<string[]> {
  const readme = await readFile(join(root, "README.md"), "utf8");
  return [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((match) => match[1]!.replace(/^ {3}/gm, ""))
    .filter((block) => block.includes("steps:"));
}

/** `./` (this repository's action) or `owner/repo[/path]@<40 hex>`: tags, branches and short SHAs fail. */
const pinnedReference = /^(?:\.\/|[\w.-]+\/[\w.-]+(?:\/[\w./-]+)?@[0-9a-f]{40})$/;

function usesLines(text: string): string[] {
  return [...text.matchAll(/^\s*(?:-\s+)?uses:\s*(\S+)/gm)].map((match) => match[1]!);
}

describe("example workflows", () => {
  it("exist", () => {
    expect(workflowFiles).toEqual(expect.arrayContaining(["private-services.yml", "call-a-route.yml"]));
  });

  it.each(workflowFiles)("%s grants only id-token: write and contents: read", async (name) => {
    const workflow = parse(await readFile(join(folder, name), "utf8")) as Workflow;
    expect(workflow.permissions).toEqual({ "id-token": "write", contents: "read" });
    for (const job of Object.values(workflow.jobs)) expect(job.permissions).toBeUndefined();
  });

  it.each(workflowFiles)(
    "%s pins every action by a full commit SHA (or uses this repository's ./)",
    async (name) => {
      const text = await readFile(join(folder, name), "utf8");
      const uses = usesLines(text);
      expect(uses.length).toBeGreaterThan(0);
      for (const reference of uses) expect(reference).toMatch(pinnedReference);
    },
  );

  it.each([
    "actions/checkout@v4",
    "actions/checkout@main",
    "actions/checkout@11bd719",
    "actions/checkout@11BD71901BBE5B1630CEEA73D27597364C9AF683",
    "docker://alpine:3",
  ])("the pin rule refuses %s", (reference) => {
    expect(reference).not.toMatch(pinnedReference);
  });

  it.each(workflowFiles)(
    "%s uses the gateway's own audience, no stored secret, and never prints a token",
    async (name) => {
      const text = await readFile(join(folder, name), "utf8");
      const workflow = parse(text) as Workflow;
      const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);
      const tollgate = steps.filter((step) => step.uses === "./");
      expect(tollgate).toHaveLength(1);
      const inputs = tollgate[0]!.with!;
      expect(String(inputs.gateway)).toMatch(/^https:\/\//);
      expect(new URL(String(inputs.gateway)).hostname).toBe(inputs.audience);
      expect(text).not.toMatch(/secrets\./);
      expect(text).not.toMatch(/ACTIONS_ID_TOKEN_REQUEST|add-mask|TOKEN=/);
    },
  );

  it("the gateway configuration that pairs with them compiles without problems or warnings", async () => {
    const text = await readFile(join(folder, "tollgate.yaml"), "utf8");
    const compiled = compileConfigText(text, { env: {}, sourceName: "examples/workflows/tollgate.yaml" });
    expect(compiled.problems).toEqual([]);
    expect(compiled.config?.warnings).toEqual([]);
  });

  it("the README's workflow snippets follow the same rules", async () => {
    const snippets = await readmeWorkflowSnippets();
    expect(snippets.length).toBeGreaterThan(0);
    for (const snippet of snippets) {
      expect(snippet).toMatch(/permissions: \{ id-token: write, contents: read \}/);
      expect(snippet).not.toMatch(/secrets\.|add-mask|ACTIONS_ID_TOKEN_REQUEST/);
      // For other repositories the README names tollgate's own action with a reference that cannot resolve
      // until it is replaced by a full commit SHA (a copied tag or fake SHA would silently run something).
      for (const reference of usesLines(snippet)) {
        expect(reference).toMatch(
          /^(?:\.\/|[\w.-]+\/[\w.-]+@[0-9a-f]{40}|OWNER\/tollgate@FULL_LENGTH_COMMIT_SHA)$/,
        );
      }
    }
  });
});
