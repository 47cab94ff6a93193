import { request as httpRequest } from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRouteTable, normalizeRequestPath, upstreamPathFor } from "../../src/proxy/index.js";
import { devIssuerYaml, type GatewayHarness, startGatewayHarness } from "../helpers/gateway-harness.js";
import { propertySettings } from "../helpers/property.js";
import { type RecordingUpstream, startRecordingUpstream } from "../helpers/upstream.js";
import { testRoute } from "./harness.js";

// ── A model of every decoder that may stand behind tollgate ──────────────────────────────────────────
// Written independently of the implementation: an upstream, its framework and a proxy behind it may each
// percent-decode the path once more, leniently (an escape that is not one stays literal), some also read
// IIS's `%uXXXX` and fold overlong UTF-8 into ASCII. Each round's result is what some component sees.

/** One lenient round of percent-decoding: `%XX` and `%uXXXX` become the character, anything else stays. */
function decodeOnce(text: string): string {
  return text.replace(/%[uU]([0-9A-Fa-f]{4})|%([0-9A-Fa-f]{2})/g, (_escape, wide?: string, byte?: string) =>
    String.fromCharCode(Number.parseInt(wide ?? byte ?? "", 16)),
  );
}

/** What a lenient UTF-8 decoder makes of overlong sequences (`C0 AE` is `.`, `C0 AF` is `/`). */
function foldOverlongUtf8(text: string): string {
  return text.replace(
    /[\xC0\xC1][\x80-\xBF]|\xE0[\x80-\x9F][\x80-\xBF]|\xF0[\x80-\x8F][\x80-\xBF][\x80-\xBF]/g,
    (sequence) => {
      const bytes = [...sequence].map((char) => char.charCodeAt(0));
      const lead =
        bytes[0]! < 0xe0 ? bytes[0]! & 0x1f : bytes[0]! < 0xf0 ? bytes[0]! & 0x0f : bytes[0]! & 0x07;
      return String.fromCharCode(bytes.slice(1).reduce((point, byte) => (point << 6) | (byte & 0x3f), lead));
    },
  );
}

/** Every form of `text` some decoding depth may produce, `text` itself included. */
function everyDecoding(text: string): string[] {
  const seen = new Set<string>([text]);
  let round = [text];
  while (round.length > 0) {
    const next: string[] = [];
    for (const form of round) {
      const decoded = decodeOnce(form);
      for (const candidate of [decoded, foldOverlongUtf8(decoded), foldOverlongUtf8(form)]) {
        if (!seen.has(candidate)) {
          seen.add(candidate);
          next.push(candidate);
        }
      }
    }
    round = next;
  }
  return [...seen];
}

