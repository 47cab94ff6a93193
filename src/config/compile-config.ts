import { auditDefaults } from "../audit/types.js";
import { type CompiledBroker, compileBroker } from "../broker/index.js";
import { compileConnectorPool } from "../connector/connector-schema.js";
import { compileForwardAuth } from "../forward-auth/index.js";
import { parseDuration } from "../lib/duration.js";
import {
  clientIpKey,
  compileAuthFailures,
  compileRateLimit,
  compileSingleUse,
  knownClaimNames,
} from "../limits/index.js";
import {
  checkIssuerUrl,
  checkKeySetUrl,
  defaultAlgorithms,
  defaultClockSkewMs,
  defaultVerifierSettings,
  expandIssuerPreset,
  type IssuerSettings,
  issuerPresetForms,
  type VerifierSettings,
  validateAlgorithms,
} from "../oidc/index.js";
import { type AccessRule, type CompiledPolicy, compilePolicy, policyWarnings } from "../policy/index.js";
import { compileRouteWebSocket } from "../proxy/websocket-schema.js";
import { compileTunnel } from "../tunnel/tunnel-schema.js";
import { formatPath, type PathSegments, parsePath } from "./config-path.js";
import { deepFreeze } from "./deep-freeze.js";
import type { RawConfig, RawIssuer, RawRoute } from "./schema.js";
import { closestMatch } from "./suggest.js";
import type { CompiledConfig, CompiledRoute, ConfigWarning } from "./types.js";
import type { Finding } from "./zod-issues.js";

/**
 * Defaults of everything optional that `config/` itself owns (the verifier's come from `oidc/`, the
 * tunnels' from `tunnel/`, the audit log's batching from `audit/`).
 */
export const configDefaults = Object.freeze({
  listenHost: "0.0.0.0",
  listenPort: 8080,
  routeTimeoutMs: 30_000,
  stripPrefix: false,
  authHeader: "gateway-authorization",
  auditSink: "stdout",
  storeKind: "memory",
  maxHeaderBytes: 16_384,
  shutdownGraceMs: 10_000,
  trustProxy: false,
  metrics: true,
} as const);

/** A warning before its line is looked up. */
interface PendingWarning {
  id: string;
  path: (string | number)[];
  message: string;
}

/** What {@link compileValidated} found and, when nothing was wrong, built. */
export interface CompileOutcome {
  config?: CompiledConfig;
  findings: Finding[];
  warnings: ConfigWarning[];
}

/**
 * The semantic half of configuration checking, and the compilation. `data` is the parsed YAML;
 * `schemaFindings` are the schema's problems with it. Parts the schema already found wrong are skipped
 * (their problems are reported; checking them further would only add noise), every other part is checked
 * — issuer URLs and presets, policy compilation, references between sections, deny-by-default
 * reachability, environment overrides — and the frozen {@link CompiledConfig} is built only when there is
 * no problem at all.
 */
