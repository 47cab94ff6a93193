/** A request target split into its normalised path and its query, as {@link normalizeRequestPath} returns it. */
export interface NormalizedTarget {
  /** Normalised absolute path: starts with `/`, no `.`/`..` segments, no empty segments except a trailing `/`. */
  readonly path: string;
  /** The query exactly as received, with its leading `?`, or `""`. */
  readonly search: string;
}

/**
 * Normalises an origin-form request target (`req.url`) so that routing and forwarding see the same path
 * and a prefix can never be escaped. Returns `undefined` for anything that must be refused (400).
 *
 * What it does, and why:
 * - Only origin-form (`/…`). Absolute-form (`http://host/…`) and `*` belong to the tunnel feature.
 * - Percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded (RFC 3986 §6.2.2.2, the
 *   decoded form is equivalent); other escapes are kept, with upper-case hex. The result is both what is
 *   matched against routes and what is sent upstream, so the two can never disagree.
 * - `.` and `..` segments are resolved after decoding, so `%2e%2e` is `..`; `/prefix/../admin` becomes
 *   `/admin` and no longer matches `/prefix/`. A `..` that would climb above `/` is refused, not clamped:
 *   no honest client sends one.
 * - Empty segments (`//`) are collapsed; a trailing `/` is kept because upstreams treat it as meaningful.
 * - Refused: encoded slashes and backslashes (`%2f`, `%5c`) and raw backslashes (servers disagree on
 *   whether they separate segments), control characters raw or encoded (`%00`–`%1f`, `%7f`), malformed
 *   escapes, `#`, anything outside visible ASCII (clients must percent-encode), `.;`/`..;` segments
 *   (Tomcat-style path parameters resolve them as dot segments, also with the `;` encoded) and `..%3F`,
 *   `..%23` (a decoder that re-parses the decoded path reads them as `..`), and overlong UTF-8 escapes
 *   (`%C0%AE`, an "encoded dot" to lenient decoders).
 * - Escapes of escapes: an upstream, its framework or a proxy behind it may decode the path again, and
 *   again. So a segment that still holds an escaped `%` after our decoding is decoded repeatedly, as the
 *   most lenient decoder would (also IIS's `%uXXXX`, which is refused), and refused if any depth yields
 *   what is refused above: a `/` or `\`, a control character, an overlong UTF-8 sequence, or a dot
 *   segment (`%252e%252e`, `%25%32%65`, `%2525%32%65`, `.%253B`, `%2500`). A literal `%` that decodes to
 *   nothing dangerous (`100%25off`, `%2541`, which a second decoding reads as `A`) is still forwarded.
 *   Refusing is the only safe answer: re-encoding the `%` would change the path the client asked for.
 * - The query is kept byte for byte; it is only checked for visible ASCII and `#`.
 *
 * @example
 * normalizeRequestPath("/artifacts/./a//b?x=1"); // { path: "/artifacts/a/b", search: "?x=1" }
 * normalizeRequestPath("/artifacts/%2e%2e/admin"); // { path: "/admin", search: "" }
 * normalizeRequestPath("/a/%2fetc"); // undefined
 * normalizeRequestPath("/a/%25%32%65%25%32%65/etc"); // undefined: decoded twice more, it is /a/../etc
 */
export function normalizeRequestPath(rawUrl: string): NormalizedTarget | undefined {
  if (rawUrl.charCodeAt(0) !== slash) return undefined;
  const queryAt = rawUrl.indexOf("?");
  const end = queryAt === -1 ? rawUrl.length : queryAt;
  let search = "";
  if (queryAt !== -1) {
    search = rawUrl.slice(queryAt);
    for (let i = 1; i < search.length; i++) {
      const code = search.charCodeAt(i);
      if (code < 0x21 || code > 0x7e || code === hash) return undefined;
    }
  }

  // Fast path: most paths need no rewriting. One scan decides; the common case allocates nothing.
  let clean = true;
  for (let i = 1; i < end; i++) {
    const code = rawUrl.charCodeAt(i);
    if (code < 0x21 || code > 0x7e || code === backslash || code === hash) return undefined;
    if (code === percent || (code === slash && rawUrl.charCodeAt(i - 1) === slash)) clean = false;
    else if (code === dot && rawUrl.charCodeAt(i - 1) === slash) clean = false;
  }
  if (clean) return { path: queryAt === -1 ? rawUrl : rawUrl.slice(0, end), search };

  const rawSegments = rawUrl.slice(1, end).split("/");
  const segments: string[] = [];
  let trailingSlash = false;
  for (let i = 0; i < rawSegments.length; i++) {
    const segment = decodeSegment(rawSegments[i]!);
    if (segment === undefined) return undefined;
    const last = i === rawSegments.length - 1;
    if (segment === "" || segment === ".") {
      trailingSlash = last;
      continue;
    }
    if (segment === "..") {
      if (segments.length === 0) return undefined;
      segments.pop();
      trailingSlash = last;
      continue;
    }
    if (dotParameter.test(segment)) return undefined;
    segments.push(segment);
    trailingSlash = false;
  }
  const joined = segments.join("/");
  const path = segments.length === 0 ? "/" : trailingSlash ? `/${joined}/` : `/${joined}`;
  return { path, search };
}

