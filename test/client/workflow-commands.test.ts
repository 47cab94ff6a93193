import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  addMaskCommand,
  annotationCommand,
  appendEnvironmentFile,
  environmentFileEntry,
} from "../../src/client/index.js";
import { parseEnvironmentFile } from "./environment-file.js";

describe("workflow commands", () => {
  it("masks with ::add-mask::, escaping what the runner unescapes", () => {
    expect(addMaskCommand("a.b.c")).toBe("::add-mask::a.b.c\n");
    expect(addMaskCommand("50%\nnext")).toBe("::add-mask::50%25%0Anext\n");
    expect(annotationCommand("error", "line1\nline2")).toBe("::error::line1%0Aline2\n");
  });

  it("writes environment-file entries with a random delimiter, multi-line values intact", () => {
    const entry = environmentFileEntry("NO_PROXY", "a,b\nc");
    expect(entry).toMatch(/^NO_PROXY<<ghadelimiter_[0-9a-f-]{36}\na,b\nc\nghadelimiter_[0-9a-f-]{36}\n$/);
    expect(parseEnvironmentFile(entry)).toEqual({ NO_PROXY: "a,b\nc" });
    expect(environmentFileEntry("X", "1")).not.toBe(environmentFileEntry("X", "1"));
  });

  it("refuses a name that would break the file format", () => {
    expect(() => environmentFileEntry("A=B", "x")).toThrow("invalid");
    expect(() => environmentFileEntry("A\nB", "x")).toThrow("invalid");
    expect(() => environmentFileEntry("", "x")).toThrow("invalid");
  });

  it("appends to the file named by the variable, and does nothing outside Actions", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tollgate-envfile-"));
    try {
      const file = join(dir, "env");
      expect(appendEnvironmentFile({ GITHUB_ENV: file }, "GITHUB_ENV", "A", "1")).toBe(true);
      expect(appendEnvironmentFile({ GITHUB_ENV: file }, "GITHUB_ENV", "B", "two\nlines")).toBe(true);
      expect(parseEnvironmentFile(await readFile(file, "utf8"))).toEqual({ A: "1", B: "two\nlines" });
      expect(appendEnvironmentFile({}, "GITHUB_ENV", "A", "1")).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
