import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { claimHeaderName, upstreamRequestHeaders } from "../../src/proxy/headers.js";
import { propertySettings } from "../helpers/property.js";
import {
  benignNameOutside,
  clientRawHeaders,
  connectionListed,
  headerValue,
  hopByHopNames,
  isOwned,
  type OwnedNames,
  ownedNameIn,
  pairs,
} from "./header-arbitraries.js";

/**
 * Header hygiene on routes (issue 12, class 2). CGI, WSGI, PHP-FPM and Rack upstreams read a header
 * name upper-cased with `-` as `_`, so `Tollgate_Claim_Actor` and `X_Forwarded_For` are, to them, the
 * headers tollgate sets. The model of what tollgate owns is written out here, not imported.
 */

/** What tollgate owns on a route whatever the route's `auth_header`; `authorization` joins when consumed. */
const routeOwned: OwnedNames = {
  exact: [
    ...hopByHopNames,
    "host",
    "expect",
    "forwarded",
    "x-real-ip",
    "x-request-id",
    "gateway-authorization",
  ],
  prefixes: ["x-forwarded-", "tollgate-claim-"],
};
const credentials: OwnedNames = { exact: ["gateway-authorization", "authorization"], prefixes: [] };
const everyOwned: OwnedNames = {
  exact: [...routeOwned.exact, "authorization"],
  prefixes: routeOwned.prefixes,
};

const consumedHeaderSets: readonly (readonly string[])[] = [
  ["gateway-authorization"],
  ["gateway-authorization", "authorization"],
];

/** One call of `upstreamRequestHeaders`: the client's headers and what tollgate adds. */
const exchange = fc.record({
  rawHeaders: clientRawHeaders(ownedNameIn(everyOwned), benignNameOutside(everyOwned), everyOwned),
  consumedHeaders: fc.constantFrom(...consumedHeaderSets),
  // Claim names as an issuer sends them, underscores included (`job_workflow_ref`).
  claims: fc.uniqueArray(
    fc.tuple(
      fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/),
      headerValue.filter((value) => value.length > 0),
    ),
    { maxLength: 3, selector: ([claim]) => claim },
  ),
});

type Exchange = typeof exchange extends fc.Arbitrary<infer T> ? T : never;

function run({ rawHeaders, consumedHeaders, claims }: Exchange) {
  const claimHeaders = claims.flatMap(([claim, value]) => [claimHeaderName(claim)!, value]);
  const out = upstreamRequestHeaders(rawHeaders, {
    consumedHeaders,
    claimHeaders,
    forwardedFor: "203.0.113.7",
    forwardedProto: "https",
    requestId: "req-property",
  });
  const host = pairs(rawHeaders).find(([name]) => name.toLowerCase() === "host")?.[1];
  const added = [
    ...claimHeaders,
    "x-forwarded-for",
    "203.0.113.7",
    "x-forwarded-proto",
    "https",
    ...(host === undefined ? [] : ["x-forwarded-host", host]),
    "x-request-id",
    "req-property",
  ];
  const owned: OwnedNames = {
    exact: consumedHeaders.includes("authorization")
      ? [...routeOwned.exact, "authorization"]
      : routeOwned.exact,
    prefixes: routeOwned.prefixes,
  };
  return {
    fromClient: out.slice(0, out.length - added.length),
    tail: out.slice(out.length - added.length),
    added,
    owned,
  };
}

/**
 * numRuns: on the code before the fix both properties failed within 4 runs for every seed tried (the
 * fixed one: after 3, shrunk to `x_forwarded-`); a fix that forgot the consumed credential
 * (`gateway_authorization`) failed within 99. 1,000 runs keep a wide margin and take well under a second.
 */
describe("upstreamRequestHeaders: header names in every spelling (property)", () => {
  // No client header reaches the upstream under a name that, read the CGI way, tollgate owns: every such name in the list is one tollgate appended itself.
  it("lets no owned name through in any spelling: case, and _ for -", () => {
    fc.assert(
      fc.property(exchange, (input) => {
        const { fromClient, tail, added, owned } = run(input);
        expect(tail).toEqual(added);
        for (const [name] of pairs(fromClient)) expect(isOwned(name, owned), name).toBe(false);
      }),
      propertySettings(1_000),
    );
  });

  // What the upstream gets from the client is exactly its benign headers (not owned in any spelling, not listed in Connection), values unchanged, in order, names lower-cased.
  it("passes every benign header, underscores included, unchanged and in order", () => {
    fc.assert(
      fc.property(exchange, (input) => {
        const { fromClient, owned } = run(input);
        const listed = connectionListed(input.rawHeaders, false);
        const benign = pairs(input.rawHeaders)
          .filter(([name]) => !isOwned(name, owned) && !listed.has(name.toLowerCase()))
          .flatMap(([name, value]) => [name.toLowerCase(), value]);
        expect(fromClient).toEqual(benign);
      }),
      propertySettings(1_000),
    );
  });

  // The generators reach the class: owned names do come spelled with `_` and benign ones with `_` too.
  it("generates owned names with underscores and benign names with underscores", () => {
    const samples = fc.sample(exchange, propertySettings(200)).flatMap((input) => pairs(input.rawHeaders));
    const underscored = samples.filter(([name]) => name.includes("_"));
    expect(underscored.some(([name]) => isOwned(name, everyOwned))).toBe(true);
    expect(underscored.some(([name]) => !isOwned(name, everyOwned))).toBe(true);
    expect(samples.some(([name]) => isOwned(name, credentials))).toBe(true);
  });
});