export function compileValidated(
  data: unknown,
  schemaFindings: readonly Finding[],
  env: NodeJS.ProcessEnv,
  lineOf: (path: PathSegments) => number | undefined,
): CompileOutcome {
  const findings: Finding[] = [];
  const warnings: PendingWarning[] = [];
  const clean = (path: PathSegments) => !schemaFindings.some((finding) => startsWith(finding.path, path));
  const raw = (isPlainObject(data) ? data : {}) as RawConfig;

  const issuers = checkIssuers(raw, clean, findings);
  const issuerNames = [
    ...new Set(
      listOf(raw.issuers).flatMap((issuer) => (typeof issuer?.name === "string" ? [issuer.name] : [])),
    ),
  ];

  // A policy used only to refuse (in `deny` lists) narrows access: it need not pin an owner, and it is
  // meant to match risky events, so it gets no event warning either.
  const allowed = referencedPolicies(raw, "allow");
  const denied = referencedPolicies(raw, "deny");
  const isDenyOnly = (name: string) => denied.has(name) && !allowed.has(name);
  const policies = new Map<string, CompiledPolicy>();
  const policyNames = isPlainObject(raw.policies) ? Object.keys(raw.policies) : [];
  for (const name of policyNames) {
    const policyRaw = raw.policies![name]!;
    if (!compilable(policyRaw, ["policies", name], schemaFindings)) continue;
    const result = compilePolicy(name, policyRaw, issuerNames, { denyOnly: isDenyOnly(name) });
    for (const problem of result.problems)
      findings.push({ path: parsePath(problem.path), message: problem.message });
    if (result.policy === undefined) continue;
    policies.set(name, result.policy);
  }
  for (const name of policies.keys()) {
    for (const warning of policyWarnings(name, raw.policies![name]!, { deniesOnly: isDenyOnly(name) })) {
      warnings.push({ id: warning.id, path: parsePath(warning.path), message: warning.message });
    }
  }

  const access = (path: (string | number)[], rule: { allow?: unknown; deny?: unknown }, what: string) =>
    checkAccess(path, rule, what, policyNames, policies, clean, findings);

  const routes = checkRoutes(raw, clean, access, findings);
  checkUniqueNames(raw.tunnels, ["tunnels"], "tunnel", clean, findings);
  const tunnelAccess = listOf(raw.tunnels).map((tunnel, index) =>
    isPlainObject(tunnel) ? access(["tunnels", index], tunnel, "tunnel") : undefined,
  );
  const compiledBroker = checkBroker(raw, clean, access, findings, warnings, env, issuers.length);
  checkStore(raw, clean, findings);
  const connectorAccess = checkConnectors(raw, clean, access, findings);
  checkLimits(raw, clean, findings, warnings);
  const listen = listenWithEnv(raw, env, findings);

  const located = warnings.map(({ id, path, message }): ConfigWarning => {
    const line = lineOf(path);
    return { id, path: formatPath(path), message, ...(line === undefined ? {} : { line }) };
  });
  if (schemaFindings.length > 0 || findings.length > 0) return { findings, warnings: located };

  const verifier: VerifierSettings = {
    maxTokenBytes: raw.oidc?.max_token_bytes ?? defaultVerifierSettings.maxTokenBytes,
    maxDocumentBytes: raw.oidc?.max_document_bytes ?? defaultVerifierSettings.maxDocumentBytes,
    fetchTimeoutMs: durationOr(raw.oidc?.fetch_timeout, defaultVerifierSettings.fetchTimeoutMs),
    unknownKidCooldownMs: durationOr(
      raw.oidc?.unknown_kid_cooldown,
      defaultVerifierSettings.unknownKidCooldownMs,
    ),
    refreshIntervalMs: durationOr(raw.oidc?.refresh_interval, defaultVerifierSettings.refreshIntervalMs),
    staleKeysMaxAgeMs: durationOr(raw.oidc?.stale_keys_max_age, defaultVerifierSettings.staleKeysMaxAgeMs),
    tokenCacheSize: raw.oidc?.token_cache_size ?? defaultVerifierSettings.tokenCacheSize,
  };
  const config: CompiledConfig = {
    listen,
    issuers,
    verifier,
    policies,
    routes: routes.map((route) => route()),
    compiledTunnels: listOf(raw.tunnels).map((tunnel, index) => compileTunnel(tunnel, tunnelAccess[index]!)),
    ...(compiledBroker === undefined ? {} : { compiledBroker }),
    connectors: listOf(raw.connectors).map((pool, index) =>
      compileConnectorPool(pool, connectorAccess[index]),
    ),
    audit: {
      sink: raw.audit?.sink ?? configDefaults.auditSink,
      flushIntervalMs: durationOr(raw.audit?.flush_interval, auditDefaults.flushIntervalMs),
      denials: {
        windowMs: durationOr(raw.audit?.denials?.window, auditDefaults.denialWindowMs),
        maxSources: raw.audit?.denials?.max_sources ?? auditDefaults.denialMaxSources,
      },
    },
    store: {
      kind: raw.store?.kind ?? configDefaults.storeKind,
      ...(raw.store?.url === undefined ? {} : { url: raw.store.url }),
    },
    ...(raw.listen?.auth_failures === undefined
      ? {}
      : { authFailures: compileAuthFailures(raw.listen.auth_failures) }),
    server: {
      maxHeaderBytes: raw.server?.max_header_bytes ?? configDefaults.maxHeaderBytes,
      shutdownGraceMs: durationOr(raw.server?.shutdown_grace, configDefaults.shutdownGraceMs),
      trustProxy: raw.server?.trust_proxy ?? configDefaults.trustProxy,
      metrics: raw.server?.metrics ?? configDefaults.metrics,
      ...(raw.server?.forward_auth === undefined
        ? {}
        : { forwardAuth: compileForwardAuth(raw.server.forward_auth) }),
    },
    warnings: located.map((warning) => ({ ...warning })),
  };
  return { config: deepFreeze(config), findings, warnings: located };
}

