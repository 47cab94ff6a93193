import { z } from "zod";
import { parseDuration } from "../lib/duration.js";
import { duration, type FieldProblem, name, policyList, withCheck } from "../lib/schema-fields.js";
import { compileConcurrency, compileRateLimit, concurrencySchema, rateLimitSchema } from "../limits/index.js";
import type { AccessRule } from "../policy/types.js";
import { parseDestinationPattern } from "./destination-pattern.js";
import { type CompiledTunnel, tunnelDefaults } from "./types.js";

/**
 * One entry of `tunnels` in `tollgate.yaml`: the tunnel feature owns its schema and its compiler;
 * `config/schema.ts` and `config/compile-config.ts` compose them (policy names are resolved there).
 */

function checkDestination(value: string): FieldProblem | undefined {
  const parsed = parseDestinationPattern(value);
  return "problem" in parsed ? parsed.problem : undefined;
}

export const tunnelSchema = z
  .strictObject({
    name: name("Name of the tunnel (logs, metrics, audit events).", "databases"),
    destinations: z
      .array(
        withCheck(
          z
            .string()
            .describe(
              "`host:port`, `*.glob.host:port`, `ip:port`, `cidr:port` or `[ipv6/len]:port`; the port may be a range (`8000-8099`).",
            )
            .meta({ examples: ["db.internal:5432"] }),
          checkDestination,
        ),
      )
      .min(1, { message: "must list at least one destination" })
      .describe(
        "Destinations a CONNECT may reach: host names, globs on host names, CIDR ranges, each with a port.",
      )
      .meta({ examples: [["db.internal:5432", "*.build.internal:443", "10.20.0.0/16:22"]] }),
    allow: policyList("Policies that may open this tunnel (required; nothing is allowed by default)."),
    deny: policyList("Policies refused before `allow` is considered (deny wins).").optional(),
    idle_timeout: duration(
      "A tunnel with no byte in either direction for this long is closed. Default: 10m.",
      "10m",
      { positive: true },
    ).optional(),
    max_lifetime: duration("A tunnel is closed this long after it opened, busy or not. Default: 6h.", "6h", {
      positive: true,
    }).optional(),
    connect_timeout: duration(
      "Time to resolve the destination's name and connect to it; beyond it the caller gets 504. Default: 10s.",
      "10s",
      { positive: true },
    ).optional(),
    rate_limit: rateLimitSchema.optional(),
    concurrency: concurrencySchema.optional(),
    via: name(
      "Carry this tunnel through a pool of `connectors` (which dial out to this edge from inside the private network) instead of dialling the destination from here. The connector resolves names and applies its own allow-list. Default: dial directly.",
      "dc1",
    ).optional(),
  })
  .describe(
    "An HTTP CONNECT tunnel (and forward proxy for http:// URLs) to allow-listed private destinations.",
  );

/** One `tunnels` entry as validated, before compilation. */
export type RawTunnel = z.output<typeof tunnelSchema>;

/**
 * A tunnel ready to serve: destinations compiled by the tunnel feature's parser (the schema already
 * reported every pattern it refuses, so each parses here) and durations in milliseconds. `access` is
 * the entry's `allow`/`deny`, resolved to compiled policies by the configuration compiler.
 */
export function compileTunnel(tunnel: RawTunnel, access: AccessRule): CompiledTunnel {
  return {
    name: tunnel.name,
    destinations: tunnel.destinations.flatMap((text) => {
      const parsed = parseDestinationPattern(text);
      return "pattern" in parsed ? [parsed.pattern] : [];
    }),
    access,
    idleTimeoutMs: durationOr(tunnel.idle_timeout, tunnelDefaults.idleTimeoutMs),
    maxLifetimeMs: durationOr(tunnel.max_lifetime, tunnelDefaults.maxLifetimeMs),
    connectTimeoutMs: durationOr(tunnel.connect_timeout, tunnelDefaults.connectTimeoutMs),
    ...(tunnel.via === undefined ? {} : { via: tunnel.via }),
    ...(tunnel.rate_limit === undefined
      ? {}
      : { rateLimit: compileRateLimit(tunnel.rate_limit, `tunnel:${tunnel.name}`) }),
    ...(tunnel.concurrency === undefined
      ? {}
      : { concurrency: compileConcurrency(tunnel.concurrency, `tunnel:${tunnel.name}`) }),
  };
}

function durationOr(text: string | undefined, fallback: number): number {
  return text === undefined ? fallback : (parseDuration(text) ?? fallback);
}
