/** The issuer of GitHub Actions OIDC tokens on github.com. */
export const githubActionsIssuer = "https://token.actions.githubusercontent.com";

// GitHub enterprise slugs are lower-case letters, digits and single inner hyphens.
const enterpriseSlug = /^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$/;
const dnsLabel = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Expands an issuer preset from the configuration into the exact issuer URL, or returns `undefined` when
 * the preset is unknown or its argument has characters that cannot belong to a slug or host name.
 *
 * @example
 * expandIssuerPreset("github"); // "https://token.actions.githubusercontent.com"
 * expandIssuerPreset("github-enterprise:octocat-inc"); // "https://token.actions.githubusercontent.com/octocat-inc"
 * expandIssuerPreset("ghes:ghe.example.com"); // "https://ghe.example.com/_services/token"
 */
export function expandIssuerPreset(preset: string): string | undefined {
  if (typeof preset !== "string") return undefined;
  if (preset === "github") return githubActionsIssuer;
  const colon = preset.indexOf(":");
  if (colon < 0) return undefined;
  const kind = preset.slice(0, colon);
  const argument = preset.slice(colon + 1);
  if (kind === "github-enterprise") {
    return enterpriseSlug.test(argument) ? `${githubActionsIssuer}/${argument}` : undefined;
  }
  if (kind === "ghes") {
    return isHostWithOptionalPort(argument) ? `https://${argument}/_services/token` : undefined;
  }
  return undefined;
}

/** The presets `expandIssuerPreset` understands, for error messages. */
export const issuerPresetForms: readonly string[] = Object.freeze([
  "github",
  "github-enterprise:<slug>",
  "ghes:<host>",
]);

function isHostWithOptionalPort(text: string): boolean {
  const match = /^([^:]+)(?::(\d{1,5}))?$/.exec(text);
  if (!match) return false;
  const host = match[1]!;
  const port = match[2];
  if (port !== undefined && (port.startsWith("0") || Number(port) > 65_535)) return false;
  if (host.length > 253) return false;
  return host.split(".").every((label) => dnsLabel.test(label));
}

/**
 * True for host names that reach only this machine: `localhost`, 127.0.0.0/8 and `::1`. Such hosts may be
 * reached over plain http (the local dev issuer); everything else must use https.
 */
export function isLoopbackHostname(hostname: string): boolean {
  const host = hostname.toLowerCase();
  if (host === "localhost" || host === "[::1]" || host === "::1") return true;
  const octets = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return octets?.slice(1).every((octet) => Number(octet) <= 255) === true;
}

/**
 * Checks a configured issuer URL. Returns a problem message, or `undefined` when it is usable: https
 * (http only for loopback hosts), no credentials, no query or fragment, written in canonical form
 * (lower-case scheme and host, no default port) because tokens are matched by exact string.
 *
 * @example
 * checkIssuerUrl("https://token.actions.githubusercontent.com"); // undefined
 * checkIssuerUrl("http://issuer.example.com"); // "issuer URL must use https …"
 */
export function checkIssuerUrl(url: string): string | undefined {
  return checkUrl(url, "issuer URL", false);
}

/**
 * Checks a JWKS URL (configured `jwks_uri` or the one from discovery): like {@link checkIssuerUrl}, but a
 * query string is allowed.
 */
export function checkKeySetUrl(url: string): string | undefined {
  return checkUrl(url, "jwks_uri", true);
}

function checkUrl(url: string, what: string, allowQuery: boolean): string | undefined {
  if (typeof url !== "string" || url.length === 0) return `${what} must be a non-empty string`;
  if (/\s/.test(url)) return `${what} must not contain whitespace`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${what} is not an absolute URL`;
  }
  if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && isLoopbackHostname(parsed.hostname))) {
    return `${what} must use https (plain http is allowed only for localhost, 127.0.0.0/8 and ::1)`;
  }
  if (parsed.username !== "" || parsed.password !== "") return `${what} must not contain credentials`;
  if (url.includes("#")) return `${what} must not have a fragment`;
  if (!allowQuery && url.includes("?")) return `${what} must not have a query string`;
  const afterOrigin = url.startsWith(parsed.origin) ? url.slice(parsed.origin.length) : undefined;
  if (afterOrigin === undefined || !(afterOrigin === "" || /^[/?]/.test(afterOrigin))) {
    return `${what} must be written in canonical form: "${parsed.origin}…" (lower-case scheme and host, no default port)`;
  }
  return undefined;
}
