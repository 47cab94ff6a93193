import { randomUUID } from "node:crypto";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fetchJsonDocument } from "../oidc/fetch-json-document.js";
import { isLoopbackHostname } from "../oidc/issuer-presets.js";
import { devIssuerJwksUrl } from "./dev-issuer.js";
import { readKeyFile } from "./dev-issuer-keys.js";

/**
 * What a running `tollgate dev` records in its state folder, so that `tollgate dev mint` in another shell
 * signs tokens its gateway trusts.
 */
export interface DevState {
  /** The dev issuer's URL: the `iss` of minted tokens, and where its JWKS is served. */
  readonly issuerUrl: string;
  /** The private JWK the dev issuer signs with and publishes the public half of. */
  readonly keyFile: string;
  readonly audience: string;
  readonly gatewayUrl: string;
  /** The `tollgate dev` process that wrote the file; only that process removes it. */
  readonly pid: number;
}

/** Whether a `tollgate dev` is running, per its state file; when not, why not (one clause, for a message). */
export type DevStateLookup =
  | { readonly running: true; readonly state: DevState }
  | { readonly running: false; readonly reason: string };

/** How {@link findRunningDev} asks the recorded issuer whether it still serves. */
export interface DevProbeOptions {
  /** Default: the global `fetch`. Only ever called with a loopback URL. */
  fetch?: typeof fetch;
  /** How long the issuer may take to answer (default 3000 ms); a stopped (SIGSTOP) process never does. */
  timeoutMs?: number;
}

/** The state file in a state folder. */
export function devStateFile(stateDir: string): string {
  return join(stateDir, "state.json");
}

/**
 * Writes `state` to `file` (mode 0600) atomically: a `dev mint` reading at the same time sees the previous
 * file or this one, whole, never a half-written one.
 *
 * @example
 * await writeDevState(devStateFile(dir), { issuerUrl, keyFile, audience, gatewayUrl, pid: process.pid });
 */
export async function writeDevState(file: string, state: DevState): Promise<void> {
  const temporary = `${file}.${randomUUID()}.tmp`;
  await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  await rename(temporary, file);
}

/**
 * Removes `file` if it was written by process `pid`, and resolves with whether it did. Another
 * `tollgate dev` sharing the state folder may have replaced the file since; that one is left alone.
 *
 * @example
 * await removeDevStateIfOwn(devStateFile(dir), process.pid);
 */
export async function removeDevStateIfOwn(file: string, pid: number): Promise<boolean> {
  const recorded = await readDevStateFile(file);
  if (typeof recorded === "string" || recorded.pid !== pid) return false;
  // A `dev` starting in the same folder could replace the file between the read and the removal; its
  // `dev mint` callers would then be told to start it, which is wrong but safe (no token is misissued).
  await rm(file, { force: true });
  return true;
}

/**
 * Reads the state file and checks that the `tollgate dev` which wrote it is still running, by asking
 * its issuer, on loopback, for its JWKS and looking there for the key in the recorded key file.
 *
 * Why the issuer and not the recorded pid (`process.kill(pid, 0)`): the question `dev mint` must answer is
 * whether a gateway will accept what it signs, and the gateway accepts a token exactly when this issuer
 * serves this key. A pid answers a nearby question and gets it wrong both ways: after a crash the pid is
 * free to be reused by any process (then it looks alive, and EPERM from another user's process does too),
 * and a `dev` in another pid namespace (a container sharing the folder) looks dead while it serves. A
 * port left by a crash and reused by another server does not publish our `kid`, so it is not mistaken
 * for the issuer either. The cost is one loopback request, bounded by `timeoutMs`.
 *
 * @example
 * const lookup = await findRunningDev(devStateFile(dir));
 * if (!lookup.running) throw new UsageError(`no tollgate dev is running (${lookup.reason})`);
 */
export async function findRunningDev(file: string, options: DevProbeOptions = {}): Promise<DevStateLookup> {
  const state = await readDevStateFile(file);
  if (typeof state === "string") return { running: false, reason: state };
  let issuerHost: string;
  try {
    issuerHost = new URL(state.issuerUrl).hostname;
  } catch {
    return { running: false, reason: `${file} records an issuer URL that is not a URL: ${state.issuerUrl}` };
  }
  // The dev issuer only ever listens on loopback; a state file naming another host was not written by
  // `tollgate dev`, and probing it would send traffic off this machine.
  if (!isLoopbackHostname(issuerHost)) {
    return {
      running: false,
      reason: `${file} records an issuer that is not on loopback: ${state.issuerUrl}`,
    };
  }
  let keyId: string;
  try {
    keyId = (await readKeyFile(state.keyFile)).kid;
  } catch {
    return { running: false, reason: `the key file ${state.keyFile} named in ${file} cannot be read` };
  }
  const served = await probeIssuer(state.issuerUrl, keyId, options);
  if (served !== "serves-key") {
    const what = served === "no-answer" ? "does not answer" : "does not publish its key";
    return {
      running: false,
      reason: `${file} was left by one that stopped: its issuer ${state.issuerUrl} ${what}`,
    };
  }
  return { running: true, state };
}

/** The parsed state, or why there is none. */
async function readDevStateFile(file: string): Promise<DevState | string> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `no state file at ${file}` : `${file} cannot be read (${code})`;
  }
  let parsed: Partial<Record<keyof DevState, unknown>>;
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    return `${file} is not JSON`;
  }
  if (typeof parsed?.issuerUrl !== "string" || typeof parsed.keyFile !== "string") {
    return `${file} is not a tollgate dev state file`;
  }
  return parsed as DevState;
}

/** Whether the issuer answers with a JWKS holding `keyId`: only then does a gateway accept our tokens. */
async function probeIssuer(
  issuerUrl: string,
  keyId: string,
  options: DevProbeOptions,
): Promise<"serves-key" | "not-this-key" | "no-answer"> {
  let jwks: Record<string, unknown>;
  try {
    // The verifier's own document fetch: bounded in time and size, no redirects followed.
    jwks = await fetchJsonDocument(devIssuerJwksUrl(issuerUrl), {
      fetch: options.fetch ?? fetch,
      timeoutMs: options.timeoutMs ?? 3000,
      maxBytes: 64 * 1024,
    });
  } catch {
    // Refused, reset, timed out or not a key set: nothing listens there, or nothing that still works.
    return "no-answer";
  }
  const published = Array.isArray(jwks.keys) ? (jwks.keys as { kid?: unknown }[]) : [];
  return published.some((key) => key?.kid === keyId) ? "serves-key" : "not-this-key";
}
