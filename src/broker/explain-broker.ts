import type { CallerIdentity } from "../policy/types.js";
import { evaluateGrants, traceGrants } from "./grants.js";
import { parseScope } from "./scope.js";
import { evaluateScopeRules } from "./scope-rules.js";
import type {
  BrokerAction,
  CompiledBroker,
  GrantDecision,
  GrantTrace,
  Scope,
  ScopeDecision,
} from "./types.js";

/** Everything the broker would decide for one request, for `tollgate explain --broker ACTION:SCOPE`. */
export interface BrokerExplanation {
  readonly action: BrokerAction;
  readonly authorization: CompiledBroker["authorization"];
  /** Set when the scope is refused before any rule (400). */
  readonly scopeProblem?: string;
  readonly scope?: Scope;
  readonly scopeDecision?: ScopeDecision;
  /** With `authorization: oidc`: every grant's view, and the decision. */
  readonly grants?: readonly GrantTrace[];
  readonly grantDecision?: GrantDecision;
  readonly allowed: boolean;
}

/** The actions `explain --broker` accepts before the colon. */
export const brokerActionNames: readonly BrokerAction[] = ["register", "remove", "jitconfig"];

/**
 * Runs the broker's decision steps — scope validation, the global scope lists, the grants — exactly as
 * the live broker does, keeping every intermediate result. Pure: no GitHub call.
 *
 * @example
 * const explanation = explainBrokerRequest(config.compiledBroker!, "register", "octo-org/octo-repo", identity);
 */
export function explainBrokerRequest(
  broker: CompiledBroker,
  action: BrokerAction,
  scopeText: string,
  identity: CallerIdentity,
): BrokerExplanation {
  const base = { action, authorization: broker.authorization };
  const parsed = parseScope(scopeText);
  if (parsed.problem !== undefined) return { ...base, scopeProblem: parsed.problem, allowed: false };
  const scope = parsed.scope;
  const scopeDecision = evaluateScopeRules(broker.scopes, scope);
  if (broker.authorization === "none")
    return { ...base, scope, scopeDecision, allowed: scopeDecision.allowed };
  const grantDecision = evaluateGrants(broker.grants, action, scope, identity);
  return {
    ...base,
    scope,
    scopeDecision,
    grants: traceGrants(broker.grants, action, scope, identity),
    grantDecision,
    allowed: scopeDecision.allowed && grantDecision.allowed,
  };
}
