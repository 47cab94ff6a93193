import type { Redactor } from "./types.js";

/** What every redacted secret is replaced with. */
export const redactedMarker = "[REDACTED]";

/**
 * Secrets shorter than this are not registered: a short string (a port, `true`, a user name) would be
 * "redacted" all over unrelated text and make logs useless, while every real secret tollgate handles
 * (PATs, App keys, tokens) is far longer.
 */
const minimumSecretLength = 8;

/**
 * JWS compact serialisation: a base64url header and payload that are JSON objects, so both start with
 * `eyJ` (`{"`). Tokens are never logged on purpose; this catches mistakes, whichever token it is. The
 * signature may be empty (unsecured tokens), which costs nothing to cover as well.
 */
const jwtShape = /eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;

/**
 * Creates the redactor every logger writes through. `redact` replaces each registered secret in the
 * forms it can take in a log line: raw, JSON-escaped (once or twice), `encodeURIComponent`-encoded, base64 and base64url
 * (padded and not), and base64/base64url at each of the three byte alignments, so a secret inside a
 * larger encoded value (`Basic base64(user:token)`) is found too. Anything shaped like a JWT is replaced
 * as well.
 *
 * Every form of every secret and the JWT shape are compiled into one regular expression, so a line is
 * scanned once; a line without a match is returned as it is, without allocation. (Measured on an
 * 850-character audit line with three secrets: ~2 µs, against ~2.5 µs for one `includes` per form.)
 *
 * Registered secrets stay registered for the life of the process: register long-lived secrets (the
 * GitHub credential, minted tokens), not every caller token — those are covered by the JWT shape.
 *
 * @example
 * const redactor = createRedactor();
 * redactor.register(process.env.GITHUB_TOKEN!);
 * redactor.redact(`token=${process.env.GITHUB_TOKEN}`); // "token=[REDACTED]"
 */
export function createRedactor(): Redactor {
  const secrets = new Set<string>();
  const patterns = new Set<string>();
  // Rebuilt on register (rare); `redact` (every log line) then makes a single regex pass.
  let combined: RegExp | undefined;
  let generation = 0;

  return {
    get generation() {
      return generation;
    },
    register(secret) {
      if (typeof secret !== "string" || secret.length < minimumSecretLength || secrets.has(secret)) return;
      secrets.add(secret);
      generation += 1;
      for (const form of encodedForms(secret)) if (form.length >= minimumSecretLength) patterns.add(form);
      // Longest first: alternation takes the first alternative that matches at a position, so a longer
      // form (`…%2F…`, padded base64) is replaced whole rather than leaving a fragment behind.
      const alternatives = [...patterns].sort((a, b) => b.length - a.length).map(escapeRegExp);
      combined = new RegExp(`${alternatives.join("|")}|${jwtShape.source}`, "g");
    },
    redact(text) {
      if (combined === undefined) return text.includes("eyJ") ? text.replace(jwtShape, redactedMarker) : text;
      return text.replace(combined, redactedMarker);
    },
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Every form of `secret` that may appear in a log line. */
function encodedForms(secret: string): string[] {
  const bytes = Buffer.from(secret, "utf8");
  const urlEncoded = encodeURIComponent(secret);
  // Both hex cases: `%2F` and `%2f` decode alike, and different encoders pick different ones.
  const urlEncodedLower = urlEncoded.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase());
  // JSON-escaped once (a string value of the line) and twice (a JSON document logged as a string).
  const forms = [secret, jsonEscaped(secret), jsonEscaped(jsonEscaped(secret)), urlEncoded, urlEncodedLower];
  const base64 = bytes.toString("base64");
  const base64url = bytes.toString("base64url");
  forms.push(base64, base64.replace(/=+$/, ""), base64url);
  for (const shift of [0, 1, 2] as const) {
    const core = alignedCore(bytes, shift);
    forms.push(core, toBase64url(core));
  }
  return forms.filter((form, index) => form !== "" && forms.indexOf(form) === index);
}

/** How many leading characters of `base64(shift zero bytes + secret)` still depend on the zero bytes. */
const leadingMixedChars = [0, 2, 3] as const;

/**
 * The part of the base64 text that depends only on the secret's bytes when the secret starts `shift`
 * bytes into a 3-byte group of a larger encoded value. It appears verbatim in the encoding of any text
 * that contains the secret at such an offset.
 */
function alignedCore(bytes: Buffer, shift: 0 | 1 | 2): string {
  const shifted = Buffer.concat([Buffer.alloc(shift), bytes]);
  const encoded = shifted.toString("base64");
  // Characters fully determined by the shifted bytes: every complete 6-bit group.
  const determined = Math.floor((shifted.length * 8) / 6);
  return encoded.slice(leadingMixedChars[shift], determined);
}

function toBase64url(base64: string): string {
  return base64.replaceAll("+", "-").replaceAll("/", "_");
}

function jsonEscaped(secret: string): string {
  return JSON.stringify(secret).slice(1, -1);
}