type Clean = (path: PathSegments) => boolean;
type CheckAccess = (
  path: (string | number)[],
  rule: { allow?: unknown; deny?: unknown },
  what: string,
) => AccessRule;

function checkIssuers(raw: RawConfig, clean: Clean, findings: Finding[]): IssuerSettings[] {
  const settings: IssuerSettings[] = [];
  checkUniqueNames(raw.issuers, ["issuers"], "issuer", clean, findings);
  const seenUrls = new Map<string, number>();
  listOf(raw.issuers).forEach((issuer, index) => {
    const path = ["issuers", index];
    if (!isPlainObject(issuer)) return;
    // Each field is checked on its own when the schema found it well-formed, so that one bad field does
    // not hide the problems of its neighbours.
    const field = <K extends keyof RawIssuer>(key: K): RawIssuer[K] | undefined =>
      clean([...path, key]) ? issuer[key] : undefined;
    const issuerText = field("issuer");
    const preset = field("preset");
    let url: string | undefined;
    const urlKey = preset === undefined ? "issuer" : "preset";
    if (issuerText !== undefined && preset !== undefined) {
      findings.push({
        path: [...path, "preset"],
        message: "give either issuer or preset, not both",
        fix: "remove preset (issuer is the exact iss) or remove issuer",
      });
    } else if (preset !== undefined) {
      url = expandIssuerPreset(preset);
      if (url === undefined) {
        findings.push({
          path: [...path, "preset"],
          message: `unknown preset ${JSON.stringify(preset)}; presets are ${issuerPresetForms.join(", ")}`,
          fix: "write preset: github",
        });
      }
    } else if (issuerText !== undefined) {
      url = issuerText;
    } else if (clean([...path, "issuer"]) && clean([...path, "preset"])) {
      findings.push({
        path,
        message: "an issuer needs issuer (the exact iss URL of its tokens) or preset",
        fix: "add preset: github (GitHub Actions on github.com)",
      });
    }
    if (url !== undefined) {
      const problem = checkIssuerUrl(url);
      if (problem !== undefined) {
        findings.push({ path: [...path, urlKey], message: problem });
        url = undefined;
      }
    }
    if (url !== undefined) {
      const earlier = seenUrls.get(url);
      if (earlier !== undefined) {
        findings.push({
          path: [...path, urlKey],
          message: `the same issuer URL is already configured as issuers[${earlier}]; a token could not tell them apart`,
          fix: "merge the two entries (list all audiences in one)",
        });
      }
      seenUrls.set(url, index);
    }
    const jwksUri = field("jwks_uri");
    if (jwksUri !== undefined) {
      const problem = checkKeySetUrl(jwksUri);
      if (problem !== undefined) findings.push({ path: [...path, "jwks_uri"], message: problem });
    }
    const algorithms = field("algorithms");
    if (algorithms !== undefined) {
      const problem = validateAlgorithms(algorithms);
      if (problem !== undefined) {
        findings.push({ path: [...path, "algorithms"], message: problem, fix: "write algorithms: [RS256]" });
      }
    }
    if (url === undefined || !clean(path)) return;
    settings.push({
      name: issuer.name,
      issuer: url,
      audiences: [...issuer.audiences],
      ...(issuer.jwks_uri === undefined ? {} : { jwksUri: issuer.jwks_uri }),
      algorithms: [...(issuer.algorithms ?? defaultAlgorithms)],
      clockSkewMs: durationOr(issuer.clock_skew, defaultClockSkewMs),
      ...(issuer.max_token_age === undefined ? {} : { maxTokenAgeMs: durationOr(issuer.max_token_age, 0) }),
    });
  });
  return settings;
}

