/**
 * The trust policy: matchers compiled once, policies evaluated purely with a reason per condition, and
 * the `tollgate check` warnings. No I/O.
 */
export { compilePolicy } from "./compile-policy.js";
export { decide, evaluateAccess } from "./evaluate-access.js";
export { globToRe2 } from "./glob.js";
export {
  type CompiledMatcher,
  compileMatcher,
  describeMatcher,
  type MatcherNode,
  type ValueTest,
} from "./matchers.js";
export { numericOwnerClaims, ownerClaims } from "./owner-pinning.js";
export type {
  AccessRule,
  CallerIdentity,
  CompiledPolicy,
  ConditionTrace,
  Decision,
  DecisionSummary,
  PolicyProblem,
  PolicyTrace,
  PolicyWarning,
  RawMatcher,
  RawPolicy,
} from "./types.js";
export { policyWarnings } from "./warnings.js";