/** Dot-segment as servers read it: `.` or `..` before any Tomcat `;` parameter, query `?` or fragment `#`. */
function isDotSegment(segment: string): boolean {
  const end = segment.search(/[;?#]/);
  const name = end === -1 ? segment : segment.slice(0, end);
  return name === "." || name === "..";
}

/** Why a decoded form of a forwarded path is unsafe, or `undefined`; `slashes` is the forwarded path's count. */
function unsafeDecoding(form: string, slashes: number): string | undefined {
  if (form.includes("\\")) return "backslash";
  if (form.split("/").length - 1 !== slashes) return "new slash";
  if ([...form].some((char) => char < " " || char === "\x7f")) return "control character";
  if (form.split("/").some(isDotSegment)) return "dot-segment";
  return undefined;
}

/** The path segments an upstream resolves a decoded form to: `\` separates, `;…` dropped, `..` pops. */
function resolvedSegments(form: string): string[] {
  const path = form.split(/[?#]/, 1)[0]!;
  const stack: string[] = [];
  for (const raw of path.split(/[/\\]/)) {
    const segment = raw.split(";", 1)[0]!;
    if (segment === "" || segment === ".") continue;
    if (segment === "..") stack.pop();
    else stack.push(segment);
  }
  return stack;
}

// ── Generators: the class, broadly ───────────────────────────────────────────────────────────────────

/** Random choices consumed in order (cycling), so a spelling shrinks towards fewer and shallower escapes. */
interface Choices {
  readonly depths: readonly number[];
  readonly upper: readonly boolean[];
}

/**
 * `char` spelt so that `depth` rounds of decoding yield it: at depth d it is a `%` spelt at depth d-1
 * followed by its two hex digits, each spelt at a random depth below d in a random case. `%2e`, `%252e`,
 * `%25%32%65`, `%2525%32%65`, `%25%32%35%32e` all spell `.`. `wide` uses IIS's `%u00XX` instead.
 */
function spell(char: string, depth: number, choices: Choices, wide = false): string {
  // A cursor of its own: generated values are shared between shrink attempts and must not change.
  let next = 0;
  const spellAt = (target: string, at: number, asWide: boolean): string => {
    if (at === 0) return target;
    const hex = target
      .charCodeAt(0)
      .toString(16)
      .padStart(asWide ? 4 : 2, "0");
    let out = spellAt("%", at - 1, false) + (asWide ? "u" : "");
    for (const digit of hex) {
      const i = next++;
      const cased = choices.upper[i % choices.upper.length] ? digit.toUpperCase() : digit;
      out += spellAt(cased, choices.depths[i % choices.depths.length]! % at, false);
    }
    return out;
  };
  return spellAt(char, depth, wide);
}

const choicesArb = fc
  .record({
    depths: fc.array(fc.nat(4), { minLength: 1, maxLength: 8 }),
    upper: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
  })
  .map(({ depths, upper }): Choices => ({ depths, upper }));

/** Characters worth hiding: separators, dots, Tomcat's `;`, query and fragment, `%`, controls, hex digits. */
const hiddenChar = fc.constantFrom(
  ".",
  "/",
  "\\",
  ";",
  "?",
  "#",
  "%",
  "\x00",
  "\n",
  "\x7f",
  "2",
  "e",
  "F",
  "5",
  "c",
  "A",
);

/** Byte sequences a lenient UTF-8 decoder reads as `.`, `/` or `\` (and `é`, which is benign). */
const utf8Bytes = fc.constantFrom(
  "\xC0\xAE",
  "\xC0\xAF",
  "\xC1\x9C",
  "\xE0\x80\xAE",
  "\xF0\x80\x80\xAE",
  "\xC3\xA9",
);

const token: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom("a", "b", "x", "0", "9", "-", "_", "~", ".", ";", "%", "2", "e") },
  { weight: 4, arbitrary: fc.tuple(hiddenChar, fc.nat(4), choicesArb).map(([c, d, ch]) => spell(c, d, ch)) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(utf8Bytes, fc.integer({ min: 1, max: 4 }), choicesArb)
      .map(([bytes, d, ch]) => [...bytes].map((byte) => spell(byte, 1 + (ch.depths[0]! % d), ch)).join("")),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(hiddenChar, fc.integer({ min: 1, max: 3 }), choicesArb)
      .map(([c, d, ch]) => spell(c, d, ch, true)),
  },
);

/** A segment that some decoding depth may turn into `.`/`..`, perhaps with a `;`/`?`/`#` tail. */
const dottySegment = fc
  .tuple(
    fc.array(fc.tuple(fc.nat(4), choicesArb), { minLength: 1, maxLength: 2 }),
    fc.option(fc.tuple(fc.constantFrom(";", "?", "#"), fc.nat(3), choicesArb, fc.constantFrom("", "x"))),
  )
  .map(([dots, tail]) => {
    const head = dots.map(([d, ch]) => spell(".", d, ch)).join("");
    return tail === null ? head : head + spell(tail[0], tail[1], tail[2]) + tail[3];
  });

const segment = fc.oneof(
  dottySegment,
  fc.array(token, { maxLength: 5 }).map((tokens) => tokens.join("")),
);

const routePrefix = fc.constantFrom("", "/artifacts", "/api", "/artifacts/sub");

/** A request path of the class: a route's prefix, then segments hiding escapes of escapes; maybe a query. */
const hostilePath = fc
  .tuple(
    routePrefix,
    fc.array(segment, { minLength: 1, maxLength: 4 }),
    fc.option(fc.constantFrom("?x=1", "?")),
  )
  .map(([prefix, segments, query]) => `${prefix}/${segments.join("/")}${query ?? ""}`);

const plainSegment = fc
  .stringMatching(/^[A-Za-z0-9._~;-]{1,12}$/)
  .filter((segment) => !isDotSegment(segment) && !segment.startsWith(".;") && !segment.startsWith("..;"));

/** A path that needs no rewriting: plain unreserved segments, maybe a trailing `/` and a query. */
const plainPath = fc
  .tuple(
    fc.array(plainSegment, { maxLength: 5 }),
    fc.boolean(),
    fc.option(fc.constantFrom("?a=1&b=%2F..", "?")),
  )
  .map(([segments, trailing, query]) => {
    const path = segments.length === 0 ? "/" : `/${segments.join("/")}${trailing ? "/" : ""}`;
    return path + (query ?? "");
  });

// ── Properties ───────────────────────────────────────────────────────────────────────────────────────

describe("normalizeRequestPath: escapes of escapes (properties)", () => {
  // Decoding an accepted path any number of times never yields a slash, backslash, control character or dot-segment that was not a plain character of the request.
  it("forwards nothing that a further decoding turns into a separator, a dot-segment or a control", () => {
    fc.assert(
      fc.property(hostilePath, (raw) => {
        const target = normalizeRequestPath(raw);
        if (target === undefined) return;
        const slashes = target.path.split("/").length - 1;
        for (const form of everyDecoding(target.path)) {
          expect(
            unsafeDecoding(form, slashes),
            `${raw} → ${target.path} decodes to ${JSON.stringify(form)}`,
          ).toBe(undefined);
        }
      }),
      propertySettings(3_000),
    );
  });

  const routes = [
    { pathPrefix: "/artifacts/", stripPrefix: true, upstream: "http://upstream.test/base" },
    { pathPrefix: "/artifacts/sub", stripPrefix: true, upstream: "http://upstream.test/v1/store/" },
    { pathPrefix: "/api", stripPrefix: false, upstream: "http://upstream.test/" },
    { pathPrefix: "/api", stripPrefix: false, upstream: "http://upstream.test/base" },
    { pathPrefix: "/", stripPrefix: true, upstream: "http://upstream.test/base" },
  ].map((shape) => testRoute({ ...shape, upstream: new URL(shape.upstream) }));

  // Whatever an upstream decodes, the path it resolves stays under the route's base path (and its prefix when not stripped).
  it("keeps every decoding of the upstream path under the route's base path and prefix", () => {
    fc.assert(
      fc.property(fc.constantFrom(...routes), hostilePath, (route, raw) => {
        const target = normalizeRequestPath(raw);
        const matched = target && createRouteTable([route]).match(undefined, target.path);
        if (target === undefined || matched === undefined) return;
        // As the forwarder composes it: the upstream URL's path without its trailing `/`, then the path.
        const basePath = route.upstream.pathname.replace(/\/$/, "");
        const sent = basePath + upstreamPathFor(route, target.path);
        const required = resolvedSegments(basePath + (route.stripPrefix ? "" : route.pathPrefix));
        for (const form of everyDecoding(sent)) {
          const resolved = resolvedSegments(form);
          expect(
            resolved.slice(0, required.length),
            `${raw} → ${sent} decodes to ${JSON.stringify(form)}`,
          ).toEqual(required);
        }
      }),
      propertySettings(2_000),
    );
  });

  // Normalising an accepted path again gives the same path and query.
  it("is idempotent", () => {
    fc.assert(
      fc.property(fc.oneof(hostilePath, plainPath), (raw) => {
        const target = normalizeRequestPath(raw);
        if (target === undefined) return;
        expect(normalizeRequestPath(target.path + target.search)).toEqual(target);
      }),
      propertySettings(2_000),
    );
  });

  // A path of plain unreserved segments is accepted unchanged, query included.
  it("leaves plain paths unchanged", () => {
    fc.assert(
      fc.property(plainPath, (raw) => {
        const queryAt = raw.indexOf("?");
        const path = queryAt === -1 ? raw : raw.slice(0, queryAt);
        expect(normalizeRequestPath(raw)).toEqual({ path, search: queryAt === -1 ? "" : raw.slice(queryAt) });
      }),
      propertySettings(1_000),
    );
  });

  // Escaping any characters of a plain path once, in either hex case, normalises to the plain path (benign escapes still pass).
  it("decodes benign escapes of unreserved characters back to the plain path", () => {
    fc.assert(
      fc.property(plainPath, fc.array(fc.boolean(), { minLength: 1 }), fc.boolean(), (raw, pick, upper) => {
        const queryAt = raw.indexOf("?");
        const path = queryAt === -1 ? raw : raw.slice(0, queryAt);
        let escaped = "";
        for (let i = 0; i < path.length; i++) {
          const char = path[i]!;
          const hex = char.charCodeAt(0).toString(16);
          escaped +=
            char !== "/" && char !== ";" && pick[i % pick.length]
              ? `%${upper ? hex.toUpperCase() : hex}`
              : char;
        }
        expect(normalizeRequestPath(escaped)?.path).toBe(path);
      }),
      propertySettings(1_000),
    );
  });
});

// ── The running gateway ──────────────────────────────────────────────────────────────────────────────

/** Sends a GET with the request target exactly as given (a URL string would be normalised by the client). */
function getRaw(
  origin: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** `/artifacts/` then a `..` segment or a `/` hidden at least two decodings deep, then a target outside. */
const escapingPath = fc
  .tuple(fc.integer({ min: 2, max: 4 }), choicesArb, choicesArb, fc.boolean())
  .map(([depth, first, second, viaSlash]) =>
    viaSlash
      ? `/artifacts/..${spell("/", depth, first)}..${spell("/", depth, second)}secret`
      : `/artifacts/${spell(".", depth, first)}${spell(".", depth, second)}/secret`,
  );

describe("gateway: escapes of escapes over HTTP", () => {
  let upstream: RecordingUpstream;
  let harness: GatewayHarness;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    harness = await startGatewayHarness(
      (issuerUrl) => `${devIssuerYaml(issuerUrl)}
policies:
  p:
    claims: { repository_owner_id: 65 }
routes:
  - { name: artifacts, path_prefix: /artifacts/, strip_prefix: true, upstream: "${upstream.url}/base", allow: [p] }
`,
    );
  });

  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  it("answers 400 TG_PATH_INVALID to generated escaping paths, and the upstream never sees them", async () => {
    const token = await harness.mint();
    const paths = fc.sample(escapingPath, { seed: propertySettings(1).seed, numRuns: 4 });
    for (const path of paths) {
      const response = await getRaw(harness.url, path, { "gateway-authorization": `Bearer ${token}` });
      expect(response.status, path).toBe(400);
      expect(JSON.parse(response.body), path).toMatchObject({ error: { code: "TG_PATH_INVALID" } });
    }
    expect(upstream.seen).toEqual([]);
  });

  it("forwards a benign escaped path unchanged in meaning (the deny twin)", async () => {
    const token = await harness.mint();
    const before = upstream.seen.length;
    const response = await getRaw(harness.url, "/artifacts/caf%c3%a9/100%25off/%2541%7e.txt", {
      "gateway-authorization": `Bearer ${token}`,
    });
    expect(response.status).toBe(200);
    expect(upstream.seen.slice(before).map((seen) => seen.url)).toEqual([
      "/base/caf%C3%A9/100%25off/%2541~.txt",
    ]);
  });
});
