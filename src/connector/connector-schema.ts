import type { KeyObject } from "node:crypto";
import { z } from "zod";
import { type FieldProblem, name, policyList, withCheck } from "../lib/schema-fields.js";
import type { AccessRule } from "../policy/index.js";
import { parsePublicKey } from "./connector-keys.js";

/**
 * The `connectors` section of `tollgate.yaml`: the pools of outbound-only connectors this edge accepts,
 * each with the public keys that may join it, the policies a connector's platform OIDC token (a Kubernetes
 * service-account token) must meet to join it instead, or both. The connector feature owns it; `config/`
 * composes it (and checks that a pool has at least one of the two, and that the policies exist).
 */

function checkPublicKey(value: string): FieldProblem | undefined {
  if (parsePublicKey(value) !== undefined) return undefined;
  return {
    message:
      "must be an Ed25519 public key as `tollgate connector keygen` prints it: ed25519:<43 base64url characters>",
    fix: "run tollgate connector keygen --out connector.key and paste the last word it prints",
  };
}

export const connectorPoolSchema = z
  .strictObject({
    name: name("Name of the pool; routes and tunnels send traffic through it with `via: NAME`.", "dc1"),
    public_keys: z
      .array(
        withCheck(
          z
            .string()
            .describe("A connector's public key, as `tollgate connector keygen` prints it.")
            .meta({ examples: ["ed25519:9m2aIhXTzvX0VOwlTn6tHmk1mVx8HTXqi3Hyw8sLkGQ"] }),
          checkPublicKey,
        ),
      )
      .min(1, { message: "must list at least one public key" })
      .optional()
      .describe(
        "Keys that may join this pool (several, to rotate: add the new key, move the connectors, remove the old one; a removed key's connections are closed on reload).",
      ),
    allow: policyList(
      "Policies of which one must admit a connector's OIDC token (`tollgate connector --token-file`, e.g. a Kubernetes projected service-account token) for it to join this pool without a key; the token is verified against `issuers` like a workflow's. At least one of `public_keys` and `allow` is required.",
    ).optional(),
    deny: policyList("Policies refused before `allow` is considered (deny wins).").optional(),
  })
  .describe(
    "A pool of connectors: processes inside a private network that dial out to this edge and carry its traffic in.",
  );

/** One `connectors` entry as validated. */
export type RawConnectorPool = z.output<typeof connectorPoolSchema>;

/** A pool ready to serve: its keys parsed. */
export interface CompiledConnectorPool {
  readonly name: string;
  /** Each key as written (`ed25519:…`) and parsed (none when the pool takes only tokens). */
  readonly keys: readonly { readonly text: string; readonly key: KeyObject }[];
  /** `allow` resolved to compiled policies; absent when the pool takes only keys. */
  readonly tokenAccess?: AccessRule;
}

/**
 * A validated pool, ready to serve. `tokenAccess` is the pool's `allow` as `config/` resolved it.
 *
 * @example
 * compileConnectorPool({ name: "dc1", allow: ["k8s-connectors"] }, { allow: [policy], deny: [] });
 */
export function compileConnectorPool(raw: RawConnectorPool, tokenAccess?: AccessRule): CompiledConnectorPool {
  return {
    name: raw.name,
    keys: (raw.public_keys ?? []).flatMap((text) => {
      const key = parsePublicKey(text);
      return key === undefined ? [] : [{ text, key }];
    }),
    ...(tokenAccess === undefined ? {} : { tokenAccess }),
  };
}