function checkRoutes(
  raw: RawConfig,
  clean: Clean,
  access: CheckAccess,
  findings: Finding[],
): (() => CompiledRoute)[] {
  checkUniqueNames(raw.routes, ["routes"], "route", clean, findings);
  const seenPrefixes = new Map<string, number>();
  const forwardAuthPath =
    raw.server?.forward_auth === undefined ? undefined : compileForwardAuth(raw.server.forward_auth).path;
  const builders: (() => CompiledRoute)[] = [];
  listOf(raw.routes).forEach((route, index) => {
    const path = ["routes", index];
    if (!isPlainObject(route)) return;
    const rule = access(path, route, "route");
    const host = typeof route.host === "string" ? route.host.toLowerCase() : undefined;
    if (clean([...path, "host"]) && clean([...path, "path_prefix"])) {
      const where = `${host ?? "*"} ${route.path_prefix}`;
      const earlier = seenPrefixes.get(where);
      if (earlier !== undefined) {
        findings.push({
          path: [...path, "path_prefix"],
          message: `routes[${earlier}] already has this path_prefix${host === undefined ? "" : " and host"}; one of them could never be reached`,
          fix: "change the path_prefix or merge the routes",
        });
      }
      seenPrefixes.set(where, index);
      checkReservedPrefix(route.path_prefix, forwardAuthPath, [...path, "path_prefix"], findings);
    }
    checkRouteMode(route, path, clean, findings);
    builders.push(() => compileRoute(route, host, rule));
  });
  return builders;
}

/** Paths the gateway answers itself (`/_tollgate/whoami`, the default forward-auth path): never routed. */
const reservedPrefix = "/_tollgate/";

/**
 * A route whose requests the gateway would answer itself can never be reached: its prefix under
 * `/_tollgate/`, or at or below `server.forward_auth.path` (the endpoint claims that path and everything
 * below it, for Envoy). Features are asked before routes, so such a route would be silently shadowed.
 */
function checkReservedPrefix(
  prefix: string,
  endpoint: string | undefined,
  path: (string | number)[],
  findings: Finding[],
): void {
  const lower = prefix.toLowerCase();
  if (lower.startsWith(reservedPrefix) || lower === reservedPrefix.slice(0, -1)) {
    findings.push({
      path,
      message: `paths under ${reservedPrefix} are the gateway's own (${reservedPrefix}whoami, the forward-auth endpoint): a route there would never be reached`,
      fix: "choose a path_prefix outside /_tollgate/",
    });
    return;
  }
  if (endpoint !== undefined && (prefix === endpoint || prefix.startsWith(`${endpoint}/`))) {
    findings.push({
      path,
      message: `server.forward_auth.path is ${endpoint}: the forward-auth endpoint answers that path and everything below it, so this route would never be reached`,
      fix: "choose another path_prefix, or another server.forward_auth.path",
    });
  }
}

