import { z } from "zod";
import { brokerSchema } from "../broker/broker-schema.js";
import { connectorPoolSchema } from "../connector/connector-schema.js";
import { forwardAuthSchema } from "../forward-auth/index.js";
import { parseDuration } from "../lib/duration.js";
import {
  duration,
  durationTypeMessage,
  type FieldProblem,
  name,
  nameMessage,
  namePattern,
  policyList,
  withCheck,
} from "../lib/schema-fields.js";
import { authFailuresSchema, rateLimitSchema, singleUseSchema } from "../limits/index.js";
import type { RawMatcher } from "../policy/types.js";
import { routeWebSocketSchema } from "../proxy/websocket-schema.js";
import { tunnelSchema } from "../tunnel/tunnel-schema.js";

/**
 * The one schema of `tollgate.yaml`. It validates the shape of every section (field-local rules such as
 * URL form and duration syntax included) and is also what `schema/tollgate.schema.json` is generated from,
 * so the validator and what editors autocomplete cannot disagree. Cross-references (policy names, issuer
 * names) and the compiled form are the business of `compile-config.ts`.
 *
 * Every field carries a description and, where it helps, `examples`: editors show both, and the problem
 * reporter uses the first example to write the `fix` of a wrong value.
 */

// Re-exported: the problem reporter and `config/index.ts` read them from here.
export { brokerActions } from "../broker/broker-schema.js";
export { durationTypeMessage };

/** HTTP methods a route may restrict itself to. CONNECT belongs to tunnels; TRACE is never forwarded. */
export const routeMethods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/** `forward_claims` entries become `Tollgate-Claim-<name>` headers, so they must be header-token safe. */
const claimNamePattern = /^[A-Za-z0-9_.-]+$/;

/**
 * An upstream is an origin plus an optional base path. Credentials are refused because tollgate would send
 * them to every caller's request; query and fragment because they cannot be merged with the caller's path
 * unambiguously. Messages never repeat the value: it may hold a password.
 */
export function checkUpstreamUrl(value: string): FieldProblem | undefined {
  const fix = "write upstream: http://host:port (optionally with a base path: http://host:port/base)";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { message: "must be an http(s) URL", fix };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return { message: "must be an http(s) URL", fix };
  if (url.hostname === "") return { message: "must name a host", fix };
  if (url.username !== "" || url.password !== "") {
    return { message: "must not contain credentials", fix: "remove the user:password@ part" };
  }
  if (value.includes("?") || value.includes("#")) {
    return { message: "must not have a query or fragment", fix: "remove everything from ? or # on" };
  }
  return undefined;
}

/** A path prefix is matched against normalised request paths, so it must itself be a normal path. */
function checkPathPrefix(value: string): FieldProblem | undefined {
  if (!value.startsWith("/")) {
    return { message: 'must start with "/"', fix: `write path_prefix: /${value}` };
  }
  if (/[\s?#\\]/.test(value) || /\p{Cc}/u.test(value)) {
    return { message: "must not contain whitespace, control characters, ?, # or \\" };
  }
  if (value.includes("//") || value.split("/").some((segment) => segment === "." || segment === "..")) {
    return { message: 'must be a normalised path (no "//", "." or ".." segments)' };
  }
  return undefined;
}

function checkHost(value: string): FieldProblem | undefined {
  if (value.includes(":"))
    return { message: "must be a host name without a port", fix: "remove the :port part" };
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(value))
    return { message: "must be a DNS host name" };
  return undefined;
}

function checkRedisUrl(value: string): FieldProblem | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { message: "must be a redis:// or rediss:// URL", fix: "write url: redis://127.0.0.1:6379" };
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    return { message: "must be a redis:// or rediss:// URL", fix: "write url: redis://127.0.0.1:6379" };
  }
  return undefined;
}

/**
 * `host:port`, `*.glob:port`, `ip:port` or `cidr:port`, with a port or port range: compiled by the tunnel
 * feature's own parser, so what `check` accepts is exactly what the gateway matches.
 */
/**
 * A claim matcher: a scalar (exact, numbers and booleans compared as strings), a list (any of), `{glob}`,
 * `{regex}` (RE2, whole value) or `{not}`. Recursive, so it is registered with an id and appears once in
 * the JSON Schema's `$defs`.
 */
export const matcherSchema: z.ZodType<RawMatcher> = z
  // Built once: a getter that built a new union per call would make JSON Schema generation recurse forever.
  .lazy(() => matcherUnion)
  .meta({
    id: "matcher",
    description:
      "A claim condition: a scalar (exact match; numbers and booleans compared as strings), a list (any of its items), { glob: … }, { regex: … } (RE2, whole value) or { not: … } (a missing claim never matches).",
  });

