import { readFile } from "node:fs/promises";
import { TollgateError } from "../errors/index.js";
import type { Clock } from "../lib/clock.js";
import { actionsTokenEndpointFromEnv, createActionsTokenSource } from "./actions-id-token.js";
import { type GatewayTarget, parseGatewayUrl } from "./gateway-target.js";
import { checkTokenWithGateway, type TokenCheck } from "./gateway-whoami.js";
import type { TokenSource } from "./token-source.js";

/** What `proxy`, `forward` and the action's background process start from. */
export interface ClientSettings {
  readonly gatewayUrl: string;
  readonly audience: string;
  /** A PEM file of extra CA certificates for an https gateway. */
  readonly caFile?: string;
  /** The same as PEM text (the action's `ca` input). */
  readonly caPem?: string;
  readonly env: NodeJS.ProcessEnv;
  readonly fetch?: typeof fetch;
  readonly clock?: Clock;
  /**
   * Ask the gateway whether it takes the first token (`GET /_tollgate/whoami`; default true). The action's
   * background process passes false: its main step has asked already.
   */
  readonly checkToken?: boolean;
}

/** The parsed gateway and a warmed-up token source. */
export interface PreparedClient {
  readonly gateway: GatewayTarget;
  readonly tokens: TokenSource;
  /** What the gateway said of the first token; `undefined` when not asked. */
  readonly check: TokenCheck | undefined;
}

/**
 * Validates the settings, fetches a first token and asks the gateway whether it takes it, so a missing
 * `id-token: write` permission, a wrong audience or an issuer the gateway does not trust fails at start-up
 * with the code and the fix, not at the first connection. A gateway that cannot be reached fails too
 * (`TG_CLIENT_GATEWAY_UNAVAILABLE`); one older than `/_tollgate/whoami` is reported in `check`.
 *
 * @example
 * const { gateway, tokens } = await prepareClient({ gatewayUrl, audience, env: process.env });
 */
export async function prepareClient(settings: ClientSettings): Promise<PreparedClient> {
  if (settings.audience.trim().length === 0) {
    throw new TollgateError(
      "TG_CONFIG_INVALID",
      "an audience is required: the gateway's configured audience",
    );
  }
  const ca =
    settings.caPem ?? (settings.caFile === undefined ? undefined : await readCaFile(settings.caFile));
  if (ca !== undefined && !ca.includes("-----BEGIN CERTIFICATE-----")) {
    throw new TollgateError(
      "TG_CONFIG_INVALID",
      "the CA is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
    );
  }
  const gateway = parseGatewayUrl(settings.gatewayUrl, ca === undefined ? {} : { ca });
  const tokens = createActionsTokenSource({
    endpoint: actionsTokenEndpointFromEnv(settings.env),
    audience: settings.audience,
    ...(settings.fetch ? { fetch: settings.fetch } : {}),
    ...(settings.clock ? { clock: settings.clock } : {}),
  });
  const token = await tokens.token();
  const check =
    settings.checkToken === false
      ? undefined
      : await checkTokenWithGateway(gateway, token, { audience: settings.audience });
  return { gateway, tokens, check };
}

async function readCaFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? "unreadable";
    throw new TollgateError("TG_CONFIG_INVALID", `--ca ${file}: cannot read it (${code})`, { cause });
  }
}

/** One line for what the gateway said of the token at start (stderr of the CLI, the action's log). */
export function describeTokenCheck(check: TokenCheck): string {
  if (!check.checked) return `the token was not checked in advance: ${check.reason}`;
  const { identity } = check;
  const repository = identity.repository === undefined ? "" : ` of ${identity.repository}`;
  return `the gateway accepts this job's token${repository} (issuer ${identity.issuer}, subject ${identity.subject})`;
}

/** One line for a failure of the client: the code and the detail (never a token), or "internal error". */
export function describeClientError(error: unknown): string {
  if (error instanceof TollgateError) return `${error.code}: ${error.message}`;
  return `internal error: ${error instanceof Error ? error.message : String(error)}`;
}
