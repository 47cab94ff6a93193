import { parseDuration } from "../lib/duration.js";
import { compileRateLimit, compileSingleUse } from "../limits/index.js";
import type { AccessRule } from "../policy/types.js";
import type { RawBroker } from "./broker-schema.js";
import { compileScopeTemplate, createGrant } from "./grants.js";
import { compileScopePatterns, splitScopeList } from "./scope-rules.js";
import type { CompiledBroker, CompiledGrant, ScopeListOrigin, ScopePattern } from "./types.js";

/** Defaults of the broker section. */
export const brokerDefaults = Object.freeze({
  authorization: "oidc",
  apiUrl: "https://api.github.com",
  timeoutMs: 10_000,
} as const);

/** A location in the configuration: keys and indices, or `["$NAME"]` for an environment variable. */
type Path = (string | number)[];

/** A problem found while compiling the broker section. */
export interface BrokerProblem {
  path: Path;
  message: string;
  fix?: string;
}

/** A risky-but-legal finding in the broker section. */
export interface BrokerWarning {
  id: string;
  path: Path;
  message: string;
}

/** What {@link compileBroker} needs besides the section itself. */
export interface CompileBrokerOptions {
  /** `GITHUB_API_URL`, `ALLOWED_SCOPES` and `DENIED_SCOPES` override the file, as in github-runner-token-proxy. */
  env: NodeJS.ProcessEnv;
  /** How many issuers are configured: `authorization: oidc` needs one. */
  issuerCount: number;
  /** The resolved `allow`/`deny` policies of `grants[index]` (the configuration compiler resolves names). */
  grantAccess(index: number): AccessRule;
  /** Whether the schema found nothing wrong at or under this path (parts it refused are not checked again). */
  clean(path: Path): boolean;
}

/**
 * Compiles the validated `broker` section into a {@link CompiledBroker}: environment overrides applied,
 * scope lists and grant scopes compiled, the API URL checked. Every problem is reported (with its path
 * and a fix) and the compiled section is returned only when there is none.
 *
 * @example
 * const { broker, problems, warnings } = compileBroker(raw.broker, { env, issuerCount: 1, grantAccess, clean });
 */
export function compileBroker(
  raw: RawBroker,
  options: CompileBrokerOptions,
): { broker?: CompiledBroker; problems: BrokerProblem[]; warnings: BrokerWarning[] } {
  const { env, clean } = options;
  const problems: BrokerProblem[] = [];
  const warnings: BrokerWarning[] = [];
  const authorization = raw.authorization === "none" ? "none" : brokerDefaults.authorization;

  if (authorization === "oidc" && options.issuerCount === 0 && clean(["broker", "authorization"])) {
    problems.push({
      path: ["broker", "authorization"],
      message: "authorization: oidc (the default) needs at least one issuer to verify callers' tokens",
      fix: "add issuers: [{ name: github, preset: github, audiences: [...] }], or write authorization: none behind a platform that authorizes callers",
    });
  }

  const apiUrl = compileApiUrl(raw, env, clean(["broker", "github"]), problems);
  const timeoutMs =
    raw.github?.timeout === undefined || !clean(["broker", "github", "timeout"])
      ? brokerDefaults.timeoutMs
      : (parseDuration(raw.github.timeout) ?? brokerDefaults.timeoutMs);

  const allow = compileList(
    raw.allowed_scopes,
    env.ALLOWED_SCOPES,
    "allowed_scopes",
    "ALLOWED_SCOPES",
    options,
    problems,
    warnings,
  );
  const deny = compileList(
    raw.denied_scopes,
    env.DENIED_SCOPES,
    "denied_scopes",
    "DENIED_SCOPES",
    options,
    problems,
    warnings,
  );
  const grants: CompiledGrant[] = [];
  (Array.isArray(raw.grants) ? raw.grants : []).forEach((grant, index) => {
    const path = ["broker", "grants", index];
    if (!clean(path)) return;
    const templates = grant.scopes.flatMap((source, scopeIndex) => {
      const compiled = compileScopeTemplate(source);
      if (compiled.template !== undefined) return [compiled.template];
      problems.push({
        path: [...path, "scopes", scopeIndex],
        message: compiled.problem ?? "invalid scope",
        ...(compiled.fix === undefined ? {} : { fix: compiled.fix }),
      });
      return [];
    });
    const singleUse = compileSingleUse(grant.single_use);
    grants.push(
      createGrant(index, options.grantAccess(index), grant.actions, templates, {
        ...(grant.rate_limit === undefined
          ? {}
          : { rateLimit: compileRateLimit(grant.rate_limit, `grant:${index}`) }),
        ...(singleUse === undefined ? {} : { singleUse }),
      }),
    );
  });

  if (problems.length > 0) return { problems, warnings };
  return {
    broker: {
      authorization,
      apiUrl,
      timeoutMs,
      scopes: {
        allow: allow.patterns,
        deny: deny.patterns,
        allowOrigin: allow.origin,
        denyOrigin: deny.origin,
      },
      grants: authorization === "oidc" ? grants : [],
    },
    problems,
    warnings,
  };
}

