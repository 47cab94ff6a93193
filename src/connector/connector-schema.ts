import type { KeyObject } from "node:crypto";
import { z } from "zod";
import { type FieldProblem, name, withCheck } from "../lib/schema-fields.js";
import { parsePublicKey } from "./connector-keys.js";

/**
 * The `connectors` section of `tollgate.yaml`: the pools of outbound-only connectors this edge accepts,
 * each with the public keys that may join it. The connector feature owns it; `config/` composes it.
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
      .describe(
        "Keys that may join this pool (several, to rotate: add the new key, move the connectors, remove the old one; a removed key's connections are closed on reload).",
      ),
  })
  .describe(
    "A pool of connectors: processes inside a private network that dial out to this edge and carry its traffic in.",
  );

/** One `connectors` entry as validated. */
export type RawConnectorPool = z.output<typeof connectorPoolSchema>;

/** A pool ready to serve: its keys parsed. */
export interface CompiledConnectorPool {
  readonly name: string;
  /** Each key as written (`ed25519:…`) and parsed. */
  readonly keys: readonly { readonly text: string; readonly key: KeyObject }[];
}

export function compileConnectorPool(raw: RawConnectorPool): CompiledConnectorPool {
  return {
    name: raw.name,
    keys: raw.public_keys.flatMap((text) => {
      const key = parsePublicKey(text);
      return key === undefined ? [] : [{ text, key }];
    }),
  };
}