const slash = 0x2f;
const backslash = 0x5c;
const percent = 0x25;
const dot = 0x2e;
const hash = 0x23;

/** Decodes unreserved escapes in one segment; `undefined` when the segment must be refused. */
function decodeSegment(segment: string): string | undefined {
  if (!segment.includes("%")) return segment;
  let out = "";
  let from = 0;
  let escapedPercent = false;
  for (let i = segment.indexOf("%"); i !== -1; i = segment.indexOf("%", from)) {
    const value = hexByte(segment, i + 1);
    if (value === undefined) return undefined;
    if (value < 0x20 || value === 0x7f || value === slash || value === backslash) return undefined;
    if (value >= 0xc0 && isOverlongUtf8(value, segment, i + 3)) return undefined;
    if (value === percent) escapedPercent = true;
    out += segment.slice(from, i);
    out += isUnreserved(value)
      ? String.fromCharCode(value)
      : `%${hexDigits[value >> 4]}${hexDigits[value & 15]}`;
    from = i + 3;
  }
  out += segment.slice(from);
  // Only an escaped `%` can form a new escape for the next decoder: without one, `out` decodes once to
  // characters the checks above have already seen, and a second decoding changes nothing.
  return escapedPercent && !staysPlainWhenDecodedAgain(out) ? undefined : out;
}

/**
 * Decodes a forwarded segment again and again, as the upstream, its framework and any proxy behind it
 * may each do, until no escape is left; `false` as soon as a round yields something the request could
 * not have said plainly. `%2525%32%65` is forwarded as `%25252e`, which is `%252e`, `%2e`, then `.`:
 * counting `%25`s after our own decoding cannot catch it, because the hex digits may themselves be
 * escaped, and at any depth. Each round is decoded leniently (an escape that is not one stays literal),
 * which is what the most permissive decoders do; IIS's `%uXXXX` is refused outright.
 */
function staysPlainWhenDecodedAgain(segment: string): boolean {
  let text = segment;
  for (;;) {
    let decoded = "";
    let from = 0;
    for (let i = text.indexOf("%"); i !== -1; i = text.indexOf("%", Math.max(from, i + 1))) {
      const value = hexByte(text, i + 1);
      if (value === undefined) {
        const wide = (text.charCodeAt(i + 1) | 0x20) === 0x75;
        if (wide && hexByte(text, i + 2) !== undefined && hexByte(text, i + 4) !== undefined) return false;
        continue;
      }
      decoded += text.slice(from, i) + String.fromCharCode(value);
      from = i + 3;
    }
    if (from === 0) return true;
    decoded += text.slice(from);
    if (!isPlainDecoding(decoded)) return false;
    text = decoded;
  }
}

/**
 * Whether one decoding of a segment is still one harmless segment: no separator, no control character,
 * no overlong UTF-8 (now raw bytes, lead and continuation possibly decoded in different rounds), and not
 * a dot-segment, even as Tomcat (`..;x`) or a decoder that re-parses `?` and `#` would read it.
 */
function isPlainDecoding(decoded: string): boolean {
  for (let i = 0; i < decoded.length; i++) {
    const code = decoded.charCodeAt(i);
    if (code < 0x20 || code === 0x7f || code === slash || code === backslash) return false;
    if (code >= 0xc0 && isOverlongPair(code, decoded.charCodeAt(i + 1))) return false;
  }
  return !decodedDotSegment.test(decoded);
}

const hexDigits = "0123456789ABCDEF";

/**
 * `.;x`, `..;x`, also with the `;` encoded: Tomcat-style servers resolve these as dot segments. `..%3F`
 * and `..%23` too: a decoder that re-parses the decoded path reads `..?` and `..#` as `..`.
 */
const dotParameter = /^\.\.?(?:;|%3B|%3F|%23)/;

/** {@link dotParameter} and the bare dot segments, in a segment decoded once more by a later hop. */
const decodedDotSegment = /^\.\.?(?:[;?#]|$)/;

/**
 * An overlong UTF-8 lead byte followed by an escaped continuation byte: `%C0%AE` is an overlong `.`
 * that lenient decoders have turned into `..` traversals. These sequences are never valid UTF-8, and
 * in Latin-1 they read as a letter followed by a control character or symbol, not a real path.
 */
function isOverlongUtf8(lead: number, text: string, at: number): boolean {
  if (text.charCodeAt(at) !== percent) return false;
  const next = hexByte(text, at + 1);
  return next !== undefined && isOverlongPair(lead, next);
}

/** A lead byte and the continuation byte after it that together start an overlong UTF-8 sequence. */
function isOverlongPair(lead: number, next: number): boolean {
  if (lead === 0xc0 || lead === 0xc1) return next >= 0x80 && next <= 0xbf;
  if (lead === 0xe0) return next >= 0x80 && next <= 0x9f;
  if (lead === 0xf0) return next >= 0x80 && next <= 0x8f;
  return false;
}

function hexByte(text: string, at: number): number | undefined {
  const high = hexValue(text.charCodeAt(at));
  const low = hexValue(text.charCodeAt(at + 1));
  return high === -1 || low === -1 ? undefined : high * 16 + low;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === dot ||
    code === 0x5f ||
    code === 0x7e
  );
}
