import fc from "fast-check";

/**
 * Settings for every property test in the suite: one fixed seed, so CI explores the same inputs on every
 * run and a failure is reproducible from its log, and a number of runs large enough that each property
 * found its defect class on the code before the fix (docs/security.md). `TOLLGATE_PROPERTY_SEED` (a
 * number) explores other inputs locally; `TOLLGATE_PROPERTY_RUNS_SCALE` scales every property's run count.
 *
 * @example
 * fc.assert(fc.property(fc.string(), (text) => …), propertySettings(5_000));
 */
export function propertySettings<Ts = unknown>(numRuns: number): fc.Parameters<Ts> {
  const scale = Number(process.env.TOLLGATE_PROPERTY_RUNS_SCALE ?? "1");
  return {
    seed: Number(process.env.TOLLGATE_PROPERTY_SEED ?? "20261206"),
    numRuns: Math.max(1, Math.round(numRuns * (Number.isFinite(scale) && scale > 0 ? scale : 1))),
    // A shrunk counterexample is what a reader needs; the default path of runs tried is noise.
    verbose: fc.VerbosityLevel.None,
  };
}