function compileRoute(route: RawRoute, host: string | undefined, access: AccessRule): CompiledRoute {
  const common = {
    name: route.name,
    pathPrefix: route.path_prefix,
    ...(host === undefined ? {} : { host }),
    ...(route.methods === undefined ? {} : { methods: new Set(route.methods) }),
    forwardClaims: [...new Set(route.forward_claims ?? [])],
    authHeader: route.auth_header ?? configDefaults.authHeader,
    access,
    ...(route.rate_limit === undefined
      ? {}
      : { rateLimit: compileRateLimit(route.rate_limit, `route:${route.name}`) }),
    ...(route.single_use === undefined || route.single_use === false
      ? {}
      : { singleUse: compileSingleUse(route.single_use) }),
  };
  if (route.mode === "forward_auth") return { ...common, mode: "forward_auth" };
  return {
    ...common,
    mode: "proxy",
    // checkRouteMode reported a proxy route without one.
    upstream: new URL(route.upstream!),
    stripPrefix: route.strip_prefix ?? configDefaults.stripPrefix,
    timeoutMs: durationOr(route.timeout, configDefaults.routeTimeoutMs),
    ...(route.via === undefined ? {} : { via: route.via }),
    websocket: compileRouteWebSocket(route.websocket),
  };
}

/**
 * A proxy route needs its upstream; a forward_auth route has none, nor any of the fields that only say how
 * tollgate reaches an upstream (the ingress does that).
 */
function checkRouteMode(route: RawRoute, path: (string | number)[], clean: Clean, findings: Finding[]): void {
  if (route.mode === "forward_auth") {
    for (const field of ["upstream", "strip_prefix", "timeout", "via", "websocket"] as const) {
      if (route[field] === undefined || !clean([...path, field])) continue;
      findings.push({
        path: [...path, field],
        message: `route "${route.name}" is mode: forward_auth: the ingress in front reaches the upstream, so ${field} has no meaning here`,
        fix: `remove ${field}, or write mode: proxy to have tollgate forward the requests`,
      });
    }
    return;
  }
  if (route.upstream === undefined && clean([...path, "upstream"]) && clean([...path, "mode"])) {
    findings.push({
      path: [...path, "upstream"],
      message: `route "${route.name}" is mode: proxy (the default) and has no upstream to forward to`,
      fix: "write upstream: http://host:port, or mode: forward_auth when an ingress in front asks server.forward_auth and proxies the requests itself",
    });
  }
}

/**
 * Checks an `allow`/`deny` pair and resolves it to compiled policies. An empty `allow` is an error, not a
 * silent lock-out: with deny by default nobody could ever use the resource, which is never what was meant.
 */
function checkAccess(
  path: (string | number)[],
  rule: { allow?: unknown; deny?: unknown },
  what: string,
  policyNames: readonly string[],
  policies: ReadonlyMap<string, CompiledPolicy>,
  clean: Clean,
  findings: Finding[],
): AccessRule {
  const resolved: AccessRule = { allow: [], deny: [] };
  for (const list of ["allow", "deny"] as const) {
    const names = rule[list];
    if (!Array.isArray(names) || !clean([...path, list])) continue;
    if (list === "allow" && names.length === 0) {
      findings.push({
        path: [...path, "allow"],
        message: `is empty: nothing is allowed by default, so no caller could ever use this ${what}`,
        fix: `list the policies that may use it, e.g. allow: [${policyNames[0] ?? "<policy name>"}]`,
      });
    }
    names.forEach((name: string, index) => {
      const policy = policies.get(name);
      if (policy !== undefined) {
        (resolved[list] as CompiledPolicy[]).push(policy);
        return;
      }
      if (policyNames.includes(name)) return; // defined but broken: its own problems are reported
      const suggestion = closestMatch(name, policyNames);
      findings.push({
        path: [...path, list, index],
        message: `unknown policy "${name}"${suggestion === undefined ? "" : ` (did you mean "${suggestion}"?)`}`,
        fix:
          suggestion !== undefined
            ? `write ${suggestion}`
            : policyNames.length > 0
              ? `use one of: ${policyNames.join(", ")}`
              : "define it under policies:",
      });
    });
  }
  return resolved;
}

/**
 * Resolves the grants' policies, compiles the section with the broker's own compiler (scope lists, grant
 * scopes, API URL, with GITHUB_API_URL / ALLOWED_SCOPES / DENIED_SCOPES applied) and adds the warnings
 * about authorization. Returns the compiled section when it has no problem.
 */
