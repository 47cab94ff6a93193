import { expect } from "vitest";
import { parseScope } from "../../src/broker/scope.js";
import { compileScopePatterns } from "../../src/broker/scope-rules.js";
import type { Scope, ScopeRules } from "../../src/broker/types.js";

/** The parsed scope, or a test failure naming the problem. */
export function scopeOf(text: string): Scope {
  const parsed = parseScope(text);
  if (parsed.problem !== undefined) throw new Error(`${JSON.stringify(text)} was refused: ${parsed.problem}`);
  return parsed.scope;
}

/** Global scope lists from `allow` and `deny` entries, which must all compile. */
export function compileRules(allow: string[], deny: string[]): ScopeRules {
  const allowed = compileScopePatterns(allow, "allowed_scopes");
  const denied = compileScopePatterns(deny, "denied_scopes");
  expect([...allowed.problems, ...denied.problems]).toEqual([]);
  return {
    allow: allowed.patterns,
    deny: denied.patterns,
    allowOrigin: "allowed_scopes",
    denyOrigin: "denied_scopes",
  };
}
