// A benchmark gateway in the current process: a dev OIDC issuer, the policy every benchmark token meets,
// and startGateway wired as `tollgate serve` wires it, with auditing on to a file. Imports the built
// package from dist/ (npm run build).

/**
 * Starts the gateway with the given configuration sections (routes, tunnels, connectors … as YAML, at the
 * top level) beside `listen`, one dev issuer, the policy `bench-ci` and `audit`; resolves once the issuer's
 * keys are loaded, with a token that meets `bench-ci` (one hour) and a `close` for both.
 *
 * @param {string} sections
 * @param {string} auditPath
 */
export async function startBenchGateway(sections, auditPath) {
  const { compileConfigText } = await import("../../dist/config/index.js");
  const { createDevIssuer, githubLikeClaims } = await import("../../dist/dev/dev-issuer.js");
  const { startGateway } = await import("../../dist/server/index.js");
  const audience = "tollgate-bench";
  const issuer = await createDevIssuer({ host: "127.0.0.1" });
  const { config, problems } = compileConfigText(
    `listen: { host: 127.0.0.1, port: 0 }
issuers:
  - { name: bench, issuer: "${issuer.issuerUrl}", audiences: [${audience}] }
policies:
  bench-ci:
    claims:
      repository_owner_id: 65
      repository_id: 74
      ref: refs/heads/main
      event_name: { not: [pull_request_target, workflow_run] }
${sections}
audit:
  sink: ${auditPath}
`,
    { sourceName: "bench.yaml" },
  );
  if (!config) throw new Error(`bench configuration rejected: ${JSON.stringify(problems)}`);
  const running = await startGateway(config, {
    listen: { host: "127.0.0.1", port: 0 },
    logLevel: "warn",
    auditSink: auditPath,
  });
  await running.keysLoaded;
  const token = await issuer.mint(githubLikeClaims(), { audience, expiresInSeconds: 3600 });
  return {
    port: running.address.port,
    token,
    close: () => Promise.allSettled([running.close(), issuer.close()]),
  };
}
