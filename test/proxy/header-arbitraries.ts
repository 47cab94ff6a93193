import fc from "fast-check";

/**
 * Generators and a model for the header-name property tests (routes in `headers.property.test.ts`, the
 * forward proxy in `test/tunnel/forward-http.property.test.ts`). The model is written out here, not
 * imported from `src/`, so that a name forgotten in the implementation is caught rather than copied.
 */

/**
 * A header name as CGI, WSGI, PHP-FPM and Rack hand it to the application: upper case, `-` as `_`
 * (RFC 3875 §4.1.18, PEP 3333, the Rack spec), so `X_Forwarded_For` and `X-Forwarded-For` are one name.
 */
export function cgiSpelling(name: string): string {
  return name.toUpperCase().replaceAll("-", "_");
}

/** Names a party owns: exact names plus name prefixes (`x-forwarded-`), all lower case with `-`. */
export interface OwnedNames {
  readonly exact: readonly string[];
  readonly prefixes: readonly string[];
}

/** Whether `name`, read the CGI way, is one of `owned`. */
export function isOwned(name: string, owned: OwnedNames): boolean {
  const cgi = cgiSpelling(name);
  return (
    owned.exact.some((exact) => cgiSpelling(exact) === cgi) ||
    owned.prefixes.some((prefix) => cgi.startsWith(cgiSpelling(prefix)))
  );
}

/** Hop-by-hop names (RFC 9110 §7.6.1, plus `Keep-Alive` and `Proxy-Connection`). */
export const hopByHopNames = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
] as const;

const letters = "abcdefghijklmnopqrstuvwxyz";
/** RFC 9110 `tchar`s a client might use in a header name, `-` and `_` weighted up. */
const nameChar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...letters, ...letters.toUpperCase()) },
  { weight: 1, arbitrary: fc.constantFrom(..."0123456789") },
  { weight: 2, arbitrary: fc.constantFrom("-", "_") },
  { weight: 1, arbitrary: fc.constantFrom(".", "~", "!") },
);

/** A header-name tail of `min` to `max` token characters. */
function nameTail(minLength: number, maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: nameChar, minLength, maxLength });
}

/** `name` as a client might spell it to slip past an exact match: each `-` as `-` or `_`, each letter in either case. */
export function spelledLike(name: string): fc.Arbitrary<string> {
  return fc
    .tuple(
      ...[...name].map((char) =>
        char === "-"
          ? fc.constantFrom("-", "_")
          : char.toLowerCase() !== char.toUpperCase()
            ? fc.constantFrom(char.toLowerCase(), char.toUpperCase())
            : fc.constant(char),
      ),
    )
    .map((chars) => chars.join(""));
}

/** Any name `owned` holds, in any CGI-equivalent spelling; a prefix gets a random tail (maybe empty). */
export function ownedNameIn(owned: OwnedNames): fc.Arbitrary<string> {
  const exact = fc.constantFrom(...owned.exact).chain(spelledLike);
  if (owned.prefixes.length === 0) return exact;
  const prefixed = fc
    .tuple(fc.constantFrom(...owned.prefixes).chain(spelledLike), nameTail(0, 12))
    .map(([prefix, tail]) => prefix + tail);
  return fc.oneof(exact, prefixed);
}

/**
 * Header names that are not in `notOwned` read the CGI way: random tokens (underscores included),
 * fixed names that repeat (so duplicates occur), and near misses of owned names (`X_Forwarded`,
 * `Tollgate-Claims`, `hosts`), which must not be caught by an over-broad rule.
 */
export function benignNameOutside(notOwned: OwnedNames): fc.Arbitrary<string> {
  const nearMiss = fc
    .tuple(
      fc.constantFrom(...notOwned.exact, ...notOwned.prefixes.map((prefix) => prefix.slice(0, -1))),
      fc.constantFrom("", "s", "x", "2", "_", ".", "-"),
      fc.boolean(),
    )
    .chain(([name, extra, before]) => spelledLike(before ? extra + name : name + extra));
  return fc
    .oneof(
      { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...letters), nameTail(0, 16)).map(([a, b]) => a + b) },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          "X_Custom_Thing",
          "x_api_key",
          "Cookie",
          "Accept",
          "X-Keep",
          "content-type",
          "User_Agent",
          "X-Listed-Hop",
        ),
      },
      { weight: 2, arbitrary: nearMiss },
    )
    .filter((name) => !isOwned(name, notOwned) && name.toLowerCase() !== "close");
}

/** A header value a client can send: printable ASCII, possibly empty. */
export const headerValue: fc.Arbitrary<string> = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
  maxLength: 12,
});

/** A `Connection` value: options, owned names in any spelling and benign names, comma-separated. */
export function connectionValue(owned: OwnedNames): fc.Arbitrary<string> {
  return fc
    .array(
      fc.oneof(
        fc.constantFrom("keep-alive", "close", "Keep-Alive", "X-Listed-Hop", "x_custom_thing"),
        ownedNameIn(owned),
      ),
      { minLength: 1, maxLength: 3 },
    )
    .map((tokens) => tokens.join(", "));
}

/**
 * A client's raw header list (`[name, value, …]`, as Node's `rawHeaders`): names from `ownedNames`
 * interleaved with names from `benignNames`, duplicates included; a `Connection` or `Proxy-Connection`
 * header carries a {@link connectionValue} listing names of `owned`.
 */
export function clientRawHeaders(
  ownedNames: fc.Arbitrary<string>,
  benignNames: fc.Arbitrary<string>,
  owned: OwnedNames,
): fc.Arbitrary<string[]> {
  const entry = fc
    .tuple(fc.oneof(ownedNames, benignNames), headerValue, connectionValue(owned))
    .map(([name, value, connection]) =>
      /^(proxy-)?connection$/i.test(name) ? [name, connection] : [name, value],
    );
  return fc.array(entry, { maxLength: 24 }).map((entries) => entries.flat());
}

/** The names a `Connection` header (or, where `alsoProxyConnection`, `Proxy-Connection`) lists, lower case. */
export function connectionListed(rawHeaders: readonly string[], alsoProxyConnection: boolean): Set<string> {
  const listed = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (name !== "connection" && !(alsoProxyConnection && name === "proxy-connection")) continue;
    for (const token of rawHeaders[i + 1]!.split(",")) listed.add(token.trim().toLowerCase());
  }
  return listed;
}

/** `[name, value]` pairs of a flat header list. */
export function pairs(list: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < list.length; i += 2) out.push([list[i]!, list[i + 1]!]);
  return out;
}
