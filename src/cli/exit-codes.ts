/** Exit codes shared by every command (documented in the README). */
export const exitCodes = {
  ok: 0,
  failure: 1,
  /** Bad configuration or bad usage. */
  badConfig: 2,
  /** `explain`: the decision is deny. */
  denied: 3,
} as const;

/** A mistake on the command line: printed without a stack, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
