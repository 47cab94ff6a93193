import type { ConfigProblem, ConfigWarning } from "./types.js";

/**
 * Renders problems for the command line, one per line:
 * `tollgate.yaml:12 routes[0].upstream: must be an http(s) URL — fix: write upstream: http://host:port`.
 * Problems about environment variables (paths starting with `$`) are shown as `environment $PORT: …`.
 *
 * @example
 * process.stderr.write(`${formatProblems(result.problems, "tollgate.yaml")}\n`);
 */
export function formatProblems(problems: readonly ConfigProblem[], sourceName: string): string {
  return problems
    .map((problem) => {
      const where = location(problem.path, problem.line, sourceName);
      return `${where}: ${problem.message}${problem.fix === undefined ? "" : ` — fix: ${problem.fix}`}`;
    })
    .join("\n");
}

/**
 * Renders warnings like {@link formatProblems}:
 * `tollgate.yaml:9 policies.org-ci.claims: warning [event-name-open]: …`.
 */
export function formatWarnings(warnings: readonly ConfigWarning[], sourceName: string): string {
  return warnings
    .map(
      (warning) =>
        `${location(warning.path, warning.line, sourceName)}: warning [${warning.id}]: ${warning.message}`,
    )
    .join("\n");
}

function location(path: string, line: number | undefined, sourceName: string): string {
  if (path.startsWith("$")) return `environment ${path}`;
  const file = line === undefined ? sourceName : `${sourceName}:${line}`;
  return path === "" ? file : `${file} ${path}`;
}
