import { z } from "zod";
import { parseDuration } from "../lib/duration.js";
import { duration, type FieldProblem, withCheck } from "../lib/schema-fields.js";
import type { CompiledForwardAuth } from "./types.js";

/**
 * `server.forward_auth` in `tollgate.yaml`: the forward-auth feature owns its schema and compiler;
 * `config/schema.ts` and `config/compile-config.ts` compose them.
 */

/** Defaults of `server.forward_auth` (the section itself is off unless written). */
export const forwardAuthDefaults = Object.freeze({
  path: "/_tollgate/auth",
  maxAgeMs: 60_000,
} as const);

/** The endpoint's path is compared with request targets as written, so it must be a plain, normal path. */
function checkEndpointPath(value: string): FieldProblem | undefined {
  const fix = `write path: ${forwardAuthDefaults.path}`;
  if (!value.startsWith("/")) return { message: 'must start with "/"', fix };
  if (value === "/" || value.endsWith("/")) return { message: 'must not end with "/"', fix };
  if (!/^(?:\/[A-Za-z0-9._~-]+)+$/.test(value) || value.split("/").some((s) => s === "." || s === "..")) {
    return { message: "must be a normalised path of letters, digits, '.', '_', '~' and '-'", fix };
  }
  return undefined;
}

export const forwardAuthSchema = z
  .strictObject({
    path: withCheck(
      z
        .string()
        .describe(
          "Where the ingress asks (nginx `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth`; Envoy `ext_authz` appends the original path to it). Requests to it are never routed. Default: /_tollgate/auth.",
        )
        .meta({ examples: ["/_tollgate/auth"] }),
      checkEndpointPath,
    ).optional(),
    max_age: duration(
      "How long the ingress may cache an allowed answer (`Cache-Control: private, max-age` and nginx's `X-Accel-Expires`), never past the token's expiry; `0s` disables. Routes with `rate_limit` or `single_use` are never cached (each request must be counted). Default: 60s.",
      "60s",
    ).optional(),
  })
  .describe(
    "Answer an ingress's forward-auth subrequests (docs/ingress.md): verify the token, find the route by the original host and path, evaluate its policies, and answer 200 with the route's `forward_claims` as `Tollgate-Claim-*` headers, or 401/403. The endpoint trusts the original-request headers (X-Original-URI, X-Forwarded-Uri, …): let only the ingress reach tollgate. Default: off.",
  );

/** `server.forward_auth` as validated. */
export type RawForwardAuth = z.output<typeof forwardAuthSchema>;

/**
 * Compiles a validated `server.forward_auth` (defaults applied).
 *
 * @example
 * compileForwardAuth({ max_age: "30s" }); // { path: "/_tollgate/auth", maxAgeMs: 30000 }
 */
export function compileForwardAuth(raw: RawForwardAuth): CompiledForwardAuth {
  return {
    path: raw.path ?? forwardAuthDefaults.path,
    // The schema has already refused text that does not parse.
    maxAgeMs: raw.max_age === undefined ? forwardAuthDefaults.maxAgeMs : (parseDuration(raw.max_age) ?? 0),
  };
}
