import { util as undiciUtil } from "undici";

/**
 * Header hygiene for both directions of the reverse proxy. Headers travel as flat `[name, value, …]`
 * lists, the form Node's `rawHeaders`, undici's `dispatch` and `res.writeHead` all accept, so duplicates
 * (several `Set-Cookie`) survive and nothing is parsed twice.
 */

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1, plus the de-facto `Keep-Alive` and `Proxy-Connection`): they
 * describe one connection and are never forwarded. Headers named in `Connection` are hop-by-hop too.
 */
export const hopByHopHeaders: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Request headers never copied from the client. Beyond hop-by-hop: `host` (the upstream gets its own
 * name; the original goes in `X-Forwarded-Host`), `expect` (the gateway answers `100-continue` itself),
 * `forwarded`, `x-real-ip` and every `x-forwarded-*` (a client must not be able to claim another address
 * or scheme; tollgate sets `X-Forwarded-*` itself), and `x-request-id` (replaced by ours). Each is
 * dropped in every spelling an upstream may read as it: any case, and `_` for `-`.
 */
const droppedRequestHeaders: ReadonlySet<string> = new Set([
  ...hopByHopHeaders,
  "host",
  "expect",
  "forwarded",
  "x-real-ip",
  "x-request-id",
]);

/** Client-sent claim headers are always removed: only tollgate may assert a caller's claims. */
const claimHeaderPrefix = "tollgate-claim-";

/** What the forwarder adds to the request sent upstream. */
export interface ForwardedHeaderValues {
  /** Lower-case names of credential headers tollgate consumed. */
  readonly consumedHeaders: readonly string[];
  /** `[header name, value]` pairs of the caller's forwarded claims, already validated. */
  readonly claimHeaders: readonly string[];
  readonly forwardedFor: string;
  readonly forwardedProto: string;
  readonly requestId: string;
}

/**
 * Builds the upstream request's header list from the client's `rawHeaders` in one pass, dropping what
 * {@link droppedRequestHeaders}, `Connection` and `consumedHeaders` name and every `Tollgate-Claim-*`,
 * then appending claims and `X-Forwarded-For`, `-Proto`, `-Host` and `X-Request-Id`. A name is dropped
 * when it is one of those read with `_` as `-` (`X_Forwarded_For`, `Tollgate-Claim_Ref`); other names
 * with `_` (`X_Custom_Thing`) pass as sent.
 *
 * @example
 * upstreamRequestHeaders(["X_Forwarded_For", "1.2.3.4", "X_Custom", "a"], values);
 * // ["x_custom", "a", "x-forwarded-for", values.forwardedFor, …]
 */
export function upstreamRequestHeaders(
  rawHeaders: readonly string[],
  values: ForwardedHeaderValues,
): string[] {
  const out: string[] = [];
  let host: string | undefined;
  let connectionTokens: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = lowerCaseName(rawHeaders[i]!);
    const value = rawHeaders[i + 1]!;
    if (droppedRequestHeaders.has(name)) {
      if (name === "host") host ??= value;
      else if (name === "connection") connectionTokens = collectTokens(value, connectionTokens);
      continue;
    }
    if (name.startsWith("x-forwarded-") || name.startsWith(claimHeaderPrefix)) continue;
    if (values.consumedHeaders.includes(name)) continue;
    // CGI, WSGI, PHP-FPM and Rack hand the application `X_Forwarded_For` and `X-Forwarded-For` under one
    // name (`HTTP_X_FORWARDED_FOR`, RFC 3875 §4.1.18), and nginx with `underscores_in_headers on` passes
    // it on: a client could set a claim or address the upstream trusts. Names without `_` (nearly all)
    // skip this; those with one are judged as the upstream will read them.
    if (name.includes("_") && isOwnedName(name.replaceAll("_", "-"), values.consumedHeaders)) continue;
    out.push(name, value);
  }
  const filtered = connectionTokens === undefined ? out : withoutNames(out, connectionTokens);
  for (const item of values.claimHeaders) filtered.push(item);
  filtered.push("x-forwarded-for", values.forwardedFor, "x-forwarded-proto", values.forwardedProto);
  if (host !== undefined) filtered.push("x-forwarded-host", host);
  filtered.push("x-request-id", values.requestId);
  return filtered;
}

/** Whether a lower-case header name (with `-`, not `_`) is one tollgate sets or consumes on a route. */
function isOwnedName(name: string, consumedHeaders: readonly string[]): boolean {
  return (
    droppedRequestHeaders.has(name) ||
    name.startsWith("x-forwarded-") ||
    name.startsWith(claimHeaderPrefix) ||
    consumedHeaders.includes(name)
  );
}