function compileList(
  fromFile: readonly string[] | undefined,
  fromEnv: string | undefined,
  fileKey: "allowed_scopes" | "denied_scopes",
  envName: "ALLOWED_SCOPES" | "DENIED_SCOPES",
  options: CompileBrokerOptions,
  problems: BrokerProblem[],
  warnings: BrokerWarning[],
): { patterns: ScopePattern[]; origin: ScopeListOrigin; clean: boolean } {
  // An empty variable counts as unset, as in github-runner-token-proxy.
  const envText = fromEnv?.trim();
  const useEnv = envText !== undefined && envText !== "";
  const origin: ScopeListOrigin = useEnv ? envName : fileKey;
  if (!useEnv && !options.clean(["broker", fileKey])) return { patterns: [], origin, clean: false };
  const entries = useEnv ? splitScopeList(envText) : [...(fromFile ?? [])];
  if (useEnv && fromFile !== undefined) {
    warnings.push({
      id: "broker-scopes-from-environment",
      path: ["broker", fileKey],
      message: `${envName} is set and replaces broker.${fileKey}; unset ${envName} to use the file's list`,
    });
  }
  const pathOf = (index: number): Path => (useEnv ? [`$${envName}`] : ["broker", fileKey, index]);
  const compiled = compileScopePatterns(entries, origin);
  for (const problem of compiled.problems) {
    problems.push({
      path: pathOf(problem.index),
      message: problem.message,
      ...(problem.fix === undefined ? {} : { fix: problem.fix }),
    });
  }
  for (const warning of compiled.warnings) {
    warnings.push({ id: warning.id, path: pathOf(warning.index), message: warning.message });
  }
  return { patterns: compiled.patterns, origin, clean: true };
}

/**
 * The GitHub API base URL: `GITHUB_API_URL` over `broker.github.api_url` over api.github.com. Plain
 * http is accepted only for loopback hosts (a local API double, a sidecar): anywhere else the
 * credential would cross the network in the clear.
 */
function compileApiUrl(
  raw: RawBroker,
  env: NodeJS.ProcessEnv,
  fileClean: boolean,
  problems: BrokerProblem[],
): string {
  const envText = env.GITHUB_API_URL?.trim();
  const fromEnv = envText !== undefined && envText !== "";
  if (!fromEnv && !fileClean) return brokerDefaults.apiUrl;
  const text = fromEnv ? envText : (raw.github?.api_url ?? brokerDefaults.apiUrl);
  const path: Path = fromEnv ? ["$GITHUB_API_URL"] : ["broker", "github", "api_url"];
  const problem = checkApiUrl(text);
  if (problem !== undefined) {
    problems.push({
      path,
      message: `${fromEnv ? "GITHUB_API_URL" : "api_url"} ${problem}`,
      fix: "write https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server",
    });
    return brokerDefaults.apiUrl;
  }
  return text.replace(/\/+$/, "");
}

const loopbackHosts = new Set(["127.0.0.1", "[::1]", "localhost"]);

/** Why a GitHub API URL is unusable, or `undefined`. Never repeats the URL: it could hold a password. */
export function checkApiUrl(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "must be an https URL";
  }
  if (url.username !== "" || url.password !== "") return "must not contain credentials";
  if (url.search !== "" || url.hash !== "" || text.includes("?") || text.includes("#")) {
    return "must not have a query or fragment";
  }
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && loopbackHosts.has(url.hostname)) return undefined;
  if (url.protocol === "http:") return "must use https (plain http only for loopback hosts)";
  return "must be an https URL";
}
