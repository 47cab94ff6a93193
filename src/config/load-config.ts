import { readFile } from "node:fs/promises";
import { type Document, LineCounter, parseDocument } from "yaml";
import { compileValidated } from "./compile-config.js";
import { formatPath, type PathSegments } from "./config-path.js";
import { configSchema } from "./schema.js";
import type { CompiledConfig, ConfigProblem, ConfigWarning } from "./types.js";
import { lineOfPath, pathAtOffset } from "./yaml-locate.js";
import { type Finding, findingsFromIssues } from "./zod-issues.js";

/** The outcome of loading a configuration: the compiled config when there is no problem, and findings. */
export interface ConfigResult {
  /** Set only when `problems` is empty. */
  config?: CompiledConfig;
  /** Every problem found, in file order where lines are known. */
  problems: ConfigProblem[];
  /** Risky-but-legal findings (also in `config.warnings`). */
  warnings: ConfigWarning[];
}

/** Options of {@link compileConfigText}. */
export interface CompileTextOptions {
  /** Environment for `PORT` and `BIND` overrides. Default: none (no overrides); pass `process.env` to apply them. */
  env?: NodeJS.ProcessEnv;
  /** Name of the source, for messages. Default: `tollgate.yaml`. */
  sourceName?: string;
}

/**
 * Parses, validates and compiles the text of a `tollgate.yaml`. Never throws for a bad configuration:
 * every problem (YAML syntax, duplicate keys, schema, issuer URLs, policies, references, environment
 * overrides) is collected, each with its path, its 1-based line and, where there is one, the fix.
 *
 * @example
 * const { config, problems, warnings } = compileConfigText(text, { env: process.env, sourceName: "tollgate.yaml" });
 * if (config === undefined) console.error(formatProblems(problems, "tollgate.yaml"));
 */
export function compileConfigText(text: string, options: CompileTextOptions = {}): ConfigResult {
  const env = options.env ?? {};
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (path: PathSegments) =>
    path[0]?.toString().startsWith("$") ? undefined : lineOfPath(doc, lineCounter, path);

  const yamlProblems = yamlErrors(doc, lineCounter);
  // Syntax errors leave a document whose structure is a guess: checking it would report phantom problems.
  // Duplicate keys alone leave a well-formed document, so the rest is still checked.
  if (yamlProblems.some((problem) => !problem.duplicateKey)) {
    return {
      problems: sortProblems(yamlProblems.map(({ duplicateKey: _, ...problem }) => problem)),
      warnings: [],
    };
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      problems: [{ path: "", line: 1, message: `the YAML cannot be read: ${message}` }],
      warnings: [],
    };
  }
  if (data === null || data === undefined) {
    return {
      problems: [
        {
          path: "",
          line: 1,
          message: "the configuration is empty",
          fix: "start from examples/tollgate.yaml (issuers, policies and routes)",
        },
      ],
      warnings: [],
    };
  }

  const parsed = configSchema.safeParse(data, { reportInput: true });
  const schemaFindings = parsed.success ? [] : findingsFromIssues(parsed.error.issues, configSchema);
  const outcome = compileValidated(parsed.success ? parsed.data : data, schemaFindings, env, lineOf);
  const toProblem = (finding: Finding): ConfigProblem => {
    const line = lineOf(finding.path);
    return {
      path: formatPath(finding.path),
      ...(line === undefined ? {} : { line }),
      message: finding.message,
      ...(finding.fix === undefined ? {} : { fix: finding.fix }),
    };
  };
  const problems = sortProblems(
    unique([
      ...yamlProblems.map(({ duplicateKey: _, ...problem }) => problem),
      ...schemaFindings.map(toProblem),
      ...outcome.findings.map(toProblem),
    ]),
  );
  return {
    ...(problems.length === 0 && outcome.config !== undefined ? { config: outcome.config } : {}),
    problems,
    warnings: outcome.warnings,
  };
}

/**
 * Reads and compiles a configuration file. A missing or unreadable file is reported as a problem, like
 * any other, rather than thrown.
 *
 * @example
 * const result = await loadConfigFile("tollgate.yaml", process.env);
 */
export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = {}): Promise<ConfigResult> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message =
      code === "ENOENT"
        ? "the configuration file does not exist"
        : code === "EACCES"
          ? "the configuration file cannot be read (permission denied)"
          : code === "EISDIR"
            ? "the configuration path is a directory, not a file"
            : `the configuration file cannot be read (${code ?? "unknown error"})`;
    return {
      problems: [{ path: "", message, fix: "pass --config FILE, or start from examples/tollgate.yaml" }],
      warnings: [],
    };
  }
  return compileConfigText(text, { env, sourceName: path });
}

function yamlErrors(doc: Document, lineCounter: LineCounter): (ConfigProblem & { duplicateKey: boolean })[] {
  return doc.errors.map((error) => {
    const offset = error.pos[0];
    const path = pathAtOffset(doc, offset);
    const duplicateKey = error.code === "DUPLICATE_KEY";
    const message = duplicateKey
      ? `duplicate key ${JSON.stringify(String(path.at(-1) ?? ""))}: YAML keeps only one of them`
      : `YAML syntax: ${error.message.split("\n")[0]}`;
    return {
      path: formatPath(path),
      line: lineCounter.linePos(offset).line,
      message,
      ...(duplicateKey ? { fix: "remove or rename one of the two" } : {}),
      duplicateKey,
    };
  });
}

/** The schema and the policy compiler may both see one mistake in a matcher: report it once (the first has the fix). */
function unique(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = `${problem.path}\u0000${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** File order: by line (problems without a line, such as environment variables, last), stable otherwise. */
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((problem, index) => ({ problem, index }))
    .sort(
      (a, b) =>
        (a.problem.line ?? Number.MAX_SAFE_INTEGER) - (b.problem.line ?? Number.MAX_SAFE_INTEGER) ||
        a.index - b.index,
    )
    .map(({ problem }) => problem);
}
