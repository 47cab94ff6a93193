import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { decodeJwt } from "jose";
import { brokerActionNames, explainBrokerRequest } from "../../broker/index.js";
import type { BrokerAction } from "../../broker/types.js";
import type { CompiledConfig, CompiledRoute } from "../../config/types.js";
import { isTollgateError } from "../../errors/index.js";
import { describeAuthFailures, describeLimits } from "../../limits/index.js";
import { createTokenVerifier } from "../../oidc/index.js";
import { evaluateAccess } from "../../policy/index.js";
import type { CallerIdentity } from "../../policy/types.js";
import { createRouteTable, normalizeRequestPath } from "../../proxy/index.js";
import { explainConnect } from "../../tunnel/index.js";
import type { CommandContext, TextOutput } from "../command-context.js";
import { exitCodes, UsageError } from "../exit-codes.js";
import { configPath, loadOrReport } from "../load-or-report.js";
import { renderDecision } from "../render-decision.js";

interface ExplainOptions {
  config?: string;
  token?: string;
  claims?: string;
  verify?: boolean;
  route?: string;
  request?: string;
  host?: string;
  broker?: string;
  connect?: string;
}

/** `tollgate explain`: the decision for a token or claim set, condition by condition. */
export function registerExplain(program: Command, context: CommandContext): void {
  program
    .command("explain")
    .description(
      "Explain the decision for a token or claim set: exit 0 allow, 3 deny, 2 bad configuration or usage.",
    )
    .option("-c, --config <file>", "configuration file (default: $TOLLGATE_CONFIG or ./tollgate.yaml)")
    .option("--token <jwt>", "a token whose claims to evaluate (signature not checked unless --verify)")
    .option("--claims <file>", "a JSON file of claims (as in a decoded GitHub Actions token)")
    .option("--verify", "with --token: also verify signature, issuer, audience and lifetime")
    .option("--route <name>", "explain access to this route")
    .option("--request <request>", 'explain the route a request reaches, e.g. "GET /artifacts/x"')
    .option("--host <host>", "with --request: the Host header")
    .option(
      "--connect <host:port>",
      "explain a CONNECT (or forward-proxy request) to host:port: tunnel, destination, policy",
    )
    .option(
      "--broker <action:scope>",
      'explain a runner token broker request, e.g. "register:octo-org/octo-repo"',
    )
    .addHelpText(
      "after",
      "\nWithout --route or --request, every route is explained; the exit code is 0 if any allows.",
    )
    .action(async (options: ExplainOptions) => {
      const out = context.stdout;
      if ((options.token === undefined) === (options.claims === undefined)) {
        throw new UsageError("give exactly one of --token or --claims");
      }
      const config = await loadOrReport(configPath(options.config, context.env), context);
      if (config === undefined) return context.setExitCode(exitCodes.badConfig);
      const identity = await identityFrom(config, options, out);
      if (identity === undefined) return context.setExitCode(exitCodes.denied);
      if (options.connect !== undefined) {
        return context.setExitCode(
          explainTunnel(config, options.connect, identity, out) ? exitCodes.ok : exitCodes.denied,
        );
      }
      if (options.broker !== undefined) {
        return context.setExitCode(
          explainBroker(config, options.broker, identity, out) ? exitCodes.ok : exitCodes.denied,
        );
      }
      const routes = selectRoutes(config, options, out);
      let anyAllowed = false;
      for (const { route, subject, methodAllowed } of routes) {
        const decision = evaluateAccess(route.access, identity);
        out.write(`${renderDecision(subject, decision)}\n`);
        if (!methodAllowed) out.write(`  but the method is not allowed on this route → DENY\n`);
        writeLimits(describeLimits(route, identity.claims, { addressCountedBeforeToken: true }), out);
        anyAllowed ||= decision.allow && methodAllowed;
      }
      const throttle = describeAuthFailures(config.authFailures);
      if (throttle !== undefined && routes.length > 0) out.write(`note: ${throttle}\n`);
      context.setExitCode(anyAllowed ? exitCodes.ok : exitCodes.denied);
    });
}

