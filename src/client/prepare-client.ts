import { readFile } from "node:fs/promises";
import { TollgateError } from "../errors/index.js";
import type { Clock } from "../lib/clock.js";
import { actionsTokenEndpointFromEnv, createActionsTokenSource } from "./actions-id-token.js";
import { type GatewayTarget, parseGatewayUrl } from "./gateway-target.js";
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
}

/** The parsed gateway and a warmed-up token source. */
export interface PreparedClient {
  readonly gateway: GatewayTarget;
  readonly tokens: TokenSource;
}

/**
 * Validates the settings and fetches a first token, so a missing `id-token: write` permission or a wrong
 * audience setting fails at start-up with the fix, not at the first connection.
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
  await tokens.token();
  return { gateway, tokens };
}

async function readCaFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? "unreadable";
    throw new TollgateError("TG_CONFIG_INVALID", `--ca ${file}: cannot read it (${code})`, { cause });
  }
}

/** One line for a failure of the client: the code and the detail (never a token), or "internal error". */
export function describeClientError(error: unknown): string {
  if (error instanceof TollgateError) return `${error.code}: ${error.message}`;
  return `internal error: ${error instanceof Error ? error.message : String(error)}`;
}
