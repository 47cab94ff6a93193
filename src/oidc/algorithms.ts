/**
 * Asymmetric JWS algorithms an issuer may be configured with. HMAC (`HS*`) is left out on purpose: an
 * HMAC "key" would be the issuer's public key, which everyone has (the classic RS256→HS256 confusion).
 */
export const supportedAlgorithms: readonly string[] = Object.freeze([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
]);

const supported = new Set(supportedAlgorithms);

/** True for `none` and every HMAC algorithm: never acceptable for a token from a third-party issuer. */
export function isForbiddenAlgorithm(alg: string): boolean {
  return alg.toLowerCase() === "none" || /^HS\d+$/i.test(alg);
}

/**
 * Checks an issuer's algorithm allow-list at configuration time. Returns a problem message (naming the
 * offending entry and the fix) or `undefined` when the list is acceptable.
 *
 * @example
 * validateAlgorithms(["RS256"]); // undefined
 * validateAlgorithms(["HS256"]); // 'algorithm "HS256" is forbidden: …'
 */
export function validateAlgorithms(list: readonly string[]): string | undefined {
  if (!Array.isArray(list) || list.length === 0) {
    return "algorithms must list at least one algorithm, e.g. [RS256]";
  }
  const seen = new Set<string>();
  for (const alg of list) {
    if (typeof alg !== "string") return "algorithms must be strings, e.g. [RS256]";
    if (isForbiddenAlgorithm(alg)) {
      return `algorithm "${alg}" is forbidden: tokens must be signed with the issuer's private key; use one of ${supportedAlgorithms.join(", ")}`;
    }
    if (!supported.has(alg)) {
      return `algorithm "${alg}" is not supported; use one of ${supportedAlgorithms.join(", ")}`;
    }
    if (seen.has(alg)) return `algorithm "${alg}" is listed twice`;
    seen.add(alg);
  }
  return undefined;
}