function checkBroker(
  raw: RawConfig,
  clean: Clean,
  access: CheckAccess,
  findings: Finding[],
  warnings: PendingWarning[],
  env: NodeJS.ProcessEnv,
  issuerCount: number,
): CompiledBroker | undefined {
  const broker = raw.broker;
  if (broker === undefined || !isPlainObject(broker)) return undefined;
  const grants = Array.isArray(broker.grants) ? broker.grants : [];
  const grantAccess = grants.map((grant, index) =>
    isPlainObject(grant) ? access(["broker", "grants", index], grant, "grant") : { allow: [], deny: [] },
  );
  const compiled = compileBroker(broker, {
    env,
    issuerCount,
    clean,
    grantAccess: (index) => grantAccess[index] ?? { allow: [], deny: [] },
  });
  findings.push(...compiled.problems);
  warnings.push(...compiled.warnings);
  addBrokerAuthorizationWarnings(broker, grants, clean, warnings);
  return compiled.broker;
}

function addBrokerAuthorizationWarnings(
  broker: NonNullable<RawConfig["broker"]>,
  grants: readonly unknown[],
  clean: Clean,
  warnings: PendingWarning[],
): void {
  if (!clean(["broker", "authorization"])) return;
  if (broker.authorization === "none") {
    warnings.push({
      id: "broker-authorization-none",
      path: ["broker", "authorization"],
      message:
        "the broker mints runner tokens for every request that reaches it; use this only behind a platform that authorizes callers itself",
    });
    if (grants.length > 0) {
      warnings.push({
        id: "broker-grants-ignored",
        path: ["broker", "grants"],
        message: "grants are not used with authorization: none; remove them or write authorization: oidc",
      });
    }
  } else if (grants.length === 0 && clean(["broker", "grants"])) {
    warnings.push({
      id: "broker-no-grants",
      path: ["broker"],
      message: "no grant is configured, so no caller may use the broker; add broker.grants",
    });
  }
}

function checkStore(raw: RawConfig, clean: Clean, findings: Finding[]): void {
  const store = raw.store;
  if (store === undefined || !clean(["store"])) return;
  if (store.kind === "redis" && store.url === undefined) {
    findings.push({
      path: ["store", "url"],
      message: "is required with kind: redis",
      fix: "add url: redis://127.0.0.1:6379",
    });
  }
  if (store.kind !== "redis" && store.url !== undefined) {
    findings.push({
      path: ["store", "url"],
      message: "is used only with kind: redis",
      fix: "write kind: redis, or remove url",
    });
  }
}

/**
 * Pool names are unique, every `via` names a pool, and every pool admits connectors somehow: by a key
 * (`public_keys`) or by an OIDC token its policies allow (`allow`). Returns each pool's token access
 * (undefined for a pool without `allow`).
 */
function checkConnectors(
  raw: RawConfig,
  clean: Clean,
  access: CheckAccess,
  findings: Finding[],
): (AccessRule | undefined)[] {
  checkUniqueNames(raw.connectors, ["connectors"], "connector pool", clean, findings);
  const tokenAccess = listOf(raw.connectors).map((pool, index) => {
    if (!isPlainObject(pool)) return undefined;
    if (pool.public_keys === undefined && pool.allow === undefined && clean(["connectors", index])) {
      findings.push({
        path: ["connectors", index],
        message: `connector pool "${pool.name}" admits no connector: it has neither public_keys nor allow`,
        fix: "list the connectors' keys under public_keys (tollgate connector keygen), or the policies their OIDC tokens must meet under allow",
      });
    }
    return pool.allow === undefined && pool.deny === undefined
      ? undefined
      : access(["connectors", index], pool, "connector pool");
  });
  const pools = listOf(raw.connectors).flatMap((pool) => (isPlainObject(pool) ? [pool.name] : []));
  const check = (section: "routes" | "tunnels", index: number, via: string | undefined) => {
    if (via === undefined || !clean([section, index, "via"]) || pools.includes(via)) return;
    const suggestion = closestMatch(via, pools);
    findings.push({
      path: [section, index, "via"],
      message: `no connector pool is named "${via}"`,
      fix: suggestion === undefined ? "add it under connectors:" : `via: ${suggestion}`,
    });
  };
  listOf(raw.routes).forEach((route, index) => {
    if (isPlainObject(route)) check("routes", index, route.via);
  });
  listOf(raw.tunnels).forEach((tunnel, index) => {
    if (isPlainObject(tunnel)) check("tunnels", index, tunnel.via);
  });
  return tokenAccess;
}

