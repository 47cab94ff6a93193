import type { Decision, PolicyTrace } from "../policy/types.js";

/**
 * Renders a policy decision condition by condition, for `tollgate explain`. It renders the same
 * {@link Decision} object the gateway audits, so the two cannot disagree.
 */
export function renderDecision(subject: string, decision: Decision): string {
  const verdict = decision.allow ? "ALLOW" : "DENY";
  const by = decision.policy === undefined ? "" : ` (policy ${decision.policy})`;
  const lines = [`${subject}: ${verdict} — ${decision.reason}${by}`];
  if (decision.traces.deny.length > 0) {
    lines.push("  deny policies (any match refuses):");
    for (const trace of decision.traces.deny) lines.push(...renderTrace(trace));
  }
  lines.push("  allow policies (any match admits):");
  if (decision.traces.allow.length === 0) lines.push("    (none evaluated)");
  for (const trace of decision.traces.allow) lines.push(...renderTrace(trace));
  return lines.join("\n");
}

function renderTrace(trace: PolicyTrace): string[] {
  const head = `    ${trace.policy}: ${trace.matched ? "matches" : "does not match"}`;
  if (!trace.issuerOk) return [`${head} — token is from another issuer than this policy's`];
  const width = Math.max(...trace.conditions.map((condition) => condition.claim.length), 5);
  return [
    head,
    ...trace.conditions.map((condition) => {
      const mark = condition.ok ? "✓" : "✗";
      const found = condition.found === undefined ? "(missing)" : condition.found;
      return `      ${mark} ${condition.claim.padEnd(width)}  expected ${condition.expected}  found ${found}  [${condition.reason}]`;
    }),
  ];
}