const matcherUnion = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.array(matcherSchema),
  z.strictObject({
    glob: z
      .string()
      .describe("`*` any run of characters except `/`, `**` any run, `?` one character.")
      .meta({ examples: ["refs/heads/release/*"] }),
  }),
  z.strictObject({
    regex: z
      .string()
      .describe("An RE2 regular expression, always matched against the whole claim value.")
      .meta({ examples: ["refs/tags/v[0-9]+\\.[0-9]+\\.[0-9]+"] }),
  }),
  z.strictObject({ not: matcherSchema }),
]);

const issuerSchema = z
  .strictObject({
    name: name("Name of this issuer; policies refer to it with `issuer:`.", "github"),
    issuer: z
      .string()
      .describe(
        "The exact `iss` of its tokens (https; http only for loopback hosts). Give either `issuer` or `preset`.",
      )
      .meta({ examples: ["https://token.actions.githubusercontent.com"] })
      .optional(),
    preset: z
      .string()
      .describe("Shorthand for `issuer`: `github`, `github-enterprise:<slug>` or `ghes:<host>`.")
      .meta({ examples: ["github", "github-enterprise:octo-corp", "ghes:github.example.com"] })
      .optional(),
    audiences: z
      .array(z.string().min(1, { message: "must not be empty" }))
      .min(1, { message: "must list at least one audience" })
      .describe("Accepted `aud` values (required): the token's `aud` must contain one of them.")
      .meta({ examples: [["tollgate.example.com"]] }),
    jwks_uri: z
      .string()
      .describe("Explicit JWKS URL. Default: `jwks_uri` from `<issuer>/.well-known/openid-configuration`.")
      .meta({ examples: ["https://token.actions.githubusercontent.com/.well-known/jwks"] })
      .optional(),
    algorithms: z
      .array(z.string())
      .describe("Accepted JWS algorithms, asymmetric only (`none` and HMAC never). Default: [RS256].")
      .meta({ examples: [["RS256"]] })
      .optional(),
    clock_skew: duration("Tolerance on `exp`, `nbf` and `iat`. Default: 30s.", "30s").optional(),
    max_token_age: duration(
      "Refuse tokens issued (`iat`) longer ago than this, even when not yet expired. Default: no limit.",
      "10m",
      { positive: true },
    ).optional(),
  })
  .describe("A trusted OIDC issuer.");

const policySchema = z
  .strictObject({
    issuer: z
      .string()
      .describe(
        "Name of the issuer whose tokens this policy accepts; optional when only one issuer is configured.",
      )
      .meta({ examples: ["github"] })
      .optional(),
    claims: z
      // Any claim name an issuer may use, URL-namespaced ones (`https://example.com/groups`) included.
      .record(z.string().min(1, { message: "a claim name cannot be empty" }), matcherSchema)
      .describe(
        "Claim conditions, all of which must hold. Must pin an owner: repository_owner_id, repository_owner, repository_id, repository, enterprise_id, enterprise, or an exact sub.",
      )
      .meta({ examples: [{ repository_owner_id: 5678, ref: "refs/heads/main" }] }),
  })
  .describe("A named set of claim conditions; all must hold.");