/**
 * Rate-limit keys and addresses: a `key` must be a claim the caller's token will carry — one a policy of
 * the limited resource names, or a claim GitHub Actions tokens always have — else every caller would share
 * the one allowance of "no value". `client_ip` (and `listen.auth_failures`, which counts per address) is
 * the load balancer's address for every caller unless `server.trust_proxy` reads X-Forwarded-For.
 */
function checkLimits(raw: RawConfig, clean: Clean, findings: Finding[], warnings: PendingWarning[]): void {
  const pinnedBy = (allow: unknown): Set<string> => {
    const pinned = new Set<string>();
    for (const name of Array.isArray(allow) ? allow : []) {
      const claims = raw.policies?.[name as string]?.claims;
      if (claims !== undefined) for (const claim of Object.keys(claims)) pinned.add(claim);
    }
    return pinned;
  };
  const limited: { path: (string | number)[]; key: string; allow: unknown }[] = [];
  listOf(raw.routes).forEach((route, index) => {
    if (isPlainObject(route) && route.rate_limit !== undefined)
      limited.push({ path: ["routes", index, "rate_limit"], key: route.rate_limit.key, allow: route.allow });
  });
  listOf(raw.tunnels).forEach((tunnel, index) => {
    if (isPlainObject(tunnel) && tunnel.rate_limit !== undefined)
      limited.push({
        path: ["tunnels", index, "rate_limit"],
        key: tunnel.rate_limit.key,
        allow: tunnel.allow,
      });
    if (isPlainObject(tunnel) && tunnel.concurrency !== undefined)
      limited.push({
        path: ["tunnels", index, "concurrency"],
        key: tunnel.concurrency.key,
        allow: tunnel.allow,
      });
  });
  listOf(raw.broker?.grants).forEach((grant, index) => {
    if (isPlainObject(grant) && grant.rate_limit !== undefined)
      limited.push({
        path: ["broker", "grants", index, "rate_limit"],
        key: grant.rate_limit.key,
        allow: grant.allow,
      });
  });
  const trustProxy = raw.server?.trust_proxy ?? configDefaults.trustProxy;
  for (const { path, key, allow } of limited) {
    if (!clean([...path, "key"])) continue;
    if (key === clientIpKey) {
      if (!trustProxy) {
        warnings.push({
          id: "rate-limit-client-ip-behind-proxy",
          path: [...path, "key"],
          message:
            "key: client_ip counts per address; behind a load balancer every caller has the balancer's address (one allowance for everyone) unless server.trust_proxy: true reads X-Forwarded-For",
        });
      }
      continue;
    }
    const pinned = pinnedBy(allow);
    if (pinned.has(key) || knownClaimNames.has(key)) continue;
    const suggestion = closestMatch(key, [...pinned, ...knownClaimNames, clientIpKey]);
    findings.push({
      path: [...path, "key"],
      message: `"${key}" is neither a claim the resource's allow policies name nor a claim GitHub Actions tokens carry, so callers without it would all share one allowance`,
      fix: suggestion === undefined ? "key: repository_id" : `key: ${suggestion}`,
    });
  }
  if (raw.listen?.auth_failures !== undefined && !trustProxy && clean(["listen", "auth_failures"])) {
    warnings.push({
      id: "auth-failures-behind-proxy",
      path: ["listen", "auth_failures"],
      message:
        "failed authentications are counted per client address; behind a load balancer one bad client would throttle every caller unless server.trust_proxy: true reads X-Forwarded-For",
    });
  }
}