/**
 * Builds the client response's header list from the upstream's raw headers (alternating name and value
 * buffers, as sent), dropping hop-by-hop headers and those named in `Connection`. Everything else,
 * including several `Set-Cookie`, passes through in order. Names go out lower-case (HTTP field names are
 * case-insensitive); values as latin1 text, as Node writes them.
 */
export function clientResponseHeadersFromRaw(raw: readonly Buffer[]): string[] {
  return responseHeadersFromRaw(raw, false);
}

/**
 * The client's headers of an upstream's `101 Switching Protocols` to a WebSocket upgrade: as
 * {@link clientResponseHeadersFromRaw}, but `Upgrade` is kept (it names the protocol switched to) and
 * `Connection: upgrade` is sent, as RFC 9110 §7.8 requires of a 101. `Sec-WebSocket-*` pass as sent.
 *
 * @example
 * upgradeResponseHeadersFromRaw([Buffer.from("Upgrade"), Buffer.from("websocket"), …]);
 * // ["upgrade", "websocket", "sec-websocket-accept", "…", "connection", "upgrade"]
 */
export function upgradeResponseHeadersFromRaw(raw: readonly Buffer[]): string[] {
  const out = responseHeadersFromRaw(raw, true);
  out.push("connection", "upgrade");
  return out;
}

function responseHeadersFromRaw(raw: readonly Buffer[], keepUpgrade: boolean): string[] {
  const out: string[] = [];
  let connectionTokens: string[] | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = lowerCaseName(raw[i]!);
    const value = raw[i + 1]!.toString("latin1");
    if (hopByHopHeaders.has(name) && !(keepUpgrade && name === "upgrade")) {
      if (name === "connection") connectionTokens = collectTokens(value, connectionTokens);
      continue;
    }
    out.push(name, value);
  }
  if (connectionTokens === undefined) return out;
  return withoutNames(
    out,
    keepUpgrade ? connectionTokens.filter((name) => name !== "upgrade") : connectionTokens,
  );
}

/**
 * A header name in lower case. undici's `headerNameToString` answers the common names (`Content-Type`,
 * `Date`, …) from a lookup table with one shared lower-case string each, so the usual headers cost no
 * conversion and no new string, and the set lookups that follow hash an already-hashed string.
 */
const lowerCaseName: (name: string | Buffer) => string = undiciUtil.headerNameToString;

/**
 * Validated `Tollgate-Claim-<name>` headers for the claims a route forwards: strings as they are, other
 * values as JSON. A claim that is missing, or whose value would not be a clean header value (control
 * characters, CR/LF, non-ASCII), is skipped rather than sent mangled.
 */
export function claimHeaders(
  names: readonly (readonly [claim: string, header: string])[],
  claims: Readonly<Record<string, unknown>> | undefined,
): string[] {
  const out: string[] = [];
  if (claims === undefined) return out;
  for (const [claim, header] of names) {
    const value = claims[claim];
    if (value === undefined || value === null) continue;
    const textValue = typeof value === "string" ? value : JSON.stringify(value);
    if (typeof textValue === "string" && isPrintableAscii(textValue)) out.push(header, textValue);
  }
  return out;
}

/** The header name for a forwarded claim, or undefined when the claim name is not a valid header token. */
export function claimHeaderName(claim: string): string | undefined {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(claim) ? `tollgate-claim-${claim.toLowerCase()}` : undefined;
}

function isPrintableAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) return false;
  }
  return true;
}

/**
 * Adds the header names a `Connection` value lists. The usual values name only hop-by-hop options
 * (`keep-alive`, `close`), so those skip the split: this runs on nearly every response.
 */
function collectTokens(value: string, into: string[] | undefined): string[] | undefined {
  if (plainConnectionValues.has(value)) return into;
  const tokens = into ?? [];
  for (const token of value.split(",")) {
    const name = token.trim().toLowerCase();
    if (name !== "" && name !== "keep-alive" && name !== "close") tokens.push(name);
  }
  return tokens;
}

const plainConnectionValues: ReadonlySet<string> = new Set([
  "keep-alive",
  "Keep-Alive",
  "close",
  "Close",
  "upgrade",
  "Upgrade",
]);

function withoutNames(list: string[], names: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    if (!names.includes(list[i]!.toLowerCase())) out.push(list[i]!, list[i + 1]!);
  }
  return out;
}
