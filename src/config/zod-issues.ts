import type { z } from "zod";
import { compileMatcher, type PolicyProblem } from "../policy/index.js";
import { parsePath } from "./config-path.js";
import { durationTypeMessage } from "./schema.js";
import { closestMatch } from "./suggest.js";

/** A problem before its line is looked up: path as segments, message, optional fix. */
export interface Finding {
  path: (string | number)[];
  message: string;
  fix?: string;
}

/**
 * Turns zod's issues (parsed with `reportInput: true`) into findings that read as configuration advice:
 * what is wrong at which path, and what to write instead. `root` is the schema the issues came from; it
 * is consulted for the keys allowed in an object (for "did you mean") and for field examples (for fixes).
 */
export function findingsFromIssues(issues: readonly z.core.$ZodIssue[], root: z.ZodType): Finding[] {
  return issues.flatMap((issue) => findingsFromIssue(issue, root));
}

function findingsFromIssue(issue: z.core.$ZodIssue, root: z.ZodType): Finding[] {
  const path = issue.path.map((segment) => (typeof segment === "symbol" ? String(segment) : segment));
  const input = (issue as { input?: unknown }).input;
  const key = path.at(-1);
  switch (issue.code) {
    case "unrecognized_keys": {
      const allowed = knownKeys(schemaAt(root, path));
      return issue.keys.map((unknownKey) => {
        const suggestion = closestMatch(unknownKey, allowed);
        return suggestion === undefined
          ? {
              path: [...path, unknownKey],
              message: `unknown key "${unknownKey}"`,
              fix: allowed.length > 0 ? `remove it (keys allowed here: ${allowed.join(", ")})` : "remove it",
            }
          : {
              path: [...path, unknownKey],
              message: `unknown key "${unknownKey}" (did you mean "${suggestion}"?)`,
              fix: `rename it to ${suggestion}`,
            };
      });
    }
    case "invalid_type": {
      if (input === undefined) {
        const example = exampleAt(root, path);
        return [{ path, message: "is required", ...fixWrite("add", key, example) }];
      }
      if (issue.message === durationTypeMessage) {
        const fix =
          typeof input === "number" ? fixWrite("write", key, `${input}s`) : fixWrite("write", key, "30s");
        return [{ path, message: durationTypeMessage, ...fix }];
      }
      const expected = expectedText(issue.expected);
      const numeric =
        typeof input === "string" && /^\d+$/.test(input) && /^(number|int)$/.test(issue.expected);
      return [
        {
          path,
          message: `must be ${expected}, not ${kindOf(input)}`,
          ...(numeric
            ? fixWrite("write", key, Number(input))
            : fixWrite("write", key, exampleAt(root, path))),
        },
      ];
    }
    case "invalid_value": {
      const values = issue.values.map(String);
      const suggestion = typeof input === "string" ? closestMatch(input, values) : undefined;
      return [
        {
          path,
          message: `must be one of ${values.join(", ")}${input === null ? ", not empty" : ""}`,
          ...(suggestion === undefined ? {} : fixWrite("write", key, suggestion)),
        },
      ];
    }
    case "invalid_key": {
      const inner = issue.issues[0]?.message ?? "is not an acceptable key";
      return [{ path, message: `key ${JSON.stringify(String(key))}: ${inner}` }];
    }
    case "invalid_union":
      // A claim matcher (under `policies`): let the policy compiler say precisely what is wrong.
      if (path[0] === "policies") return matcherFindings(path, input);
      // The others (`single_use`, a route's `websocket`) are "this, or a mapping": say so, with an example.
      return [
        {
          path,
          message: isDefaultMessage(issue.message) ? `must not be ${kindOf(input)}` : issue.message,
          ...fixWrite("write", key, exampleAt(root, path)),
        },
      ];
    case "too_small":
    case "too_big": {
      if (!isDefaultMessage(issue.message)) return [{ path, message: issue.message }];
      const bound = issue.code === "too_small" ? `at least ${issue.minimum}` : `at most ${issue.maximum}`;
      return [{ path, message: `must be ${bound}` }];
    }
    case "custom": {
      const fix = (issue.params as { fix?: unknown } | undefined)?.fix;
      return [{ path, message: issue.message, ...(typeof fix === "string" ? { fix } : {}) }];
    }
    case "invalid_format": {
      const example = issue.message === durationTypeMessage ? exampleAt(root, path) : undefined;
      return [{ path, message: issue.message, ...fixWrite("write", key, example) }];
    }
    default:
      return [{ path, message: issue.message }];
  }
}