/** `PORT` and `BIND` override `listen`, as in github-runner-token-proxy. Empty values count as unset. */
function listenWithEnv(
  raw: RawConfig,
  env: NodeJS.ProcessEnv,
  findings: Finding[],
): CompiledConfig["listen"] {
  let port = raw.listen?.port ?? configDefaults.listenPort;
  let host = raw.listen?.host ?? configDefaults.listenHost;
  const portText = env.PORT?.trim();
  if (portText !== undefined && portText !== "") {
    const value = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
    // 0 asks the OS for a free port (as listen.port: 0 does); tests and `dev --port 0` rely on it.
    if (value >= 0 && value <= 65_535) port = value;
    else {
      findings.push({
        path: ["$PORT"],
        message: "the environment variable PORT must be a whole number from 0 to 65535",
        fix: "PORT=8080, or unset PORT to use listen.port",
      });
    }
  }
  const bindText = env.BIND?.trim();
  if (bindText !== undefined && bindText !== "") host = bindText;
  const tls = raw.listen?.tls;
  return tls === undefined ? { host, port } : { host, port, tls: { certFile: tls.cert, keyFile: tls.key } };
}

function checkUniqueNames(
  items: readonly { name?: unknown }[] | undefined,
  path: (string | number)[],
  what: string,
  clean: Clean,
  findings: Finding[],
): void {
  if (!Array.isArray(items)) return;
  const seen = new Map<string, number>();
  items.forEach((item, index) => {
    const name = item?.name;
    if (typeof name !== "string" || !clean([...path, index, "name"])) return;
    const earlier = seen.get(name);
    if (earlier === undefined) {
      seen.set(name, index);
      return;
    }
    findings.push({
      path: [...path, index, "name"],
      message: `${what} name "${name}" is already used by ${formatPath([...path, earlier])}`,
      fix: "give each a distinct name",
    });
  });
}

function durationOr(text: string | undefined, fallback: number): number {
  return text === undefined ? fallback : (parseDuration(text) ?? fallback);
}

/**
 * Whether a policy is worth compiling despite schema problems: when they are all inside its claim
 * matchers, the policy compiler reports them too (duplicates are merged) and finds what the schema cannot
 * see, such as an invalid RE2 regex or a missing owner, in the same run.
 */
function compilable(policy: unknown, path: PathSegments, schemaFindings: readonly Finding[]): boolean {
  if (!isPlainObject(policy) || !isPlainObject(policy.claims)) return false;
  const claimsPath = [...path, "claims"];
  return schemaFindings.every(
    (finding) =>
      !startsWith(finding.path, path) ||
      (startsWith(finding.path, claimsPath) && finding.path.length > claimsPath.length),
  );
}

function startsWith(path: PathSegments, prefix: PathSegments): boolean {
  return prefix.length <= path.length && prefix.every((segment, index) => path[index] === segment);
}

/** Names listed in the `allow` (or `deny`) lists of routes, tunnels, broker grants and connector pools. */
function referencedPolicies(raw: RawConfig, list: "allow" | "deny"): Set<string> {
  const grants = isPlainObject(raw.broker) ? listOf(raw.broker.grants) : [];
  const rules: unknown[] = [
    ...listOf(raw.routes),
    ...listOf(raw.tunnels),
    ...grants,
    ...listOf(raw.connectors),
  ];
  const names = new Set<string>();
  for (const rule of rules) {
    const entries = isPlainObject(rule) ? rule[list] : undefined;
    if (Array.isArray(entries)) for (const entry of entries) if (typeof entry === "string") names.add(entry);
  }
  return names;
}

/** The items of a list section, or none when the section is missing or (a schema problem) not a list. */
function listOf<T>(value: readonly T[] | undefined): readonly T[] {
  return Array.isArray(value) ? value : [];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
