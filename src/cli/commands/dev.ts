import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { compileConfigText, formatProblems } from "../../config/index.js";
import { createDemoUpstream } from "../../dev/demo-upstream.js";
import { createDevIssuer, githubLikeClaims, mintWithKeyFile } from "../../dev/dev-issuer.js";
import {
  type DevState,
  devStateFile,
  findRunningDev,
  removeDevStateIfOwn,
  writeDevState,
} from "../../dev/dev-state.js";
import { isTollgateError } from "../../errors/index.js";
import { parseDuration } from "../../lib/duration.js";
import { startGateway } from "../../server/index.js";
import type { CommandContext } from "../command-context.js";
import { exitCodes, UsageError } from "../exit-codes.js";
import { untilStopSignal } from "../load-or-report.js";

/** The audience the dev gateway expects; `dev mint` uses it by default. */
const devAudience = "tollgate-dev";

/** Where `dev` keeps its issuer key and address, so `dev mint` in another shell signs trusted tokens. */
function devStateDir(): string {
  return process.env.TOLLGATE_DEV_STATE ?? join(tmpdir(), `tollgate-dev-${process.getuid?.() ?? "user"}`);
}

/** `tollgate dev` and `tollgate dev mint`. */
export function registerDev(program: Command, context: CommandContext): void {
  const dev = program
    .command("dev")
    .description(
      "Run a local OIDC issuer, a demo upstream and a gateway that trusts them, and print a curl that works.",
    )
    .option("--port <port>", "gateway port (default: $PORT or 8080)")
    .option("--host <host>", "gateway address (default: $BIND or 127.0.0.1)")
    .action(async (options: { port?: string; host?: string }) => {
      const stateDir = devStateDir();
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
      const keyFile = join(stateDir, "issuer-key.json");
      const issuer = await createDevIssuer({ host: "127.0.0.1", port: 0, keyFile });
      const upstream = await createDemoUpstream();
      const configFile = join(stateDir, "tollgate.dev.yaml");
      const yaml = devConfigYaml(issuer.issuerUrl, upstream.url);
      const compiled = compileConfigText(yaml, { env: {}, sourceName: configFile });
      if (compiled.config === undefined) {
        // The dev configuration is ours; failing here is a bug, but say what failed rather than crash.
        process.stderr.write(`${formatProblems(compiled.problems, configFile)}\n`);
        await Promise.all([issuer.close(), upstream.close()]);
        return context.setExitCode(exitCodes.failure);
      }
      const port = Number(options.port ?? process.env.PORT ?? 8080);
      const host = options.host ?? process.env.BIND ?? "127.0.0.1";
      let running: Awaited<ReturnType<typeof startGateway>>;
      try {
        running = await startGateway(compiled.config, { listen: { host, port } });
      } catch (error) {
        await Promise.all([issuer.close(), upstream.close()]);
        if (!isTollgateError(error) || error.code !== "TG_CONFIG_INVALID") throw error;
        // Most often a second `tollgate dev` on the same port; the first one's files stay as they are.
        process.stderr.write(`tollgate: ${error.message}; start it on another port with --port.\n`);
        return context.setExitCode(exitCodes.badConfig);
      }
      // Written once this instance serves: another `dev` that failed to start must not replace the
      // configuration the running one's `explain` hint points at.
      await writeFile(configFile, yaml);
      await running.keysLoaded;
      const gatewayUrl = `http://${host.includes(":") ? `[${host}]` : host}:${running.address.port}`;
      const state: DevState = {
        issuerUrl: issuer.issuerUrl,
        keyFile,
        audience: devAudience,
        gatewayUrl,
        pid: process.pid,
      };
      const stateFile = devStateFile(stateDir);
      await writeDevState(stateFile, state);
      const token = await issuer.mint(githubLikeClaims(), { audience: devAudience, expiresInSeconds: 3600 });

      process.stdout.write(
        [
          "",
          "tollgate dev is running — a local OIDC issuer, a demo upstream, and a gateway that trusts them.",
          `  gateway   ${gatewayUrl}   (route /demo/ → demo upstream; policy: repository_owner_id 65, ref main)`,
          `  issuer    ${issuer.issuerUrl}`,
          `  config    ${configFile}`,
          "",
          "Allowed (a push to main of octo-org/octo-repo; the token is valid for 1 hour):",
          `  curl -H "Gateway-Authorization: Bearer ${token}" ${gatewayUrl}/demo/hello`,
          "",
          "Refused by the policy (another owner with the same name — a look-alike):",
          `  curl -H "Gateway-Authorization: Bearer $(npx tollgate dev mint --claim repository_owner_id=999)" ${gatewayUrl}/demo/hello`,
          "",
          "Why: npx tollgate explain --config " + configFile + " --token <token>",
          "Stop with Ctrl-C. Audit events follow on stdout.",
          "",
        ].join("\n"),
      );
      await untilStopSignal();
      // Removed before the servers close, so that once a stop begins `dev mint` refuses rather than sign
      // for an issuer on its way out. A crash skips this; `dev mint` then finds the issuer gone.
      await removeDevStateIfOwn(stateFile, state.pid);
      await running.close();
      await Promise.all([issuer.close(), upstream.close()]);
      context.setExitCode(exitCodes.ok);
    });

  dev
    .command("mint")
    .description(
      "Print a token signed by the running `tollgate dev` issuer (GitHub-like claims, overridable).",
    )
    .option(
      "--claim <name=value>",
      "set a claim (repeatable); value is a string, as GitHub sends",
      collect,
      [],
    )
    .option("--audience <aud>", "the aud claim", devAudience)
    .option("--expires-in <duration>", "lifetime, e.g. 5m (GitHub's tokens live 5 minutes)", "5m")
    .action(async (options: { claim: string[]; audience: string; expiresIn: string }) => {
      const state = await readRunningState();
      const lifetimeMs = parseDuration(options.expiresIn);
      if (lifetimeMs === undefined || lifetimeMs <= 0)
        throw new UsageError(`--expires-in: not a duration: ${options.expiresIn}`);
      const overrides: Record<string, string> = {};
      for (const pair of options.claim) {
        const equals = pair.indexOf("=");
        if (equals <= 0) throw new UsageError(`--claim must be name=value, got ${pair}`);
        overrides[pair.slice(0, equals)] = pair.slice(equals + 1);
      }
      const token = await mintWithKeyFile(state.keyFile, state.issuerUrl, githubLikeClaims(overrides), {
        audience: options.audience,
        expiresInSeconds: Math.round(lifetimeMs / 1000),
      });
      process.stdout.write(`${token}\n`);
      context.setExitCode(exitCodes.ok);
    });
}

/** The state of the running `tollgate dev`; a usage error (exit 2) when none is running. */
async function readRunningState(): Promise<DevState> {
  const lookup = await findRunningDev(devStateFile(devStateDir()));
  if (!lookup.running) {
    throw new UsageError(`no tollgate dev is running (${lookup.reason}); start it with \`npx tollgate dev\``);
  }
  return lookup.state;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The configuration `tollgate dev` runs: a real one, written to the state folder so users can read it. */
function devConfigYaml(issuerUrl: string, upstreamUrl: string): string {
  return `# Generated by \`tollgate dev\`. A real configuration: try \`tollgate explain --config <this file> …\`.
issuers:
  - name: dev
    issuer: ${issuerUrl}
    audiences: [${devAudience}]
policies:
  demo-main:
    claims:
      repository_owner_id: 65
      repository_id: 74
      ref: refs/heads/main
      event_name: { not: [pull_request_target, workflow_run] }
routes:
  - name: demo
    path_prefix: /demo/
    upstream: ${upstreamUrl}
    strip_prefix: true
    allow: [demo-main]
    forward_claims: [repository, run_id]
audit:
  sink: stdout
`;
}