const routeSchema = z
  .strictObject({
    name: name("Name of the route (logs, metrics, audit events, `explain --route`).", "artifacts"),
    path_prefix: withCheck(
      z
        .string()
        .describe(
          "Requests whose normalised path starts with this prefix use this route; the longest prefix wins.",
        )
        .meta({ examples: ["/artifacts/"] }),
      checkPathPrefix,
    ),
    host: withCheck(
      z
        .string()
        .describe("When set, the request's Host (without port, case-insensitive) must equal it.")
        .meta({ examples: ["gateway.example.com"] }),
      checkHost,
    ).optional(),
    methods: z
      .array(z.enum(routeMethods))
      .min(1, { message: "must list at least one method, or be left out to allow any" })
      .describe("Allowed methods (upper case). Default: any method.")
      .meta({ examples: [["GET", "HEAD"]] })
      .optional(),
    mode: z
      .enum(["proxy", "forward_auth"])
      .describe(
        "`proxy`: tollgate forwards the route's requests to `upstream`. `forward_auth`: an ingress in front (nginx, Caddy, Envoy, Traefik) asks `server.forward_auth` about each request and proxies it itself; no `upstream`, `strip_prefix`, `timeout`, `via` or `websocket`, and requests sent to tollgate on this path get 404. Default: proxy.",
      )
      .meta({ examples: ["proxy"] })
      .optional(),
    upstream: withCheck(
      z
        .string()
        .describe(
          "http(s) origin, optionally with a base path; no credentials, query or fragment. Required with mode: proxy; not allowed with mode: forward_auth.",
        )
        .meta({ examples: ["http://artifacts.internal:8081"] }),
      checkUpstreamUrl,
    ).optional(),
    strip_prefix: z
      .boolean()
      .describe("Remove `path_prefix` from the path before forwarding. Default: false.")
      .meta({ examples: [true] })
      .optional(),
    timeout: duration("How long to wait for the upstream's response headers. Default: 30s.", "30s", {
      positive: true,
    }).optional(),
    allow: policyList("Policies that may use this route (required; nothing is allowed by default)."),
    deny: policyList("Policies refused before `allow` is considered (deny wins).").optional(),
    forward_claims: z
      .array(
        z.string().regex(claimNamePattern, { message: "claim names are letters, digits, '_', '.' or '-'" }),
      )
      .describe("Claims sent to the upstream as `Tollgate-Claim-<name>` headers. Default: none.")
      .meta({ examples: [["repository", "run_id"]] })
      .optional(),
    auth_header: z
      .enum(["gateway-authorization", "authorization"])
      .describe(
        "`gateway-authorization`: read the token from Gateway-Authorization only (Authorization passes through to the upstream). `authorization`: also accept `Authorization: Bearer`. Default: gateway-authorization.",
      )
      .optional(),
    rate_limit: rateLimitSchema.optional(),
    single_use: singleUseSchema.optional(),
    websocket: routeWebSocketSchema.optional(),
    via: name(
      "Carry this route through a pool of `connectors` (which dial out to this edge from inside the private network): `upstream` is then the address as the connector sees it, and this edge never dials it. Default: dial the upstream directly.",
      "dc1",
    ).optional(),
  })
  .describe(
    "A route: a path prefix (and host) whose requests tollgate checks, then forwards to a private upstream (mode: proxy) or answers for an ingress that forwards them (mode: forward_auth).",
  );

