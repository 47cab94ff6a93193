import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileConfigText, formatProblems, loadConfigFile } from "../../src/config/index.js";

const base = `listen:
  host: 127.0.0.1
  port: 9000
issuers:
  - name: dev
    issuer: http://127.0.0.1:4000
    audiences: [tollgate.test]
`;

describe("PORT and BIND", () => {
  it("use listen from the file, or the defaults, when the environment is silent", () => {
    expect(compileConfigText(base, { env: {} }).config?.listen).toEqual({ host: "127.0.0.1", port: 9000 });
    expect(compileConfigText(base.replace(/listen:\n.*\n.*\n/, "")).config?.listen).toEqual({
      host: "0.0.0.0",
      port: 8080,
    });
  });

  it("override listen.port and listen.host", () => {
    const result = compileConfigText(base, { env: { PORT: "8443", BIND: "::1" } });
    expect(result.problems).toEqual([]);
    expect(result.config?.listen).toEqual({ host: "::1", port: 8443 });
  });

  it("ignore empty values, as unset variables", () => {
    expect(compileConfigText(base, { env: { PORT: "", BIND: " " } }).config?.listen).toEqual({
      host: "127.0.0.1",
      port: 9000,
    });
  });

  it("report a PORT that is not a port, naming PORT", () => {
    for (const port of ["http", "65536", "80.5", "-1"]) {
      const result = compileConfigText(base, { env: { PORT: port } });
      expect(result.config, port).toBeUndefined();
      expect(result.problems, port).toEqual([
        {
          path: "$PORT",
          message: "the environment variable PORT must be a whole number from 0 to 65535",
          fix: "PORT=8080, or unset PORT to use listen.port",
        },
      ]);
    }
    expect(formatProblems(compileConfigText(base, { env: { PORT: "x" } }).problems, "tollgate.yaml")).toBe(
      "environment $PORT: the environment variable PORT must be a whole number from 0 to 65535 — fix: PORT=8080, or unset PORT to use listen.port",
    );
  });
});

describe("loadConfigFile", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tollgate-config-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads, compiles and applies the given environment", async () => {
    const file = join(dir, "ok.yaml");
    await writeFile(file, base);
    const result = await loadConfigFile(file, { PORT: "7000" });
    expect(result.problems).toEqual([]);
    expect(result.config?.listen.port).toBe(7000);
  });

  it("reports a missing file or a directory as a problem, not a throw", async () => {
    const missing = await loadConfigFile(join(dir, "absent.yaml"));
    expect(missing.config).toBeUndefined();
    expect(missing.problems).toEqual([
      expect.objectContaining({ path: "", message: "the configuration file does not exist" }),
    ]);
    const directory = await loadConfigFile(dir);
    expect(directory.problems[0]?.message).toBe("the configuration path is a directory, not a file");
  });
});

describe("formatProblems", () => {
  it("prints file:line path: message — fix", () => {
    const text = `${base}routes:\n  - name: r\n    path_prefix: /r/\n    upstream: ftp://r.internal\n    allow: [p]\npolicies:\n  p:\n    claims: { repository_owner_id: 1, event_name: push }\n`;
    const result = compileConfigText(text, { sourceName: "tollgate.yaml" });
    expect(formatProblems(result.problems, "tollgate.yaml")).toBe(
      "tollgate.yaml:11 routes[0].upstream: must be an http(s) URL — fix: write upstream: http://host:port (optionally with a base path: http://host:port/base)",
    );
  });

  it("prints problems without a path or line plainly", () => {
    expect(
      formatProblems(
        [
          { path: "", line: 1, message: "the configuration is empty" },
          { path: "", message: "the configuration file does not exist", fix: "pass --config FILE" },
        ],
        "x.yaml",
      ),
    ).toBe(
      "x.yaml:1: the configuration is empty\nx.yaml: the configuration file does not exist — fix: pass --config FILE",
    );
  });
});
