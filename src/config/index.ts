/**
 * Configuration: `tollgate.yaml` parsed, validated against the one zod schema (which is also published as
 * JSON Schema), compiled into a frozen {@link CompiledConfig}, with every problem reported at once.
 */
export { configDefaults } from "./compile-config.js";
export { formatPath, parsePath } from "./config-path.js";
export { formatProblems, formatWarnings } from "./format-problems.js";
export { configJsonSchema, configSchemaId, renderJsonSchema } from "./json-schema.js";
export {
  type CompileTextOptions,
  type ConfigResult,
  compileConfigText,
  loadConfigFile,
} from "./load-config.js";
export {
  brokerActions,
  configSchema,
  matcherSchema,
  type RawBroker,
  type RawConfig,
  type RawIssuer,
  type RawRoute,
  type RawTunnel,
  routeMethods,
} from "./schema.js";
export type { CompiledConfig, CompiledRoute, ConfigProblem, ConfigWarning } from "./types.js";
