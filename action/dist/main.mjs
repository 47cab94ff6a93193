import {
  logSection,
  stateNames
} from "./chunk-KWDTBWK2.mjs";
import {
  TollgateError,
  actionsTokenEndpointFromEnv,
  annotationCommand,
  appendEnvironmentFile,
  describeClientError,
  describeTokenCheck,
  parseForwardSpec,
  parseGatewayUrl,
  parseListenAddress,
  prepareClient
} from "./chunk-QF6Z6VOP.mjs";

// action/src/main.ts
import { fileURLToPath } from "node:url";

// action/src/run-main.ts
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// action/src/daemon-protocol.ts
function isDaemonMessage(message) {
  return typeof message === "object" && message !== null && typeof message.ready === "boolean";
}

// action/src/inputs.ts
function getInput(env, name) {
  return (env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] ?? "").trim();
}
function getBooleanInput(env, name, fallback) {
  const value = getInput(env, name);
  if (value === "") return fallback;
  if (["true", "True", "TRUE"].includes(value)) return true;
  if (["false", "False", "FALSE"].includes(value)) return false;
  throw invalid(`input ${name}: ${JSON.stringify(value)} is not true or false`);
}
function readInputs(env) {
  const gateway = getInput(env, "gateway");
  const audience = getInput(env, "audience");
  if (gateway === "") throw invalid("input gateway is required (https://gateway.example.com)");
  if (audience === "") throw invalid("input audience is required (the gateway's configured audience)");
  parseGatewayUrl(gateway);
  const forwards = getInput(env, "forwards").split(/\r?\n/).map((line) => line.replace(/(^|\s)#.*$/, "").trim()).filter((line) => line.length > 0);
  for (const forward of forwards) parseForwardSpec(forward);
  const proxy = getBooleanInput(env, "proxy", true);
  const listen = getInput(env, "listen") || "127.0.0.1:0";
  parseListenAddress(listen);
  const exportProxyEnv = getBooleanInput(env, "export-proxy-env", false);
  if (exportProxyEnv && !proxy) throw invalid("export-proxy-env needs proxy: true");
  const caInput = getInput(env, "ca");
  const caIsPem = caInput.includes("-----BEGIN");
  return {
    gateway,
    audience,
    proxy,
    listen,
    forwards,
    exportProxyEnv,
    noProxy: getInput(env, "no-proxy").split(/[\s,]+/).filter((entry) => entry.length > 0),
    ca: caIsPem ? caInput : void 0,
    caFile: caInput !== "" && !caIsPem ? caInput : void 0,
    verbose: getBooleanInput(env, "verbose", false)
  };
}
function invalid(message) {
  return new TollgateError("TG_CONFIG_INVALID", message);
}

// action/src/proxy-env.ts
function noProxyList(env, gatewayHost, extra) {
  const entries = [
    ...splitList(env.NO_PROXY ?? env.no_proxy ?? ""),
    "localhost",
    "127.0.0.1",
    "::1",
    gatewayHost,
    ...[
      env.GITHUB_SERVER_URL,
      env.GITHUB_API_URL,
      env.ACTIONS_RUNTIME_URL,
      env.ACTIONS_RESULTS_URL,
      env.ACTIONS_CACHE_URL,
      env.ACTIONS_ID_TOKEN_REQUEST_URL
    ].flatMap((url) => hostOf(url)),
    // github.com's own services, and the storage that artifacts and caches are uploaded to.
    "github.com",
    ".github.com",
    ".githubusercontent.com",
    ".actions.githubusercontent.com",
    ".blob.core.windows.net",
    ...extra
  ];
  return [...new Set(entries.filter((entry) => entry.length > 0))].join(",");
}
function splitList(text) {
  return text.split(/[\s,]+/).filter((entry) => entry.length > 0);
}
function hostOf(url) {
  if (url === void 0 || url === "") return [];
  try {
    const hostname = new URL(url).hostname;
    return [hostname.startsWith("[") ? hostname.slice(1, -1) : hostname];
  } catch {
    return [];
  }
}

// action/src/run-main.ts
async function runMain(options) {
  const env = options.env;
  const write = options.write ?? ((text) => process.stdout.write(text));
  let child;
  let logFile;
  try {
    const inputs = readInputs(env);
    actionsTokenEndpointFromEnv(env);
    const gateway = parseGatewayUrl(inputs.gateway);
    const { check } = await prepareClient({
      gatewayUrl: inputs.gateway,
      audience: inputs.audience,
      ...inputs.ca === void 0 ? {} : { caPem: inputs.ca },
      ...inputs.caFile === void 0 ? {} : { caFile: inputs.caFile },
      env
    });
    if (check !== void 0 && !check.checked)
      write(annotationCommand("warning", `tollgate: ${describeTokenCheck(check)}`));
    else if (check !== void 0) write(`tollgate: ${describeTokenCheck(check)}
`);
    const caFile = inputs.ca === void 0 ? inputs.caFile : writeCaFile(env, inputs.ca);
    appendEnvironmentFile(
      env,
      "GITHUB_OUTPUT",
      "ssh-proxy-command",
      sshProxyCommand(options.pipeScript, inputs.gateway, inputs.audience, caFile)
    );
    if (!inputs.proxy && inputs.forwards.length === 0) {
      appendEnvironmentFile(env, "GITHUB_OUTPUT", "forwards", "[]");
      return 0;
    }
    const config = {
      gatewayUrl: inputs.gateway,
      audience: inputs.audience,
      ca: inputs.ca,
      caFile: inputs.caFile,
      proxyListen: inputs.proxy ? inputs.listen : void 0,
      forwards: inputs.forwards,
      verbose: inputs.verbose
    };
    logFile = join(env.RUNNER_TEMP || tmpdir(), `tollgate-${randomUUID()}.log`);
    const out = openSync(logFile, "a", 384);
    try {
      child = spawn(process.execPath, [options.daemonScript, JSON.stringify(config)], {
        detached: true,
        stdio: ["ignore", out, out, "ipc"],
        env
      });
    } finally {
      closeSync(out);
    }
    if (child.pid !== void 0)
      appendEnvironmentFile(env, "GITHUB_STATE", stateNames.pid, String(child.pid));
    appendEnvironmentFile(env, "GITHUB_STATE", stateNames.log, logFile);
    const message = await waitForReady(child, options.readyTimeoutMs ?? 3e4);
    if (!message.ready) throw new StartFailed(message.error);
    child.disconnect();
    child.unref();
    if (message.proxyUrl !== void 0) {
      write(`tollgate: proxy listening on ${message.proxyUrl}
`);
      appendEnvironmentFile(env, "GITHUB_OUTPUT", "proxy-url", message.proxyUrl);
    }
    for (const forward of message.forwards)
      write(`tollgate: forwarding ${forward.local} -> ${forward.destination}
`);
    appendEnvironmentFile(env, "GITHUB_OUTPUT", "forwards", JSON.stringify(message.forwards));
    if (inputs.exportProxyEnv && message.proxyUrl !== void 0) {
      const noProxy = noProxyList(env, gateway.host, inputs.noProxy);
      for (const name of ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]) {
        appendEnvironmentFile(env, "GITHUB_ENV", name, message.proxyUrl);
      }
      appendEnvironmentFile(env, "GITHUB_ENV", "NO_PROXY", noProxy);
      appendEnvironmentFile(env, "GITHUB_ENV", "no_proxy", noProxy);
      write(`tollgate: exported HTTPS_PROXY and HTTP_PROXY=${message.proxyUrl}, NO_PROXY=${noProxy}
`);
    }
    return 0;
  } catch (error) {
    const reason = error instanceof StartFailed ? error.message : describeClientError(error);
    write(annotationCommand("error", `tollgate: ${reason}`));
    if (child !== void 0 && child.exitCode === null) child.kill("SIGTERM");
    if (logFile !== void 0) write(logSection(logFile));
    return 1;
  }
}
var StartFailed = class extends Error {
};
function sshProxyCommand(pipeScript, gatewayUrl, audience, caFile, node = process.execPath) {
  const arg = (text) => `'${text.replaceAll("'", "'\\''")}'`.replaceAll("%", "%%");
  return [
    arg(node),
    arg(pipeScript),
    "%h:%p",
    "--gateway",
    arg(gatewayUrl),
    "--audience",
    arg(audience),
    ...caFile === void 0 ? [] : ["--ca", arg(caFile)]
  ].join(" ");
}
function writeCaFile(env, pem) {
  const file = join(env.RUNNER_TEMP || tmpdir(), `tollgate-ca-${randomUUID()}.pem`);
  writeFileSync(file, pem.endsWith("\n") ? pem : `${pem}
`, { mode: 384 });
  return file;
}
function waitForReady(child, timeoutMs) {
  return new Promise((resolve) => {
    const finish = (message) => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      child.off("error", onError);
      resolve(message);
    };
    const onMessage = (message) => {
      if (isDaemonMessage(message)) finish(message);
    };
    const onExit = (code) => finish({
      ready: false,
      error: `the background process exited (code ${code ?? "none"}) before listening`
    });
    const onError = (error) => finish({ ready: false, error: `could not start: ${error.message}` });
    const timer = setTimeout(
      () => finish({ ready: false, error: `the background process did not listen within ${timeoutMs} ms` }),
      timeoutMs
    );
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.once("error", onError);
  });
}

// action/src/main.ts
process.exitCode = await runMain({
  daemonScript: fileURLToPath(new URL("./daemon.mjs", import.meta.url)),
  pipeScript: fileURLToPath(new URL("./pipe.mjs", import.meta.url)),
  env: process.env
});
