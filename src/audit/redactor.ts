import type { LineSecret, Redactor } from "./types.js";

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
 * GitHub credential, minted tokens), not every caller token. A caller's token is covered by the JWT shape
 * everywhere and, in its own request's audit line, by {@link lineSecretOf} (every form above).
 *
 * Text with percent-escapes is also read decoded, once and again up to {@link maxDecodingDepth} times, the
 * way layers of lenient decoders would read it: a JWT or a secret found there has the span of the
 * original text that decodes to it replaced. The span is made of the escapes and characters that encode
 * it, so replacing it keeps a JSON line valid. Text without `%` pays one `includes`.
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
    redact(text, lineSecret) {
      let out =
        combined === undefined
          ? text.includes("eyJ")
            ? text.replace(jwtShape, redactedMarker)
            : text
          : text.replace(combined, redactedMarker);
      if (lineSecret !== undefined && out.length >= lineSecret.shortest) out = replaceForms(out, lineSecret);
      if (out.includes("%")) out = redactDecoded(out, combined ?? jwtShape, lineSecret);
      return out;
    },
  };
}

/**
 * The forms of one secret that is not registered for the life of the process: the token a request
 * presented, a secret for that request's own audit line only. Computing them costs a few microseconds,
 * so the audit encoder asks for them only when a value is long enough to hold the token.
 */
export function lineSecretOf(secret: string): LineSecret {
  const forms = encodedForms(secret)
    .filter((form) => form.length >= minimumSecretLength)
    .sort((a, b) => b.length - a.length);
  return { forms, shortest: forms.reduce((least, form) => Math.min(least, form.length), secret.length) };
}

function replaceForms(text: string, secret: LineSecret): string {
  let out = text;
  for (const form of secret.forms) if (out.includes(form)) out = out.replaceAll(form, redactedMarker);
  return out;
}

/**
 * How many times percent-encoded text is decoded in search of a secret. Each decoding shortens the text,
 * so this is a bound on work rather than on what can be found: an escape nested deeper than this is not
 * one any real decoder chain unwraps.
 */
export const maxDecodingDepth = 4;

/**
 * Reads `text` percent-decoded, up to {@link maxDecodingDepth} times, and replaces with the marker every
 * span of `text` that decodes to a match of `pattern` (registered secrets and the JWT shape) or to a
 * form of `lineSecret`. Each decoded character remembers the span of `text` it came from, so a match
 * maps back to the exact escapes and characters that spell it.
 */
function redactDecoded(text: string, pattern: RegExp, lineSecret: LineSecret | undefined): string {
  const spans: [number, number][] = [];
  let level = text;
  // For each character of `level`, where it starts and ends in `text` (identity at depth 0).
  let starts: number[] | undefined;
  let ends: number[] | undefined;
  for (let depth = 0; depth < maxDecodingDepth; depth++) {
    const decoded = decodeOnce(level, starts, ends);
    if (decoded === undefined) break;
    ({ level, starts, ends } = decoded);
    const addSpan = (from: number, to: number) => spans.push([starts![from]!, ends![to - 1]!]);
    pattern.lastIndex = 0;
    for (let match = pattern.exec(level); match !== null; match = pattern.exec(level)) {
      if (match[0] === "") pattern.lastIndex += 1;
      else addSpan(match.index, match.index + match[0].length);
    }
    for (const form of lineSecret?.forms ?? []) {
      for (let at = level.indexOf(form); at !== -1; at = level.indexOf(form, at + form.length)) {
        addSpan(at, at + form.length);
      }
    }
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a[0] - b[0]);
  let out = "";
  let from = 0;
  for (const [start, end] of spans) {
    if (end <= from) continue;
    if (start >= from) out += `${text.slice(from, start)}${redactedMarker}`;
    from = end;
  }
  return out + text.slice(from);
}

/**
 * One percent-decoding of `level`, byte by byte (as Latin-1: the forms searched for are ASCII), with the
 * span of the original text each decoded character covers. `undefined` when nothing decodes.
 */
function decodeOnce(
  level: string,
  starts: readonly number[] | undefined,
  ends: readonly number[] | undefined,
): { level: string; starts: number[]; ends: number[] } | undefined {
  if (!/%[0-9A-Fa-f]{2}/.test(level)) return undefined;
  let out = "";
  const nextStarts: number[] = [];
  const nextEnds: number[] = [];
  for (let i = 0; i < level.length; ) {
    const isEscape = level.charCodeAt(i) === 0x25 && isHex(level, i + 1) && isHex(level, i + 2);
    const width = isEscape ? 3 : 1;
    out += isEscape ? String.fromCharCode(Number.parseInt(level.slice(i + 1, i + 3), 16)) : level[i];
    nextStarts.push(starts === undefined ? i : starts[i]!);
    nextEnds.push(ends === undefined ? i + width : ends[i + width - 1]!);
    i += width;
  }
  return { level: out, starts: nextStarts, ends: nextEnds };
}

function isHex(text: string, at: number): boolean {
  const code = text.charCodeAt(at);
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x46) || (code >= 0x61 && code <= 0x66);
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
