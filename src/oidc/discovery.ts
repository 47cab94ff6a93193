import { TollgateError } from "../errors/index.js";
import { type DocumentFetchOptions, fetchJsonDocument } from "./fetch-json-document.js";
import { checkKeySetUrl } from "./issuer-presets.js";

/** Where OIDC discovery lives for an issuer (OpenID Connect Discovery 1.0, section 4). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
}

/**
 * Reads `<issuer>/.well-known/openid-configuration` and returns its `jwks_uri`. The document's `issuer`
 * must equal the configured issuer exactly (discovery spec, section 4.3): otherwise a compromised or
 * misconfigured host could hand us another issuer's keys. The `jwks_uri` must be https (http only on
 * loopback).
 *
 * @example
 * const jwksUri = await discoverKeySetUrl("https://token.actions.githubusercontent.com", fetchOptions);
 */
export async function discoverKeySetUrl(issuer: string, options: DocumentFetchOptions): Promise<string> {
  const url = discoveryUrl(issuer);
  const document = await fetchJsonDocument(url, options);
  if (document.issuer !== issuer) {
    const found =
      typeof document.issuer === "string" ? JSON.stringify(document.issuer.slice(0, 200)) : "none";
    throw new TollgateError(
      "TG_ISSUER_UNAVAILABLE",
      `discovery document at ${url} names issuer ${found}, not the configured ${JSON.stringify(issuer)}`,
    );
  }
  const jwksUri = document.jwks_uri;
  if (typeof jwksUri !== "string") {
    throw new TollgateError("TG_ISSUER_UNAVAILABLE", `discovery document at ${url} has no jwks_uri`);
  }
  const problem = checkKeySetUrl(jwksUri);
  if (problem !== undefined) {
    throw new TollgateError("TG_ISSUER_UNAVAILABLE", `discovery document at ${url}: ${problem}`);
  }
  return jwksUri;
}