async function identityFrom(
  config: CompiledConfig,
  options: ExplainOptions,
  out: TextOutput,
): Promise<CallerIdentity | undefined> {
  if (options.token !== undefined && options.verify === true) {
    const verifier = createTokenVerifier(config.issuers, config.verifier);
    try {
      await verifier.start();
      const verified = await verifier.verify(options.token);
      out.write(`token verified by issuer ${verified.issuer}\n`);
      return { issuer: verified.issuer, claims: verified.claims };
    } catch (error) {
      const reason = isTollgateError(error) ? `${error.code}: ${error.message}` : String(error);
      out.write(`token rejected before policy: ${reason}\nDENY\n`);
      return undefined;
    } finally {
      verifier.close();
    }
  }
  let claims: Record<string, unknown>;
  if (options.token !== undefined) {
    try {
      claims = decodeJwt(options.token) as Record<string, unknown>;
    } catch {
      throw new UsageError("--token is not a decodable JWT");
    }
    out.write("note: signature, audience and lifetime not checked; add --verify to check them\n");
  } else {
    const text = await readFile(options.claims as string, "utf8").catch(() => {
      throw new UsageError(`cannot read claims file ${options.claims}`);
    });
    try {
      claims = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new UsageError(`${options.claims} is not JSON`);
    }
  }
  return { issuer: issuerNameFor(config, claims, out), claims };
}

/** The configured issuer whose `issuer` string equals the claims' `iss` (exactly), as the gateway does. */
function issuerNameFor(config: CompiledConfig, claims: Record<string, unknown>, out: TextOutput): string {
  const match = config.issuers.find((issuer) => issuer.issuer === claims.iss);
  if (match !== undefined) return match.name;
  if (claims.iss === undefined && config.issuers.length === 1) return config.issuers[0]!.name;
  out.write(
    `note: iss ${JSON.stringify(claims.iss)} is not a configured issuer; the gateway would refuse it\n`,
  );
  return "(unconfigured issuer)";
}

function selectRoutes(
  config: CompiledConfig,
  options: ExplainOptions,
  out: TextOutput,
): { route: CompiledRoute; subject: string; methodAllowed: boolean }[] {
  if (options.route !== undefined) {
    const route = config.routes.find((candidate) => candidate.name === options.route);
    if (route === undefined) {
      throw new UsageError(
        `no route named ${options.route}; routes: ${config.routes.map((r) => r.name).join(", ")}`,
      );
    }
    return [{ route, subject: `route ${route.name}`, methodAllowed: true }];
  }
  if (options.request !== undefined) {
    const [method, url, ...rest] = options.request.trim().split(/\s+/);
    if (method === undefined || url === undefined || rest.length > 0) {
      throw new UsageError('--request must look like "GET /path"');
    }
    const target = normalizeRequestPath(url);
    if (target === undefined) {
      out.write(`DENY — the gateway refuses the path ${url} (400, path normalisation)\n`);
      return [];
    }
    const route = createRouteTable(config.routes).match(options.host, target.path);
    if (route === undefined) {
      out.write(`DENY — no route matches ${target.path} (the gateway answers 404)\n`);
      return [];
    }
    const upper = method.toUpperCase();
    return [
      {
        route,
        subject: `${upper} ${url} → route ${route.name}`,
        methodAllowed: route.methods === undefined || route.methods.has(upper),
      },
    ];
  }
  return config.routes.map((route) => ({ route, subject: `route ${route.name}`, methodAllowed: true }));
}

/**
 * `--broker ACTION:SCOPE`: the broker's decision steps (scope validation, global scope lists, grants),
 * each with its reason. Returns whether the broker would serve the request.
 */
