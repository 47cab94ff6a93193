import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  actionsTokenEndpointFromEnv,
  annotationCommand,
  appendEnvironmentFile,
  describeClientError,
  describeTokenCheck,
  parseGatewayUrl,
  prepareClient,
} from "../../src/client/index.js";
import { type DaemonConfig, type DaemonMessage, isDaemonMessage } from "./daemon-protocol.js";
import { readInputs } from "./inputs.js";
import { noProxyList } from "./proxy-env.js";
import { logSection, stateNames } from "./state.js";

/** Where the main step finds the background process's script (next to itself in action/dist). */
export interface MainOptions {
  readonly daemonScript: string;
  /** `tollgate pipe` for later steps (`pipe.mjs`, beside it), named in the `ssh-proxy-command` output. */
  readonly pipeScript: string;
  readonly env: NodeJS.ProcessEnv;
  /** Until the background process reports it listens (default 30 s). */
  readonly readyTimeoutMs?: number;
  readonly write?: (text: string) => void;
}

/**
 * The action's main step: validates the inputs, asks the gateway whether it takes the job's token
 * (`GET /_tollgate/whoami`: a wrong audience fails here, with the code and the fix, not later as a bare 407
 * in git), sets the `ssh-proxy-command` output, starts the proxy and/or forwards as a detached background
 * process (the same client code as the CLI), waits until it listens, records its pid for the post step,
 * sets outputs and, if asked, exports `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` to later steps. With neither
 * proxy nor forwards nothing runs in the background. Resolves with the exit code.
 */
export async function runMain(options: MainOptions): Promise<number> {
  const env = options.env;
  const write = options.write ?? ((text: string) => process.stdout.write(text));
  let child: ChildProcess | undefined;
  let logFile: string | undefined;
  try {
    const inputs = readInputs(env);
    actionsTokenEndpointFromEnv(env);
    const gateway = parseGatewayUrl(inputs.gateway);
    const { check } = await prepareClient({
      gatewayUrl: inputs.gateway,
      audience: inputs.audience,
      ...(inputs.ca === undefined ? {} : { caPem: inputs.ca }),
      ...(inputs.caFile === undefined ? {} : { caFile: inputs.caFile }),
      env,
    });
    if (check !== undefined && !check.checked)
      write(annotationCommand("warning", `tollgate: ${describeTokenCheck(check)}`));
    else if (check !== undefined) write(`tollgate: ${describeTokenCheck(check)}\n`);
    const caFile = inputs.ca === undefined ? inputs.caFile : writeCaFile(env, inputs.ca);
    appendEnvironmentFile(
      env,
      "GITHUB_OUTPUT",
      "ssh-proxy-command",
      sshProxyCommand(options.pipeScript, inputs.gateway, inputs.audience, caFile),
    );
    if (!inputs.proxy && inputs.forwards.length === 0) {
      appendEnvironmentFile(env, "GITHUB_OUTPUT", "forwards", "[]");
      return 0;
    }
    const config: DaemonConfig = {
      gatewayUrl: inputs.gateway,
      audience: inputs.audience,
      ca: inputs.ca,
      caFile: inputs.caFile,
      proxyListen: inputs.proxy ? inputs.listen : undefined,
      forwards: inputs.forwards,
      verbose: inputs.verbose,
    };
    logFile = join(env.RUNNER_TEMP || tmpdir(), `tollgate-${randomUUID()}.log`);
    const out = openSync(logFile, "a", 0o600);
    try {
      // Detached, with its output in a file and no pipe to this process: the runner waits for this step's
      // process only, and the background process outlives it until the post step stops it.
      child = spawn(process.execPath, [options.daemonScript, JSON.stringify(config)], {
        detached: true,
        stdio: ["ignore", out, out, "ipc"],
        env,
      });
    } finally {
      closeSync(out);
    }
    if (child.pid !== undefined)
      appendEnvironmentFile(env, "GITHUB_STATE", stateNames.pid, String(child.pid));
    appendEnvironmentFile(env, "GITHUB_STATE", stateNames.log, logFile);
    const message = await waitForReady(child, options.readyTimeoutMs ?? 30_000);
    if (!message.ready) throw new StartFailed(message.error);
    child.disconnect();
    child.unref();

    if (message.proxyUrl !== undefined) {
      write(`tollgate: proxy listening on ${message.proxyUrl}\n`);
      appendEnvironmentFile(env, "GITHUB_OUTPUT", "proxy-url", message.proxyUrl);
    }
    for (const forward of message.forwards)
      write(`tollgate: forwarding ${forward.local} -> ${forward.destination}\n`);
    appendEnvironmentFile(env, "GITHUB_OUTPUT", "forwards", JSON.stringify(message.forwards));
    if (inputs.exportProxyEnv && message.proxyUrl !== undefined) {
      const noProxy = noProxyList(env, gateway.host, inputs.noProxy);
      for (const name of ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]) {
        appendEnvironmentFile(env, "GITHUB_ENV", name, message.proxyUrl);
      }
      appendEnvironmentFile(env, "GITHUB_ENV", "NO_PROXY", noProxy);
      appendEnvironmentFile(env, "GITHUB_ENV", "no_proxy", noProxy);
      write(`tollgate: exported HTTPS_PROXY and HTTP_PROXY=${message.proxyUrl}, NO_PROXY=${noProxy}\n`);
    }
    return 0;
  } catch (error) {
    const reason = error instanceof StartFailed ? error.message : describeClientError(error);
    write(annotationCommand("error", `tollgate: ${reason}`));
    if (child !== undefined && child.exitCode === null) child.kill("SIGTERM");
    if (logFile !== undefined) write(logSection(logFile));
    return 1;
  }
}

