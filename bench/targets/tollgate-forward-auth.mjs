// The forward-auth target: a dev OIDC issuer and a gateway (bench/lib/bench-gateway.mjs) with
// server.forward_auth on and one mode: forward_auth route, /artifacts/, as in examples/ingress/tollgate.yaml.
// Imports the built package from dist/ (npm run build).
//
// Usage: node tollgate-forward-auth.mjs '{"auditPath":"/tmp/…/audit.jsonl","maxAge":"60s"}'
// Prints {"port": N, "headers": {"gateway-authorization": "Bearer …"}} once the issuer's keys are loaded.
import { startBenchGateway } from "../lib/bench-gateway.mjs";

const options = JSON.parse(process.argv[2] ?? "{}");
if (!options.auditPath) throw new Error("usage: tollgate-forward-auth.mjs '{\"auditPath\"}'");

const gateway = await startBenchGateway(
  `server:
  trust_proxy: true
  forward_auth: { path: /_tollgate/auth, max_age: ${options.maxAge ?? "60s"} }
routes:
  - { name: artifacts, mode: forward_auth, path_prefix: /artifacts/, allow: [bench-ci], forward_claims: [repository, run_id] }`,
  options.auditPath,
);
process.stdout.write(
  `${JSON.stringify({ port: gateway.port, headers: { "gateway-authorization": `Bearer ${gateway.token}` } })}\n`,
);

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    gateway.close().finally(() => process.exit(0));
  });
}