function explainBroker(
  config: CompiledConfig,
  request: string,
  identity: CallerIdentity,
  out: TextOutput,
): boolean {
  const colon = request.indexOf(":");
  const action = request.slice(0, colon) as BrokerAction;
  if (colon < 0 || !brokerActionNames.includes(action)) {
    throw new UsageError(
      `--broker must look like ACTION:SCOPE with ACTION one of ${brokerActionNames.join(", ")}`,
    );
  }
  const broker = config.compiledBroker;
  if (broker === undefined) throw new UsageError("the configuration has no broker section");
  const explained = explainBrokerRequest(broker, action, request.slice(colon + 1), identity);
  const verdict = explained.allowed ? "ALLOW" : "DENY";
  const lines = [`broker ${action} (authorization: ${broker.authorization}): ${verdict}`];
  if (explained.scopeProblem !== undefined) {
    lines.push(`  scope refused before any rule (400): ${explained.scopeProblem}`);
  } else {
    lines.push(`  scope: ${explained.scope!.text} (${explained.scope!.kind})`);
    const scopes = explained.scopeDecision!;
    lines.push(
      `  scope lists (deny first, then allow): ${scopes.allowed ? "allowed" : "refused"} — ${scopes.detail}`,
    );
  }
  for (const trace of explained.grants ?? []) {
    const actions = broker.grants[trace.grant]?.actions.join(", ") ?? "";
    if (!trace.actionListed) {
      lines.push(`  grants[${trace.grant}] (actions: ${actions}): does not list ${action}`);
      continue;
    }
    const decision = trace.decision!;
    lines.push(
      ...renderDecision(`grants[${trace.grant}] (actions: ${actions}) policies`, decision)
        .split("\n")
        .map((line) => `  ${line}`),
    );
    for (const scope of trace.scopes) {
      lines.push(`    ${scope.ok ? "✓" : "✗"} scope ${JSON.stringify(scope.source)} → ${scope.expected}`);
    }
  }
  const grant = explained.grantDecision;
  if (grant !== undefined) {
    lines.push(
      grant.allowed
        ? `  → allowed by grants[${grant.grant}]${grant.policy === undefined ? "" : ` (policy ${grant.policy})`}`
        : `  → no grant admits it: ${grant.reason}`,
    );
    const admitting = grant.allowed
      ? broker.grants.find((candidate) => candidate.index === grant.grant)
      : undefined;
    if (admitting !== undefined)
      lines.push(...describeLimits(admitting, identity.claims).map((line) => `  ${line}`));
  }
  out.write(`${lines.join("\n")}\n`);
  return explained.allowed;
}

/** The limits a resource would apply, indented under its decision. */
function writeLimits(lines: readonly string[], out: TextOutput): void {
  for (const line of lines) out.write(`  ${line}\n`);
}

/**
 * `--connect HOST:PORT`: which tunnels' destinations match (with the patterns), each tunnel's policy
 * decision condition by condition, and what the gateway checks once it resolves a host name. Uses the
 * gateway's own matching functions; resolves nothing. Returns whether some tunnel would carry it.
 */
function explainTunnel(
  config: CompiledConfig,
  authority: string,
  identity: CallerIdentity,
  out: TextOutput,
): boolean {
  const explained = explainConnect(config.compiledTunnels, authority);
  const target = explained.target;
  if (target === undefined) {
    out.write(
      `CONNECT ${authority}: DENY — not a host:port the gateway accepts (400 TG_TUNNEL_TARGET_INVALID; IPv6 in brackets, no zone id)\n`,
    );
    return false;
  }
  const shown = target.text === authority ? target.text : `${authority} (read as ${target.text})`;
  if (explained.candidates.length === 0) {
    const why = explained.refusal ?? `${target.text} matches no tunnel's destinations`;
    out.write(`CONNECT ${shown}: DENY — ${why} (403 TG_TUNNEL_DESTINATION_FORBIDDEN)\n`);
    return false;
  }
  let allowed = false;
  for (const { tunnel, patterns } of explained.candidates) {
    const decision = evaluateAccess(tunnel.access, identity);
    const matched = patterns.map((pattern) => pattern.text).join(", ");
    out.write(
      `${renderDecision(`CONNECT ${shown} → tunnel ${tunnel.name} (destinations ${matched})`, decision)}\n`,
    );
    writeLimits(describeLimits(tunnel, identity.claims), out);
    allowed ||= decision.allow;
  }
  if (explained.resolutionNote !== undefined) out.write(`  note: ${explained.resolutionNote}\n`);
  return allowed;
}
