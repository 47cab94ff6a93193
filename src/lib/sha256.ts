import { hash } from "node:crypto";

/**
 * Hex SHA-256 of a string; used to name tokens in caches and audit events without storing them.
 * `crypto.hash` (Node ≥ 20.12) is the one-shot form: a third cheaper than `createHash` for a token-sized
 * input, and this runs on every gateway request.
 */
export function sha256Hex(text: string): string {
  return hash("sha256", text, "hex");
}
