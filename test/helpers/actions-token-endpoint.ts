import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type DevIssuer, githubLikeClaims } from "../../src/dev/dev-issuer.js";

/**
 * A local stand-in for the GitHub Actions OIDC token endpoint (what `ACTIONS_ID_TOKEN_REQUEST_URL`
 * points at): checks the runtime bearer token, mints with the dev issuer, honours `audience` (without it,
 * GitHub's default audience, the owner's URL, is used) and answers `{"value": "<jwt>"}`.
 */
export interface ActionsTokenEndpoint {
  /** The URL as the runner gives it: with a query already (`?api-version=2.0`). */
  readonly requestUrl: string;
  /** The runtime credential the endpoint requires. */
  readonly requestToken: string;
  /** `ACTIONS_ID_TOKEN_REQUEST_URL`, `ACTIONS_ID_TOKEN_REQUEST_TOKEN` (and `GITHUB_ACTIONS=true`). */
  env(): Record<string, string>;
  /** The audience of every request answered 200, in order (`undefined`: none asked). */
  readonly audiences: (string | undefined)[];
  /** Requests refused (bad or missing runtime credential). */
  refusedCount(): number;
  /** Claims (over {@link githubLikeClaims}) and lifetime of the next tokens. */
  configure(next: { claims?: Record<string, unknown>; expiresInSeconds?: number; status?: number }): void;
  close(): Promise<void>;
}

export async function startActionsTokenEndpoint(issuer: DevIssuer): Promise<ActionsTokenEndpoint> {
  const requestToken = randomBytes(24).toString("base64url");
  const audiences: (string | undefined)[] = [];
  let refused = 0;
  let claims: Record<string, unknown> = {};
  let expiresInSeconds = 300;
  let forcedStatus: number | undefined;

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.method !== "GET" || url.pathname !== "/_apis/actions/idtoken") return send(404, {});
      if (req.headers.authorization !== `Bearer ${requestToken}`) {
        refused += 1;
        return send(401, { message: "unauthorized" });
      }
      if (forcedStatus !== undefined) return send(forcedStatus, { message: "forced" });
      if (url.searchParams.get("api-version") !== "2.0") return send(400, { message: "api-version" });
      const audience = url.searchParams.get("audience") ?? undefined;
      audiences.push(audience);
      const base = githubLikeClaims(claims);
      const value = await issuer.mint(base, {
        audience: audience ?? `https://github.com/${String(base.repository_owner)}`,
        expiresInSeconds,
      });
      send(200, { count: 1, value });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const requestUrl = `http://127.0.0.1:${port}/_apis/actions/idtoken?api-version=2.0`;
  return {
    requestUrl,
    requestToken,
    env: () => ({
      ACTIONS_ID_TOKEN_REQUEST_URL: requestUrl,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken,
      GITHUB_ACTIONS: "true",
    }),
    audiences,
    refusedCount: () => refused,
    configure(next) {
      if (next.claims !== undefined) claims = next.claims;
      if (next.expiresInSeconds !== undefined) expiresInSeconds = next.expiresInSeconds;
      forcedStatus = next.status;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
