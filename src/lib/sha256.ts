import { createHash } from "node:crypto";

/** Hex SHA-256 of a string; used to name tokens in caches and audit events without storing them. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