/** The schema of the whole file. */
export const configSchema = z
  .strictObject({
    listen: z
      .strictObject({
        host: z
          .string()
          .min(1, { message: "must not be empty" })
          .describe("Address to listen on. BIND overrides. Default: 0.0.0.0.")
          .meta({ examples: ["0.0.0.0"] })
          .optional(),
        port: z
          .number()
          .int()
          .min(0)
          .max(65_535)
          .describe("TCP port (0 picks a free port). PORT overrides. Default: 8080.")
          .meta({ examples: [8080] })
          .optional(),
        tls: z
          .strictObject({
            cert: z
              .string()
              .min(1, { message: "must not be empty" })
              .describe("PEM file: the server certificate, then any intermediates (a full chain).")
              .meta({ examples: ["/etc/tollgate/tls/fullchain.pem"] }),
            key: z
              .string()
              .min(1, { message: "must not be empty" })
              .describe("PEM file: the certificate's private key.")
              .meta({ examples: ["/etc/tollgate/tls/privkey.pem"] }),
          })
          .describe(
            "Serve HTTPS (TLS 1.2 and 1.3) instead of plain HTTP. Both files are read at start and again on " +
              "SIGHUP, so a renewed certificate is picked up without a restart. Relative paths are relative to " +
              "the working directory. Default: plain HTTP (usually behind a TLS load balancer).",
          )
          .optional(),
        auth_failures: authFailuresSchema.optional(),
      })
      .describe("Where the gateway listens.")
      .optional(),
    issuers: z.array(issuerSchema).describe("Trusted OIDC issuers.").optional(),
    policies: z
      .record(z.string().regex(namePattern, { message: nameMessage }), policySchema)
      .describe("Named trust policies, referred to by routes, tunnels and broker grants.")
      .optional(),
    routes: z.array(routeSchema).describe("Reverse-proxy routes.").optional(),
    tunnels: z.array(tunnelSchema).describe("HTTP CONNECT tunnels.").optional(),
    broker: brokerSchema.optional(),
    connectors: z
      .array(connectorPoolSchema)
      .describe(
        "Pools of outbound-only connectors (`tollgate connector`) that carry `via` routes and tunnels into private networks.",
      )
      .optional(),
    audit: z
      .strictObject({
        sink: z
          .string()
          .min(1, { message: "must not be empty" })
          .describe("`stdout` or a file path (JSON lines, appended). Default: stdout.")
          .meta({ examples: ["stdout", "/var/log/tollgate/audit.jsonl"] })
          .optional(),
        flush_interval: duration(
          "Longest time an audit line waits in memory before it is written; lines go out in batches, " +
            "sooner when 64 KiB have gathered. `0s` writes at the end of every event-loop turn. At most 1s. " +
            "Default: 20ms.",
          "20ms",
        )
          .refine((text) => (parseDuration(text) ?? 0) <= 1000, {
            message: "must be at most 1s (lines waiting longer are lost in a crash)",
          })
          .optional(),
        denials: z
          .strictObject({
            window: duration(
              "Repeated denials from one source (client address, reason, route or tunnel, event type, and " +
                "the verified token if any) within this window are written as the first denial's line plus " +
                "one line counting the rest (`repeated`). `0s` writes every denial. At most 1h. Default: 10s.",
              "10s",
            )
              .refine((text) => (parseDuration(text) ?? 0) <= 3_600_000, { message: "must be at most 1h" })
              .optional(),
            max_sources: z
              .number()
              .int()
              .min(1)
              .max(100_000)
              .describe(
                "Sources followed in one window; denials from further sources are counted per event type " +
                  "and reason, without their addresses. Bounds the audit lines a flood can write: at most " +
                  "2 × max_sources per window, plus one per event type and reason. Default: 256.",
              )
              .meta({ examples: [256] })
              .optional(),
          })
          .describe("How floods of denials are written (metrics still count every one).")
          .optional(),
      })
      .describe("Where audit events go.")
      .optional(),
    store: z
      .strictObject({
        kind: z
          .enum(["memory", "redis"])
          .describe(
            "`memory` (one instance) or `redis` (state shared by several instances). Default: memory.",
          )
          .optional(),
        url: withCheck(
          z
            .string()
            .describe("With kind: redis, the Redis URL.")
            .meta({ examples: ["redis://127.0.0.1:6379"] }),
          checkRedisUrl,
        ).optional(),
      })
      .describe("Where shared state lives (broker token cache, replay cache, rate limits).")
      .optional(),
    oidc: z
      .strictObject({
        max_token_bytes: z
          .number()
          .int()
          .min(256)
          .describe("Largest raw token accepted, in bytes. Default: 16384.")
          .meta({ examples: [16384] })
          .optional(),
        max_document_bytes: z
          .number()
          .int()
          .min(1024)
          .describe("Largest discovery or JWKS document accepted, in bytes. Default: 524288.")
          .meta({ examples: [524288] })
          .optional(),
        fetch_timeout: duration("Timeout of a discovery or JWKS fetch. Default: 5s.", "5s", {
          positive: true,
        }).optional(),
        unknown_kid_cooldown: duration(
          "Minimum time between two key set fetches triggered by an unknown `kid`. Default: 30s.",
          "30s",
        ).optional(),
        refresh_interval: duration("Background refresh interval of key sets. Default: 10m.", "10m", {
          positive: true,
        }).optional(),
        stale_keys_max_age: duration(
          "How long the last good key set keeps serving while the issuer is unreachable. Default: 24h.",
          "24h",
        ).optional(),
        token_cache_size: z
          .number()
          .int()
          .min(0)
          .describe("Maximum number of verified tokens cached (0 disables the cache). Default: 10000.")
          .meta({ examples: [10000] })
          .optional(),
      })
      .describe("Limits and timings of token verification, shared by all issuers.")
      .optional(),
    server: z
      .strictObject({
        max_header_bytes: z
          .number()
          .int()
          .min(1024)
          .max(1_048_576)
          .describe("Largest total request header size accepted, in bytes (larger: 431). Default: 16384.")
          .meta({ examples: [16384] })
          .optional(),
        shutdown_grace: duration(
          "How long a graceful stop waits for in-flight requests before closing them. Default: 10s.",
          "10s",
        ).optional(),
        trust_proxy: z
          .boolean()
          .describe("Trust X-Forwarded-For from the peer (only behind a load balancer). Default: false.")
          .meta({ examples: [false] })
          .optional(),
        metrics: z
          .boolean()
          .describe(
            "Serve Prometheus metrics at GET /metrics on the gateway's port. Default: true. Block /metrics at your load balancer if the gateway faces the internet.",
          )
          .meta({ examples: [true] })
          .optional(),
        forward_auth: forwardAuthSchema.optional(),
      })
      .describe("HTTP server limits.")
      .optional(),
  })
  .describe("tollgate configuration (tollgate.yaml).");

/** The configuration file as validated by {@link configSchema}, before compilation. */
export type RawConfig = z.output<typeof configSchema>;
/** One `routes[]` entry as written. */
export type RawRoute = NonNullable<RawConfig["routes"]>[number];
/** The `broker` section as validated (its schema and compiler are the broker's own). */
export type { RawBroker } from "../broker/broker-schema.js";
/** One `tunnels[]` entry as validated (its schema and compiler are the tunnel feature's own). */
export type { RawTunnel } from "../tunnel/tunnel-schema.js";
/** One `issuers[]` entry as written. */
export type RawIssuer = NonNullable<RawConfig["issuers"]>[number];