function matcherFindings(path: (string | number)[], input: unknown): Finding[] {
  const problems: PolicyProblem[] = [];
  compileMatcher(input, "", problems);
  if (problems.length === 0) {
    return [
      {
        path,
        message: "must be a value, a list of values, or one of {glob: …}, {regex: …}, {not: …}",
      },
    ];
  }
  return problems.map((problem) => {
    const finding: Finding = { path: [...path, ...parsePath(problem.path)], message: problem.message };
    const unknownKey = /^unknown matcher key "([^"]*)"/.exec(problem.message)?.[1];
    const suggestion =
      unknownKey === undefined ? undefined : closestMatch(unknownKey, ["glob", "regex", "not"]);
    if (suggestion !== undefined) finding.fix = `rename it to ${suggestion}`;
    return finding;
  });
}

/** zod's own messages; ours are replaced only when zod wrote them. */
function isDefaultMessage(message: string): boolean {
  return /^(Too (small|big)|Invalid )/.test(message);
}

function fixWrite(verb: string, key: string | number | undefined, value: unknown): { fix?: string } {
  if (value === undefined) return {};
  const text = inlineYaml(value);
  return { fix: typeof key === "string" ? `${verb} ${key}: ${text}` : `${verb} ${text}` };
}

/** A value as it would be written inline in YAML, for fixes. */
function inlineYaml(value: unknown): string {
  if (typeof value === "string") {
    // Quote what YAML would otherwise read as another type or as syntax.
    return /^[A-Za-z/][\w./:@{}*+-]*$/.test(value) && !/^(true|false|null|yes|no|on|off)$/i.test(value)
      ? value
      : JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(inlineYaml).join(", ")}]`;
  if (typeof value === "object" && value !== null) {
    return `{ ${Object.entries(value)
      .map(([k, v]) => `${k}: ${inlineYaml(v)}`)
      .join(", ")} }`;
  }
  return String(value);
}

function expectedText(expected: string): string {
  switch (expected) {
    case "string":
      return "a string";
    case "number":
      return "a number";
    case "int":
      return "a whole number";
    case "boolean":
      return "true or false";
    case "array":
      return "a list";
    case "object":
    case "record":
      return "a mapping";
    default:
      return expected;
  }
}

function kindOf(value: unknown): string {
  if (value === null) return "empty";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string")
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === "number") return Number.isInteger(value) ? "a whole number" : `the number ${value}`;
  return `${typeof value} ${String(value)}`;
}

// Walking the schema reads zod 4's public `schema.def` (the definition zod documents for library authors);
// only the node kinds this schema uses are followed.
interface SchemaDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  getter?: () => z.ZodType;
  options?: z.ZodType[];
}

function defOf(schema: z.ZodType): SchemaDef {
  return schema.def as unknown as SchemaDef;
}

function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  let current = schema;
  for (let depth = 0; current !== undefined && depth < 10; depth++) {
    const def = defOf(current);
    if (def.innerType !== undefined) current = def.innerType;
    else if (def.type === "lazy" && def.getter) current = def.getter();
    else if (def.type === "pipe" && def.in) current = def.in;
    else return current;
  }
  return current;
}

/** The mapping form of a "this, or a mapping" union (`single_use`, `websocket`); any other node as it is. */
function objectBranch(node: z.ZodType): z.ZodType {
  const def = defOf(node);
  if (def.type !== "union") return node;
  return (
    def.options
      ?.map((option) => unwrap(option))
      .find((option) => option && defOf(option).type === "object") ?? node
  );
}

function schemaAt(root: z.ZodType, path: readonly (string | number)[]): z.ZodType | undefined {
  let current: z.ZodType | undefined = root;
  for (const segment of path) {
    const node = unwrap(current);
    if (node === undefined) return undefined;
    const def = defOf(objectBranch(node));
    if (def.type === "object") current = def.shape?.[String(segment)];
    else if (def.type === "array") current = def.element;
    else if (def.type === "record") current = def.valueType;
    else return undefined;
  }
  return current;
}

function knownKeys(schema: z.ZodType | undefined): string[] {
  const node = unwrap(schema);
  if (node === undefined) return [];
  const def = defOf(objectBranch(node));
  return def.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

/** The first `examples` entry of the field at `path`, looking through optional wrappers. */
function exampleAt(root: z.ZodType, path: readonly (string | number)[]): unknown {
  let current = schemaAt(root, path);
  for (let depth = 0; current !== undefined && depth < 10; depth++) {
    const examples = (current.meta() as { examples?: unknown[] } | undefined)?.examples;
    if (Array.isArray(examples) && examples.length > 0) return examples[0];
    current = defOf(current).innerType;
  }
  return undefined;
}