class StartFailed extends Error {}

/**
 * The `ProxyCommand` for ssh in later steps: this runner's node running the bundled `tollgate pipe`, every
 * argument in single quotes for the shell ssh runs it with, and `%` doubled because ssh expands `%h`-style
 * tokens in the whole line.
 *
 * @example
 * sshProxyCommand("/a/pipe.mjs", "https://gw", "gw", undefined);
 * // "'/usr/bin/node' '/a/pipe.mjs' %h:%p --gateway 'https://gw' --audience 'gw'"
 */
export function sshProxyCommand(
  pipeScript: string,
  gatewayUrl: string,
  audience: string,
  caFile: string | undefined,
  node = process.execPath,
): string {
  const arg = (text: string) => `'${text.replaceAll("'", "'\\''")}'`.replaceAll("%", "%%");
  return [
    arg(node),
    arg(pipeScript),
    "%h:%p",
    "--gateway",
    arg(gatewayUrl),
    "--audience",
    arg(audience),
    ...(caFile === undefined ? [] : ["--ca", arg(caFile)]),
  ].join(" ");
}

/** The `ca` input's PEM text as a file for `pipe.mjs` (RUNNER_TEMP is emptied after every job). */
function writeCaFile(env: NodeJS.ProcessEnv, pem: string): string {
  const file = join(env.RUNNER_TEMP || tmpdir(), `tollgate-ca-${randomUUID()}.pem`);
  writeFileSync(file, pem.endsWith("\n") ? pem : `${pem}\n`, { mode: 0o600 });
  return file;
}

function waitForReady(child: ChildProcess, timeoutMs: number): Promise<DaemonMessage> {
  return new Promise((resolve) => {
    const finish = (message: DaemonMessage) => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      child.off("error", onError);
      resolve(message);
    };
    const onMessage = (message: unknown) => {
      if (isDaemonMessage(message)) finish(message);
    };
    const onExit = (code: number | null) =>
      finish({
        ready: false,
        error: `the background process exited (code ${code ?? "none"}) before listening`,
      });
    const onError = (error: Error) => finish({ ready: false, error: `could not start: ${error.message}` });
    const timer = setTimeout(
      () => finish({ ready: false, error: `the background process did not listen within ${timeoutMs} ms` }),
      timeoutMs,
    );
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.once("error", onError);
  });
}
