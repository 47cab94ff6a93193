import { createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { TollgateError } from "../errors/index.js";

/** The privileged GitHub credential the broker mints runner tokens with. Lives only in this process. */
export type BrokerCredential =
  | { readonly kind: "pat"; readonly token: string }
  | {
      readonly kind: "app";
      /** Numeric App id (or the App's client id). */
      readonly appId: string;
      /** The private key as PKCS#8 PEM (PKCS#1 input is converted once, here). */
      readonly privateKey: string;
      /** Without it, the installation is looked up per scope owner. */
      readonly installationId?: number;
    };

/** What {@link readBrokerCredential} found. */
export interface CredentialReading {
  readonly credential: BrokerCredential;
  /** Every form of the secret to register with the redactor. */
  readonly secrets: readonly string[];
  /** Ambiguities resolved the way github-runner-token-proxy resolves them, for the start-up log. */
  readonly warnings: readonly string[];
}

/** The environment variables of github-runner-token-proxy that carry the credential. */
export const credentialVariables = [
  "GITHUB_TOKEN",
  "GITHUB_APP_ID",
  "GITHUB_APP_PRIVATE_KEY",
  "GITHUB_APP_INSTALLATION_ID",
  "GITHUB_INSTALLATION_ID",
] as const;

type CredentialVariable = (typeof credentialVariables)[number];

/**
 * Whether the environment names a broker credential (directly or as `<NAME>_FILE`): the signal that a
 * github-runner-token-proxy deployment is starting tollgate without a configuration file.
 */
export function hasCredentialEnvironment(env: NodeJS.ProcessEnv): boolean {
  return ["GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY"].some(
    (name) => nonEmpty(env[name]) || nonEmpty(env[`${name}_FILE`]),
  );
}

/**
 * Reads the broker's credential from the environment: `GITHUB_TOKEN` (a PAT), or `GITHUB_APP_ID` +
 * `GITHUB_APP_PRIVATE_KEY` (+ `GITHUB_APP_INSTALLATION_ID`, or `GITHUB_INSTALLATION_ID`, which is what
 * github-runner-token-proxy's code reads). Each may come from a file named by `<NAME>_FILE`.
 *
 * The precedence is github-runner-token-proxy's: an App with an installation id, else the PAT, else an
 * App without an installation id (tollgate then finds the installation of each scope's owner).
 *
 * @throws TollgateError `TG_CONFIG_INVALID` when nothing usable is set, a file cannot be read, or a value
 *   is malformed. Messages name the variable, never its value.
 * @example
 * const { credential, secrets } = await readBrokerCredential(process.env);
 * for (const secret of secrets) redactor.register(secret);
 */
export async function readBrokerCredential(env: NodeJS.ProcessEnv): Promise<CredentialReading> {
  const values = new Map<CredentialVariable, string>();
  for (const name of credentialVariables) {
    const value = await readVariable(env, name);
    if (value !== undefined) values.set(name, value);
  }
  const warnings: string[] = [];
  const token = values.get("GITHUB_TOKEN");
  const appId = values.get("GITHUB_APP_ID");
  const keyText = values.get("GITHUB_APP_PRIVATE_KEY");
  const installationId = readInstallationId(values);

  if (appId !== undefined && keyText !== undefined && (installationId !== undefined || token === undefined)) {
    if (token !== undefined) {
      warnings.push("both GITHUB_TOKEN and a GitHub App are configured; using the App (unset GITHUB_TOKEN)");
    }
    if (!/^(?:\d{1,20}|Iv[0-9A-Za-z.]{1,60})$/.test(appId)) {
      throw configError("GITHUB_APP_ID must be the App's numeric id (or its client id)");
    }
    const key = readPrivateKey(keyText);
    return {
      credential: {
        kind: "app",
        appId,
        privateKey: key.pkcs8,
        ...(installationId === undefined ? {} : { installationId }),
      },
      secrets: [keyText, ...key.forms],
      warnings,
    };
  }
  if (token !== undefined) {
    if (appId !== undefined || keyText !== undefined) {
      warnings.push(
        installationId === undefined && appId !== undefined && keyText !== undefined
          ? "both GITHUB_TOKEN and a GitHub App (without an installation id) are configured; using GITHUB_TOKEN, as github-runner-token-proxy does"
          : "a GitHub App is only partly configured (GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY are both needed); using GITHUB_TOKEN",
      );
    }
    if (/\s/.test(token)) throw configError("GITHUB_TOKEN must not contain whitespace");
    return {
      credential: { kind: "pat", token },
      secrets: [token, ...(keyText === undefined ? [] : [keyText])],
      warnings,
    };
  }
  if (appId !== undefined || keyText !== undefined) {
    throw configError(
      `a GitHub App needs both GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY; ${appId === undefined ? "GITHUB_APP_ID" : "GITHUB_APP_PRIVATE_KEY"} is missing`,
    );
  }
  throw configError(
    "the broker has no GitHub credential: set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (each may also be given as <NAME>_FILE)",
  );
}

async function readVariable(env: NodeJS.ProcessEnv, name: CredentialVariable): Promise<string | undefined> {
  const direct = env[name];
  const filePath = env[`${name}_FILE`];
  if (nonEmpty(direct) && nonEmpty(filePath)) {
    throw configError(`both ${name} and ${name}_FILE are set; set only one of them`);
  }
  if (nonEmpty(filePath)) {
    let text: string;
    try {
      text = await readFile(filePath, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
      throw configError(`${name}_FILE names a file that cannot be read (${code})`);
    }
    const trimmed = text.trim();
    if (trimmed === "") throw configError(`${name}_FILE names an empty file`);
    return trimmed;
  }
  // Empty counts as unset, as in github-runner-token-proxy; surrounding whitespace (a pasted newline) is noise.
  return nonEmpty(direct) ? direct.trim() : undefined;
}

function readInstallationId(values: ReadonlyMap<CredentialVariable, string>): number | undefined {
  const documented = values.get("GITHUB_APP_INSTALLATION_ID");
  const read = values.get("GITHUB_INSTALLATION_ID");
  if (documented !== undefined && read !== undefined && documented !== read) {
    throw configError(
      "GITHUB_APP_INSTALLATION_ID and GITHUB_INSTALLATION_ID are both set and differ; set only one of them",
    );
  }
  const text = documented ?? read;
  if (text === undefined) return undefined;
  const name = documented === undefined ? "GITHUB_INSTALLATION_ID" : "GITHUB_APP_INSTALLATION_ID";
  if (!/^\d{1,16}$/.test(text) || Number(text) === 0)
    throw configError(`${name} must be a positive whole number`);
  return Number(text);
}

/**
 * Accepts PKCS#1 (`BEGIN RSA PRIVATE KEY`, what GitHub downloads) and PKCS#8 (`BEGIN PRIVATE KEY`) PEM,
 * also with its line breaks written as `\n` (a common way to put a PEM in one environment variable).
 * Returns the PKCS#8 form and every text form of the key that could end up in a log line.
 */
function readPrivateKey(text: string): { pkcs8: string; forms: string[] } {
  const pem = !text.includes("\n") && text.includes("\\n") ? text.replaceAll("\\n", "\n") : text;
  let pkcs8: string;
  try {
    const key = createPrivateKey({ key: pem, format: "pem" });
    if (key.asymmetricKeyType !== "rsa") throw new Error("not RSA");
    pkcs8 = key.export({ type: "pkcs8", format: "pem" }).toString();
  } catch {
    throw configError(
      "GITHUB_APP_PRIVATE_KEY is not a PEM RSA private key (PKCS#1 'BEGIN RSA PRIVATE KEY' or PKCS#8 'BEGIN PRIVATE KEY')",
    );
  }
  return { pkcs8, forms: [pem, pkcs8, pemBody(pem), pemBody(pkcs8)] };
}

/** The base64 body of a PEM without its armour and line breaks. */
function pemBody(pem: string): string {
  return pem
    .split("\n")
    .filter((line) => !line.startsWith("-----"))
    .join("")
    .trim();
}

function nonEmpty(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== "";
}

function configError(message: string): TollgateError {
  return new TollgateError("TG_CONFIG_INVALID", message);
}
