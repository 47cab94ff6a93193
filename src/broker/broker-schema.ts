import { z } from "zod";
import { checkHttpUrl, duration, policyList, withCheck } from "../lib/schema-fields.js";
import { rateLimitSchema, singleUseSchema } from "../limits/index.js";

/**
 * The `broker` section of `tollgate.yaml`: the broker owns its schema and compiler
 * (compile-broker.ts); `config/schema.ts` composes it into the file's schema.
 */

/** Broker actions a grant may allow. */
export const brokerActions = ["register", "remove", "jitconfig"] as const;

const grantSchema = z
  .strictObject({
    allow: policyList("Policies this grant applies to (required)."),
    deny: policyList("Policies refused before `allow` is considered (deny wins).").optional(),
    actions: z
      .array(z.enum(brokerActions))
      .min(1, { message: "must list at least one action" })
      .describe("Broker endpoints the caller may use: register, remove, jitconfig.")
      .meta({ examples: [["register", "remove", "jitconfig"]] }),
    scopes: z
      .array(z.string().min(1, { message: "must not be empty" }))
      .min(1, { message: "must list at least one scope" })
      .describe(
        "Scopes the caller may ask for: a literal (`org`, `org/repo`, `enterprise:slug`), `match:<RE2>`, with claims in braces (`{repository}`) replaced by the caller's own.",
      )
      .meta({ examples: [["{repository}"]] }),
    rate_limit: rateLimitSchema.optional(),
    single_use: singleUseSchema.optional(),
  })
  .describe("Which callers may use which broker actions on which scopes.");

export const brokerSchema = z
  .strictObject({
    authorization: z
      .enum(["oidc", "none"])
      .describe(
        "`oidc`: callers present a token and a grant must allow the action and scope. `none`: the platform in front authorizes (tollgate warns). Default: oidc.",
      )
      .optional(),
    github: z
      .strictObject({
        api_url: withCheck(
          z
            .string()
            .describe(
              "GitHub API base URL (GHES: https://HOST/api/v3). GITHUB_API_URL overrides. Default: https://api.github.com.",
            )
            .meta({ examples: ["https://api.github.com"] }),
          checkHttpUrl,
        ).optional(),
        timeout: duration(
          "Deadline of one GitHub API call, connection included; idempotent calls are retried at most twice. Default: 10s.",
          "10s",
          { positive: true },
        ).optional(),
      })
      .describe(
        "The GitHub API. Credentials come only from the environment: GITHUB_TOKEN, or GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY (+ GITHUB_APP_INSTALLATION_ID), or their *_FILE forms.",
      )
      .optional(),
    allowed_scopes: z
      .array(z.string().min(1, { message: "must not be empty" }))
      .describe(
        "Scopes the broker serves at all: literals or `match:<RE2>`. ALLOWED_SCOPES overrides. Default: none.",
      )
      .meta({ examples: [["octo-org", "match:octo-org/.*"]] })
      .optional(),
    denied_scopes: z
      .array(z.string().min(1, { message: "must not be empty" }))
      .describe("Scopes always refused (deny wins): literals or `match:<RE2>`. DENIED_SCOPES overrides.")
      .meta({ examples: [["octo-org/payroll"]] })
      .optional(),
    grants: z.array(grantSchema).describe("With `authorization: oidc`: who may do what.").optional(),
  })
  .describe("The runner token broker (registration, removal and JIT runner configs).");

/** The `broker` section as validated, before compilation. */
export type RawBroker = z.output<typeof brokerSchema>;
