// The tollgate target: a dev OIDC issuer and a gateway wired exactly as `tollgate serve` wires it
// (startGateway: redactor → loggers → verifier → server), with auditing on to a file, one route to the
// upstream, and a policy the minted token satisfies. Imports the built package from dist/ (npm run build).
//
// Usage: node tollgate-gateway.mjs '{"upstream":"http://127.0.0.1:N","auditPath":"/tmp/…/audit.jsonl",
//        "tokenCacheSize":10000, "flushInterval":"20ms"}'
// Prints {"port": N, "headers": {"gateway-authorization": "Bearer …"}} once the issuer's keys are loaded.
// The token is a throwaway signed by this process's own dev issuer; it is written only to the harness's
// pipe, never to a log.
import { compileConfigText } from "../../dist/config/index.js";
import { createDevIssuer, githubLikeClaims } from "../../dist/dev/dev-issuer.js";
import { startGateway } from "../../dist/server/index.js";

const options = JSON.parse(process.argv[2] ?? "{}");
if (!options.upstream || !options.auditPath)
  throw new Error('usage: tollgate-gateway.mjs \'{"upstream","auditPath"}\'');

const audience = "tollgate-bench";
const issuer = await createDevIssuer({ host: "127.0.0.1" });

// A realistic policy: numeric owner and repository ids, a branch, the fork-risky events excluded, and a
// glob on the workflow, so evaluation does the work a production policy does.
const yaml = `
listen:
  host: 127.0.0.1
  port: 0
issuers:
  - name: bench
    issuer: ${issuer.issuerUrl}
    audiences: [${audience}]
policies:
  bench-ci:
    issuer: bench
    claims:
      repository_owner_id: 65
      repository_id: 74
      ref: refs/heads/main
      event_name: { not: [pull_request_target, workflow_run] }
      job_workflow_ref: { glob: "octo-org/octo-repo/.github/workflows/*.yml@refs/heads/main" }
routes:
  - name: bench
    path_prefix: /bench/
    upstream: ${options.upstream}
    allow: [bench-ci]
audit:
  sink: ${options.auditPath}
  flush_interval: ${options.flushInterval ?? "20ms"}
oidc:
  token_cache_size: ${options.tokenCacheSize ?? 10_000}
`;

const { config, problems } = compileConfigText(yaml, { sourceName: "bench.yaml" });
if (!config) throw new Error(`bench configuration rejected: ${JSON.stringify(problems)}`);

const running = await startGateway(config, {
  listen: { host: "127.0.0.1", port: 0 },
  logLevel: process.env.LOG_LEVEL ?? "warn",
  auditSink: options.auditPath,
});
await running.keysLoaded;
if (!running.verifier.isReady()) throw new Error("the gateway could not load the dev issuer's keys");

// One hour: longer than GitHub's five minutes so a whole benchmark run reuses one token (clients reuse
// theirs too), which is the case the verified-token cache is for.
const token = await issuer.mint(githubLikeClaims(), { audience, expiresInSeconds: 3600 });
process.stdout.write(
  `${JSON.stringify({ port: running.address.port, headers: { "gateway-authorization": `Bearer ${token}` } })}\n`,
);

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    Promise.allSettled([running.close(), issuer.close()]).finally(() => process.exit(0));
  });
}
