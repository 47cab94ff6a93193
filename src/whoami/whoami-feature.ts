import type { IncomingMessage, ServerResponse } from "node:http";
import type { AuditEvent } from "../audit/types.js";
import { TollgateError } from "../errors/index.js";
import { auditAuthentication, authenticate } from "../pipeline/authenticate.js";
import { extractToken } from "../pipeline/extract-token.js";
import type {
  FeatureContext,
  FeatureDependencies,
  FeatureFactory,
  GatewayFeature,
} from "../pipeline/feature.js";
import { answeredFor, auditFailure } from "../pipeline/outcome.js";
import { sendJson } from "../pipeline/send-json.js";

/** Where the gateway answers who a token is. Under `/_tollgate/`, a prefix no route should use. */
export const whoamiPath = "/_tollgate/whoami";

/** The 200 answer of `GET /_tollgate/whoami`: the verified token's own facts, nothing of the configuration. */
export interface WhoamiAnswer {
  /** The token's `iss`. */
  readonly issuer: string;
  /** The token's `sub`. */
  readonly subject: string;
  /** The token's `repository` claim (GitHub Actions tokens carry it; others may not). */
  readonly repository?: string;
  /** When the token expires, ISO 8601. */
  readonly expires_at: string;
}

/**
 * `GET /_tollgate/whoami`: lets a workflow check, before it relies on the gateway, that the gateway takes
 * its token (the GitHub Action's main step, `tollgate proxy` and `forward` at start, `tollgate whoami`).
 * Without it a wrong `audience` surfaces later as a bare 407 from git or a silent close in psql.
 *
 * The answer says only what the token already says of itself (issuer, subject, repository, expiry): which
 * issuers and audiences the gateway trusts stay unsaid (docs/security.md: anyone may call this), and a
 * refusal is the usual 401 with the code. A 200 means authenticated, not authorized: policies are checked
 * by the route, tunnel or grant a request reaches. One audit event per call, `auth.whoami` or
 * `auth.denied`, behind the same failed-authentication throttle as every other token check.
 */
export const whoamiFeature: FeatureFactory<unknown> = (_config, dependencies) =>
  createWhoamiFeature(dependencies);

/** The whoami feature, on in every configuration (it reveals nothing a token does not already carry). */
export function createWhoamiFeature(dependencies: FeatureDependencies): GatewayFeature {
  const { clock, controls } = dependencies;

  async function answer(req: IncomingMessage, res: ServerResponse, context: FeatureContext): Promise<void> {
    const event: AuditEvent = {
      event: "auth.whoami",
      request_id: context.requestId,
      decision: "deny",
      reason: "",
      client_ip: context.clientIp,
      method: req.method ?? "",
      path: whoamiPath,
    };
    // Read once: checked here, and redacted from the audit line in every form.
    const presented = extractToken(req.headers, true);
    try {
      if (req.method !== "GET" && req.method !== "HEAD") {
        throw new TollgateError(
          "TG_METHOD_NOT_ALLOWED",
          `method ${req.method} not allowed on ${whoamiPath}`,
          {
            headers: { allow: "GET, HEAD" },
          },
        );
      }
      if (presented === undefined) throw new TollgateError("TG_TOKEN_MISSING", "no bearer token presented");
      const authentication = await authenticate(
        context.verifier,
        presented.token,
        req.socket,
        controls.authFailures,
        context.clientIp,
      );
      auditAuthentication(event, authentication);
      if (!authentication.ok) throw authentication.error;
      const { claims, expiresAtMs } = authentication.verified;
      const body: WhoamiAnswer = {
        issuer: String(claims.iss),
        subject: String(claims.sub ?? ""),
        ...(typeof claims.repository === "string" ? { repository: claims.repository } : {}),
        expires_at: new Date(expiresAtMs).toISOString(),
      };
      event.decision = "allow";
      event.reason = "token-accepted";
      event.status = 200;
      sendJson(res, 200, body, { "cache-control": "no-store", "x-request-id": context.requestId });
    } catch (error) {
      auditFailure(event, error, answeredFor(error, context.requestId));
      // The server answers with the catalogue's status, body and WWW-Authenticate.
      throw error;
    } finally {
      event.duration_ms = clock() - context.startedMs;
      context.auditLog.emit(event, presented?.token);
    }
  }

  return {
    name: "whoami",
    claimsRequest(req) {
      const url = req.url ?? "";
      return url === whoamiPath || url.startsWith(`${whoamiPath}?`);
    },
    handleRequest: answer,
  };
}
