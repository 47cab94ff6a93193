import type { IncomingMessage } from "node:http";
import { decodeJwt } from "jose";
import { type ErrorCode, errorCatalogue, TollgateError } from "../errors/index.js";
import type { GatewayTarget } from "./gateway-target.js";
import {
  describeConnectionError,
  errorFields,
  gatewayRequest,
  gatewayRequestOptions,
} from "./gateway-tunnel.js";

/** Where the gateway answers who a token is (`src/whoami/` on the gateway side). */
export const whoamiPath = "/_tollgate/whoami";

/** What the gateway says of a token it accepts: the token's own facts, nothing of its configuration. */
export interface GatewayIdentity {
  readonly issuer: string;
  readonly subject: string;
  readonly repository: string | undefined;
  /** ISO 8601. */
  readonly expiresAt: string;
}

/**
 * The gateway accepted the token, or could not be asked (a gateway older than `/_tollgate/whoami`, or an
 * answer that is not the gateway's): the client then goes on unchecked, and says so.
 */
export type TokenCheck =
  | { readonly checked: true; readonly identity: GatewayIdentity }
  | { readonly checked: false; readonly reason: string };

/** Limits of one whoami exchange. */
export interface TokenCheckOptions {
  /** The audience the client asked the runner for, named in the fix of a mismatch. */
  readonly audience: string;
  /** Until the whole answer (default 15 s). */
  readonly timeoutMs?: number;
}

const maxBodyBytes = 16 * 1024;

/**
 * Asks the gateway whether it takes `token` (`GET /_tollgate/whoami`), so that a wrong `audience`, an
 * issuer the gateway does not trust or a clock far off fails at start with the code and the fix, instead
 * of later as a bare 407 from git or a silent close in psql.
 *
 * Resolves with the identity the gateway verified, or `{ checked: false }` when the gateway could not say
 * (older than this endpoint). Rejects with the gateway's code (`TG_TOKEN_AUDIENCE_MISMATCH`, …) when it
 * refused the token, and with `TG_CLIENT_GATEWAY_UNAVAILABLE` when it cannot be reached. Neither the
 * token nor any form of it is ever part of a message.
 *
 * @example
 * const check = await checkTokenWithGateway(gateway, await tokens.token(), { audience: "gw.example.com" });
 * if (check.checked) log(`the gateway accepts this job's token (${check.identity.repository})`);
 */
export async function checkTokenWithGateway(
  gateway: GatewayTarget,
  token: string,
  options: TokenCheckOptions,
): Promise<TokenCheck> {
  const answer = await getWhoami(gateway, token, options.timeoutMs ?? 15_000);
  if (answer.status === 200) {
    const identity = identityOf(answer.body);
    if (identity !== undefined) return { checked: true, identity };
    return { checked: false, reason: `${gateway.origin}${whoamiPath} answered 200 without an identity` };
  }
  const fields = errorFields(answer.body);
  const requestId = fields.requestId === undefined ? "" : ` (request_id ${fields.requestId})`;
  // A refusal of the token itself (401), or of the checking (429 throttle, 503 keys unavailable): the
  // token would meet the same at the first tunnel. Anything else (404 from a gateway older than whoami,
  // a route's answer) says nothing about the token.
  if ((answer.status === 401 || answer.status === 429 || answer.status === 503) && isKnownCode(fields.code)) {
    throw new TollgateError(
      fields.code,
      `the gateway refused this job's token for audience ${JSON.stringify(options.audience)}${requestId}: ${fixFor(fields.code, options.audience, token)}`,
    );
  }
  const said = fields.code === undefined ? "" : ` ${fields.code}`;
  return {
    checked: false,
    reason: `${gateway.origin}${whoamiPath} answered ${answer.status}${said}${requestId} (a gateway older than this client does not offer it)`,
  };
}

/** What to do about each refusal, in the words of the workflow author's settings. */
function fixFor(code: ErrorCode, audience: string, token: string): string {
  switch (code) {
    case "TG_TOKEN_AUDIENCE_MISMATCH":
      // The gateway never says which audiences it accepts (nothing of its configuration reaches a caller).
      return `${JSON.stringify(audience)} is not an audience the gateway accepts. Set audience to one of the audiences of the gateway's issuer (issuers[].audiences in its configuration; ask its operator: the gateway does not disclose them)`;
    case "TG_TOKEN_ISSUER_UNKNOWN":
      return `the gateway does not trust this job's token issuer ${JSON.stringify(issuerOf(token))}; its operator must list it under issuers (preset: github for github.com)`;
    case "TG_TOKEN_EXPIRED":
    case "TG_TOKEN_NOT_YET_VALID":
    case "TG_TOKEN_TOO_OLD":
      return "the token's validity times do not fit the gateway's clock; check the clocks of the runner and the gateway";
    case "TG_TOKEN_SIGNATURE_INVALID":
    case "TG_TOKEN_KEY_UNKNOWN":
    case "TG_TOKEN_ALGORITHM_FORBIDDEN":
      return "the gateway could not verify the token's signature with its issuer's keys; its operator should check the issuer's URL and algorithms";
    case "TG_ISSUER_UNAVAILABLE":
      return "the gateway cannot load its issuer's keys right now; retry, and tell its operator";
    case "TG_RATE_LIMITED":
      return "too many failed tokens came from this address; retry after a minute";
    default:
      return errorCatalogue[code].publicMessage;
  }
}

function isKnownCode(code: string | undefined): code is ErrorCode {
  return code !== undefined && Object.hasOwn(errorCatalogue, code);
}

/** The token's `iss`, which is no secret (every token of that issuer carries it). */
function issuerOf(token: string): string {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === "string" ? iss : "(none)";
  } catch {
    return "(not a JWT)";
  }
}

function identityOf(body: Buffer): GatewayIdentity | undefined {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
    if (typeof parsed.issuer !== "string" || typeof parsed.expires_at !== "string") return undefined;
    return {
      issuer: parsed.issuer,
      subject: typeof parsed.subject === "string" ? parsed.subject : "",
      repository: typeof parsed.repository === "string" ? parsed.repository : undefined,
      expiresAt: parsed.expires_at,
    };
  } catch {
    return undefined;
  }
}

/** One GET of the whoami path: status and a bounded body. */
function getWhoami(
  gateway: GatewayTarget,
  token: string,
  timeoutMs: number,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const request = gatewayRequest(gateway, {
      ...gatewayRequestOptions(gateway),
      method: "GET",
      path: whoamiPath,
      agent: false,
      headers: {
        host: gateway.authority,
        "gateway-authorization": `Bearer ${token}`,
        accept: "application/json",
      },
    });
    const fail = (reason: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      reject(
        new TollgateError("TG_CLIENT_GATEWAY_UNAVAILABLE", `gateway ${gateway.origin}: ${reason}`, { cause }),
      );
    };
    const timer = setTimeout(() => fail("no answer in time"), timeoutMs);
    request.on("error", (error: NodeJS.ErrnoException) => fail(describeConnectionError(error), error));
    request.on("response", (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let length = 0;
      response.on("data", (chunk: Buffer) => {
        length += chunk.length;
        if (length <= maxBodyBytes) chunks.push(chunk);
      });
      response.on("error", (error: NodeJS.ErrnoException) => fail(describeConnectionError(error), error));
      response.on("end", () => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        resolve({ status: response.statusCode ?? 502, body: Buffer.concat(chunks) });
      });
    });
    request.end();
  });
}
