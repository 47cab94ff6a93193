// What the verified-token cache saves: the cost of one token check, cold (signature verified) and cached,
// in µs per operation, in one process:
//   - jose-direct:      jose's jwtVerify against the issuer's JWKS held locally (the floor for a signature check);
//   - verifier-nocache: tollgate's verifier with token_cache_size 0 (every call verifies the signature);
//   - verifier-cached:  tollgate's verifier reusing one token (SHA-256 of the token, then a map lookup).
// Also checks that repeated verifications of one token report `cached: true`.
//
//   npm run build && node bench/token-cache.mjs [--quick]
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { createLocalJWKSet, jwtVerify } from "jose";
import { createDevIssuer, githubLikeClaims } from "../dist/dev/dev-issuer.js";
import { createTokenVerifier, defaultClockSkewMs, defaultVerifierSettings } from "../dist/oidc/index.js";
import { fixed, machineFacts, markdownTable, median, rotate } from "./lib/measure.mjs";

const { values: flags } = parseArgs({ options: { quick: { type: "boolean", default: false } } });
const rounds = flags.quick ? 3 : 5;
// Each measurement is bounded both in count and in time.
const maxMsPerMeasurement = flags.quick ? 300 : 1000;
const maxOps = 200_000;

const audience = "tollgate-bench";
const issuer = await createDevIssuer({ host: "127.0.0.1" });
try {
  const issuerSettings = [
    {
      name: "bench",
      issuer: issuer.issuerUrl,
      audiences: [audience],
      algorithms: ["RS256"],
      clockSkewMs: defaultClockSkewMs,
    },
  ];
  const cachedVerifier = createTokenVerifier(issuerSettings, defaultVerifierSettings);
  const uncachedVerifier = createTokenVerifier(issuerSettings, {
    ...defaultVerifierSettings,
    tokenCacheSize: 0,
  });
  await Promise.all([cachedVerifier.start(), uncachedVerifier.start()]);
  if (!cachedVerifier.isReady() || !uncachedVerifier.isReady()) throw new Error("verifier keys not loaded");

  const token = await issuer.mint(githubLikeClaims(), { audience, expiresInSeconds: 3600 });
  const jwks = createLocalJWKSet(await (await fetch(issuer.jwksUrl)).json());

  const first = await cachedVerifier.verify(token);
  const second = await cachedVerifier.verify(token);
  const uncached = await uncachedVerifier.verify(token);
  const cacheCheck = `first call cached=${first.cached}, second call cached=${second.cached}, cache off cached=${uncached.cached}`;
  if (first.cached || !second.cached || uncached.cached)
    throw new Error(`unexpected cache behaviour: ${cacheCheck}`);

  const cases = {
    "jose-direct": () =>
      jwtVerify(token, jwks, {
        issuer: issuer.issuerUrl,
        audience,
        algorithms: ["RS256"],
        clockTolerance: 30,
      }),
    "verifier-nocache": () => uncachedVerifier.verify(token),
    "verifier-cached": () => cachedVerifier.verify(token),
  };

  /** µs per operation: sequential awaits, as one request at a time would do. */
  async function measure(operation) {
    const started = performance.now();
    let ops = 0;
    while (ops < maxOps && performance.now() - started < maxMsPerMeasurement) {
      await operation();
      ops += 1;
    }
    return ((performance.now() - started) * 1000) / ops;
  }

  const names = Object.keys(cases);
  for (const name of names) await measure(cases[name]); // warm-up
  const results = new Map(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round += 1) {
    for (const name of rotate(names, round)) results.get(name).push(await measure(cases[name]));
  }

  const cachedUs = median(results.get("verifier-cached"));
  const rows = names.map((name) => {
    const us = median(results.get(name));
    return [name, fixed(us, 2), fixed(1_000_000 / us, 0), fixed(us / cachedUs, 1)];
  });
  const facts = machineFacts();
  process.stdout.write(
    [
      `### Token verification, cold vs cached (${facts.date})`,
      "",
      `Machine: ${facts.nproc} cores, ${facts.cpu}; node ${facts.node}. Command: \`node bench/token-cache.mjs${flags.quick ? " --quick" : ""}\``,
      `RS256 token from the dev issuer; ${rounds} alternating rounds of up to ${maxMsPerMeasurement} ms each; medians.`,
      `Cache check: ${cacheCheck}.`,
      "",
      markdownTable(["case", "µs/op", "ops/s", "× verifier-cached"], rows),
      "",
    ].join("\n") + "\n",
  );
  cachedVerifier.close();
  uncachedVerifier.close();
} finally {
  await issuer.close();
}
