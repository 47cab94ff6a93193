import { z } from "zod";
import { parseDuration } from "./duration.js";

/**
 * Field builders shared by the configuration's sections (`config/schema.ts` composes them; `broker/` and
 * `tunnel/` own their sections' schemas and build them from these). Each carries a description and an
 * example: editors show both, and the problem reporter uses the first example to write a fix.
 */

/** Names of routes, policies, issuers and tunnels: they appear in logs, metrics labels and audit events. */
export const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const nameMessage = "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit";

/** Same grammar as `parseDuration`; kept here too so the JSON Schema carries it as `pattern`. */
const durationPattern = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;

/**
 * Message of a duration written as something other than a string. The problem reporter recognises it to
 * suggest the quoted form (`30` → `"30s"`), since a bare number has no unit and would be a guess.
 */
export const durationTypeMessage = 'must be a duration string with a unit, such as "30s", "10m" or "1h30m"';

export function name(description: string, example: string) {
  return z
    .string()
    .regex(namePattern, { message: nameMessage })
    .describe(description)
    .meta({ examples: [example] });
}

export function duration(description: string, example: string, options: { positive?: boolean } = {}) {
  return (
    z
      .string({ error: (issue) => (issue.input === undefined ? undefined : durationTypeMessage) })
      .regex(durationPattern, { message: durationTypeMessage })
      // Unparsable text is reported by the pattern above; this only judges what it would parse to.
      .refine((text) => !options.positive || (parseDuration(text) ?? 1) > 0, {
        message: "must be longer than 0s",
      })
      .describe(description)
      .meta({ examples: [example] })
  );
}

export function policyList(description: string) {
  return z
    .array(name("A policy name (a key of `policies`).", "org-ci"))
    .describe(description)
    .meta({
      examples: [["org-ci"]],
    });
}

/** A problem found by a field-local check: the message and, when one is obvious, the fix. */
export interface FieldProblem {
  message: string;
  fix?: string;
}

export function withCheck<T extends z.ZodType<string>>(
  schema: T,
  check: (value: string) => FieldProblem | undefined,
): T {
  return schema.superRefine((value, ctx) => {
    const problem = check(value);
    if (problem) {
      ctx.addIssue({
        code: "custom",
        message: problem.message,
        ...(problem.fix === undefined ? {} : { params: { fix: problem.fix } }),
      });
    }
  }) as unknown as T;
}

/** An http(s) URL without credentials (they come from the environment). */
export function checkHttpUrl(value: string): FieldProblem | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { message: "must be an http(s) URL" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { message: "must be an http(s) URL" };
  if (url.username !== "" || url.password !== "") {
    return { message: "must not contain credentials", fix: "credentials come from the environment" };
  }
  return undefined;
}
