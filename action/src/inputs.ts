import { parseForwardSpec, parseGatewayUrl, parseListenAddress } from "../../src/client/index.js";
import { TollgateError } from "../../src/errors/index.js";

/** The action's inputs, validated in the main step before anything starts. */
export interface ActionInputs {
  readonly gateway: string;
  readonly audience: string;
  readonly proxy: boolean;
  readonly listen: string;
  /** `LOCAL_PORT:HOST:PORT` lines, comments and blanks removed. */
  readonly forwards: readonly string[];
  readonly exportProxyEnv: boolean;
  /** Extra `NO_PROXY` entries. */
  readonly noProxy: readonly string[];
  /** PEM text of a private CA (the `ca` input holds PEM text or a path to a PEM file). */
  readonly ca: string | undefined;
  readonly caFile: string | undefined;
  readonly verbose: boolean;
}

/**
 * An input as the runner passes it: `INPUT_<NAME>` with spaces as `_`, upper-cased (hyphens stay), as
 * GitHub's toolkit reads it.
 */
export function getInput(env: NodeJS.ProcessEnv, name: string): string {
  return (env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] ?? "").trim();
}

/** A boolean input in the YAML 1.2 core schema spellings the toolkit accepts; empty gives `fallback`. */
export function getBooleanInput(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const value = getInput(env, name);
  if (value === "") return fallback;
  if (["true", "True", "TRUE"].includes(value)) return true;
  if (["false", "False", "FALSE"].includes(value)) return false;
  throw invalid(`input ${name}: ${JSON.stringify(value)} is not true or false`);
}

/** Reads and validates every input; problems are `TG_CONFIG_INVALID` naming the input. */
export function readInputs(env: NodeJS.ProcessEnv): ActionInputs {
  const gateway = getInput(env, "gateway");
  const audience = getInput(env, "audience");
  if (gateway === "") throw invalid("input gateway is required (https://gateway.example.com)");
  if (audience === "") throw invalid("input audience is required (the gateway's configured audience)");
  parseGatewayUrl(gateway);
  const forwards = getInput(env, "forwards")
    .split(/\r?\n/)
    .map((line) => line.replace(/(^|\s)#.*$/, "").trim())
    .filter((line) => line.length > 0);
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
    noProxy: getInput(env, "no-proxy")
      .split(/[\s,]+/)
      .filter((entry) => entry.length > 0),
    ca: caIsPem ? caInput : undefined,
    caFile: caInput !== "" && !caIsPem ? caInput : undefined,
    verbose: getBooleanInput(env, "verbose", false),
  };
}

function invalid(message: string): TollgateError {
  return new TollgateError("TG_CONFIG_INVALID", message);
}
