import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type Clock, systemClock } from "../lib/clock.js";
import { isLoopbackHostname } from "../oidc/issuer-presets.js";
import {
  type DevSigningKey,
  generateDevSigningKey,
  loadOrCreateKeyFile,
  type MintOptions,
  readKeyFile,
  replaceKeyFile,
  signDevToken,
} from "./dev-issuer-keys.js";

export { githubLikeClaims } from "./dev-issuer-claims.js";
export type { MintOptions } from "./dev-issuer-keys.js";

/** Where and how the dev issuer runs. */
export interface DevIssuerOptions {
  /** Loopback address only (default `127.0.0.1`): the issuer is for this machine. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Private JWK file shared with `tollgate dev mint`; loaded when present, created (0600) otherwise. */
  keyFile?: string;
  /** `kid` of a newly generated key (default: its JWK thumbprint). */
  keyId?: string;
  /** Clock for `iat` defaults, so tests can mint for a frozen verifier clock. */
  clock?: Clock;
}

/** A real OIDC issuer on loopback: discovery, JWKS, and a `mint` that signs with its key. */
export interface DevIssuer {
  /** `http://127.0.0.1:<port>`: the `iss` of every minted token. */
  readonly issuerUrl: string;
  readonly jwksUrl: string;
  /** `kid` of the current signing key. */
  readonly keyId: string;
  /** Signs a token: `iss`, `iat`, `nbf`, `exp` (5 minutes) and `jti` are stamped, then `claims` applied on top. */
  mint(claims: Record<string, unknown>, options?: MintOptions): Promise<string>;
  /** Replaces the signing key (the old one leaves the JWKS unless `keepPrevious`); updates `keyFile`. */
  rotateKey(options?: { keepPrevious?: boolean }): Promise<void>;
  /** `false` simulates an outage: every request is answered 503. */
  setAvailable(up: boolean): void;
  /** Number of JWKS requests received (answered or not), for cooldown tests. */
  requestCount(): number;
  close(): Promise<void>;
}

const jwksPath = "/.well-known/jwks";
const discoveryPath = "/.well-known/openid-configuration";

/**
 * Where the dev issuer at `issuerUrl` publishes its keys (its discovery document says the same).
 *
 * @example
 * devIssuerJwksUrl("http://127.0.0.1:4000"); // "http://127.0.0.1:4000/.well-known/jwks"
 */
export function devIssuerJwksUrl(issuerUrl: string): string {
  return `${issuerUrl}${jwksPath}`;
}

/**
 * Starts a local OIDC issuer that `tollgate dev` and the tests trust. It serves GitHub-shaped discovery
 * and JWKS documents from an RS256 key generated with jose (or loaded from `keyFile`), over plain http,
 * which the verifier accepts only because the host is loopback.
 *
 * @example
 * const issuer = await createDevIssuer();
 * const token = await issuer.mint(githubLikeClaims(), { audience: "tollgate.example.com" });
 * await issuer.close();
 */
export async function createDevIssuer(options: DevIssuerOptions = {}): Promise<DevIssuer> {
  const host = options.host ?? "127.0.0.1";
  if (!isLoopbackHostname(host)) {
    throw new Error(`the dev issuer listens on loopback only (127.0.0.0/8, ::1, localhost), not ${host}`);
  }
  const clock = options.clock ?? systemClock;
  let signingKey: DevSigningKey =
    options.keyFile === undefined
      ? await generateDevSigningKey(options.keyId)
      : await loadOrCreateKeyFile(options.keyFile, options.keyId);
  let published: DevSigningKey[] = [signingKey];
  let available = true;
  let jwksRequests = 0;
  let issuerUrl = "";

  const server = createServer((request, response) => {
    handle(request, response);
  });

  function handle(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? "/").split("?")[0];
    if (path === jwksPath) jwksRequests += 1;
    const [status, body] = answer(request.method, path);
    send(response, status, body);
  }

  function answer(method: string | undefined, path: string | undefined): [number, unknown] {
    if (!available) return [503, { error: "unavailable" }];
    if (method !== "GET" && method !== "HEAD") return [405, { error: "method not allowed" }];
    if (path === discoveryPath) return [200, discoveryDocument(issuerUrl)];
    if (path === jwksPath) return [200, { keys: published.map((key) => key.publicJwk) }];
    return [404, { error: "not found" }];
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  issuerUrl = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

  return {
    issuerUrl,
    jwksUrl: devIssuerJwksUrl(issuerUrl),
    get keyId() {
      return signingKey.kid;
    },
    mint: (claims, mintOptions = {}) => signDevToken(signingKey, issuerUrl, claims, mintOptions, clock()),
    async rotateKey(rotateOptions = {}) {
      const next = await generateDevSigningKey();
      if (options.keyFile !== undefined) await replaceKeyFile(options.keyFile, next);
      published = rotateOptions.keepPrevious ? [next, ...published] : [next];
      signingKey = next;
    },
    setAvailable(up) {
      available = up;
    },
    requestCount: () => jwksRequests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Signs a token with the key in `keyFile` for `issuerUrl`, without a server: `tollgate dev mint` uses it
 * to print tokens that the running `tollgate dev` (which created the key file) trusts.
 *
 * @example
 * await mintWithKeyFile(state.keyFile, state.issuerUrl, githubLikeClaims(), { audience: "tollgate-dev" });
 */
export async function mintWithKeyFile(
  keyFile: string,
  issuerUrl: string,
  claims: Record<string, unknown>,
  options: MintOptions = {},
  clock: Clock = systemClock,
): Promise<string> {
  return signDevToken(await readKeyFile(keyFile), issuerUrl, claims, options, clock());
}

// Shaped like https://token.actions.githubusercontent.com/.well-known/openid-configuration.
function discoveryDocument(issuerUrl: string): Record<string, unknown> {
  return {
    issuer: issuerUrl,
    jwks_uri: devIssuerJwksUrl(issuerUrl),
    subject_types_supported: ["public", "pairwise"],
    response_types_supported: ["id_token"],
    claims_supported: ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "repository_id"],
    id_token_signing_alg_values_supported: ["RS256"],
    scopes_supported: ["openid"],
  };
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  response.end(text);
}
